"""Typed failures of one WHMCS API call.

Every way a call can fail maps to one class here, and each class carries the
`reason` label used by `whmcs_exporter_api_request_failures_total`. Messages
are one line and never contain credentials: the client builds them only from
the action name, the HTTP status and what WHMCS said.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse

REASONS = (
    "auth",
    "permission",
    "http",
    "timeout",
    "connection",
    "invalid_response",
    "api_error",
    "rate_limited",
    "unsupported",
)


_SURROGATES = re.compile("[\ud800-\udfff]")


class WhmcsError(Exception):
    """A failed API call. `reason` is the metric label, `action` the API action."""

    reason = "api_error"

    def __init__(self, action: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None, overloaded: bool = False) -> None:
        self.action = action
        self.status = status
        # Seconds WHMCS (or a proxy) asked us to wait, from Retry-After.
        self.retry_after = retry_after
        # The server said it is overloaded (429/503): the poller backs off exponentially.
        self.overloaded = overloaded or retry_after is not None
        # One line, always; a lone surrogate (JSON's \\ud800 can carry one) would fail every UTF-8 encode later.
        self.message = _SURROGATES.sub("\ufffd", " ".join(message.split()))
        prefix = f"{action}: " if action else ""
        http = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{prefix}{http}{self.message}")

    @property
    def aborts_poll(self) -> bool:
        """True when the rest of the poll's calls would fail the same way."""
        return True


class AuthError(WhmcsError):
    """Credentials, IP allow-list, access key or IP ban: every further call counts as a failed login."""

    reason = "auth"


class PermissionDenied(WhmcsError):
    """The API role lacks this one action; the login itself worked, other actions may still succeed."""

    reason = "permission"

    @property
    def aborts_poll(self) -> bool:
        return False


class Unsupported(WhmcsError):
    """The installation (usually a gateway) does not offer this action at all."""

    reason = "unsupported"

    @property
    def aborts_poll(self) -> bool:
        return False


class ApiError(WhmcsError):
    """WHMCS answered `result=error` for a reason other than access."""

    reason = "api_error"

    @property
    def aborts_poll(self) -> bool:
        return False


class NotFound(ApiError):
    """`Ticket ID Not Found`: the ticket was merged or deleted; views treat it as data, not failure."""


class HttpStatusError(WhmcsError):
    reason = "http"


class RateLimited(WhmcsError):
    """HTTP 429: too many requests. `retry_after` is seconds to wait, None when not given."""

    reason = "rate_limited"

    def __init__(self, action: str, message: str, **kwargs) -> None:
        kwargs["overloaded"] = True
        super().__init__(action, message, **kwargs)


class CallTimeout(WhmcsError):
    reason = "timeout"


class ConnectionFailed(WhmcsError):
    reason = "connection"


class InvalidResponse(WhmcsError):
    """The body is not what the action answers: HTML, garbage, truncated JSON, wrong shape."""

    reason = "invalid_response"



class ShapeError(InvalidResponse):
    """A `result=success` answer whose fields are missing or of the wrong type.

    Raised by the views while reading an answer; it fails that view only,
    since other actions may still answer well.
    """

    @property
    def aborts_poll(self) -> bool:
        return False


MASK = "***"
# A secret cut short (a page quoting 200 characters, a gateway echoing 20 of 22) is still scrubbed when at least
# this much of it shows; shorter secrets only when whole.
_MIN_PART = 8


def scrub_secrets(exc: WhmcsError, secrets: list[str]) -> WhmcsError:
    """Defence in depth: a WAF or debug page may echo the request; never let a secret through, in any encoding
    a server may echo it in, whole or cut anywhere."""
    variants = sorted({v for secret in secrets if len(secret) >= 4 for v in encodings(secret)}, key=len, reverse=True)
    if variants:
        exc.message = scrub_text(exc.message, variants)
        exc.args = (scrub_text(str(exc.args[0]), variants),)
    return exc


def encodings(secret: str) -> set[str]:
    """The secret as a server may echo it: raw, form/URL-encoded (+ or %20, upper or lower case hex), HTML
    entities, JSON string escapes, and HTML-escaped URL encoding."""
    url = {urllib.parse.quote_plus(secret), urllib.parse.quote(secret, safe="")}
    url |= {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in url}
    escaped = html.escape(secret)
    json_forms = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    json_forms |= {form.replace("/", "\\/") for form in json_forms}
    return {secret, escaped, escaped.replace("&#x27;", "&#39;"), *url, *json_forms}


_PERCENT = re.compile("%[0-9A-F]{2}")


def scrub_text(text: str, variants: list[str]) -> str:
    """`text` with every variant masked, whole or as a piece of at least _MIN_PART characters cut at either end."""
    for variant in variants:
        text = text.replace(variant, MASK)
    spans = sorted(span for variant in variants if len(variant) > _MIN_PART for span in _pieces(text, variant))
    masked, last = [], 0
    for start, end in spans:
        if end <= last:
            continue
        if start >= last:
            masked.append(text[last:start])
            masked.append(MASK)
        last = end
    return "".join(masked) + text[last:] if spans else text


def _pieces(text: str, variant: str) -> list[tuple[int, int]]:
    """Spans of `text` that start like `variant` (cut at their end) or end like it (cut at their start)."""
    spans = []
    head, tail = variant[:_MIN_PART], variant[-_MIN_PART:]
    start = text.find(head)
    while start != -1:
        end = start + _MIN_PART
        while end < len(text) and end - start < len(variant) and text[end] == variant[end - start]:
            end += 1
        spans.append((start, end))
        start = text.find(head, start + 1)
    stop = text.find(tail)
    while stop != -1:
        begin, end = stop, stop + _MIN_PART
        while begin > 0 and end - begin < len(variant) and text[begin - 1] == variant[-(end - begin) - 1]:
            begin -= 1
        spans.append((begin, end))
        stop = text.find(tail, stop + 1)
    return spans
