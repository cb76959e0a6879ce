"""What an error page says, in one line: the excerpt of a non-JSON answer quoted in logs and on the landing page.

An HTML error page opens with styling, navigation and generic text; what names the error often stands far
down. WHMCS 7.3+'s "Oops! Something went wrong" page (HTTP 500 when a hook, add-on, byte-order mark or PHP
notice printed output before its answer) shows `...EmitterException: Output has been emitted previously`
only in its debug block, and PHP's own notices name the file and line that printed. So the excerpt quotes
the parts that name the error: the <title>, the first heading, an exception's name and message, a PHP
error or notice with its file and line. A page with none of the last two is quoted from its start.

Pieces are cut only at spaces, never inside a word, so a secret a page may echo is either quoted whole
(and scrubbed by `errors.scrub_secrets`) or not at all; only the end of the excerpt may cut a word, as the
scrubber expects.
"""

from __future__ import annotations

import html
import re

_FLAGS = re.IGNORECASE | re.DOTALL
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", _FLAGS)
_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", _FLAGS)
_INVISIBLE = re.compile(r"<script.*?</script>|<style.*?</style>", _FLAGS)
_TAG = re.compile(r"<[^>]*>")
# An exception as PHP and WHMCS print it: a (namespaced) class name ending in Exception or Error, a colon and
# its message, up to the file it was thrown in or the stack trace.
_EXCEPTION = re.compile(r"\b((?:[A-Za-z_]\w*\\)*\w*(?:Exception|Error)):\s+(.+?)"
                        r"(?=\s+in\s+(?:/|[A-Za-z]:\\)|\s+Stack trace:|\s+#0\s|$)")
# A PHP error or notice: its level, message, file and line.
_PHP_NOTICE = re.compile(r"\b((?:PHP )?(?:Fatal error|Parse error|Warning|Notice|Deprecated))\s*:\s+"
                         r"(.+? on line \d+)")
PIECE = 160


def _plain(fragment: str) -> str:
    """Tags dropped, character references decoded, whitespace folded to single spaces."""
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


def _clip(text: str, limit: int = PIECE) -> str:
    """At most `limit` characters, cut at a space (a word longer than that is left out)."""
    if len(text) <= limit:
        return text
    return text[:limit + 1].rsplit(" ", 1)[0].rstrip() if " " in text[:limit + 1] else ""


def _cause(plain: str) -> list[str]:
    """The exception (the innermost named, when one quotes another) and the first PHP notice of a page."""
    found = []
    exception = _EXCEPTION.search(plain)
    while exception and (inner := _EXCEPTION.match(exception.group(2))):
        exception = inner
    if exception:
        found.append(f"{exception.group(1)}: {_clip(exception.group(2))}")
    notice = _PHP_NOTICE.search(plain)
    if notice:
        found.append(f"{notice.group(1)}: {_clip(notice.group(2), 2 * PIECE)}")
    return found


def excerpt(text: str, limit: int = 200) -> str:
    """One line saying what the page says: title, first heading and cause, or (no cause) its first words."""
    title_match = _TITLE.search(text)
    title = _plain(title_match.group(1)) if title_match else ""
    plain = _plain(_INVISIBLE.sub(" ", text))
    causes = _cause(plain)
    if causes:
        heading_match = _HEADING.search(text)
        heading = _plain(heading_match.group(1)) if heading_match else ""
        pieces = [_clip(title), _clip(heading) if heading and heading not in title else "", *causes]
        return " | ".join(p for p in pieces if p)
    if title:
        if plain.startswith(title):
            plain = plain[len(title):].lstrip()
        plain = title + (" | " + plain if plain else "")
    return plain[:limit]
