"""Reading WHMCS field values: numbers that may be strings, local times with no zone, list wrappers.

Pure functions. Each raises `ValueError` with a short description on a value
it cannot read; the client turns that into `InvalidResponse`.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

# WHMCS counts never come close to this; anything larger is a broken answer, not data.
MAX_COUNT = 10**12

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The exact shape strptime(_TIME_FORMAT) accepts from WHMCS; matched first so the fast fromisoformat (which
# alone would also take other ISO forms) reads only these. strptime was ~35% of a 100k-ticket first poll.
_TIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# An HTML character reference as PHP's htmlspecialchars/htmlentities write them: always with the semicolon.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def to_count(value: Any, field: str) -> int:
    """A non-negative whole number sent as int, float or decimal string ("12", 12, 12.0)."""
    if isinstance(value, bool):
        raise ValueError(f"{field} is a boolean, not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{field} is not a whole number: {value!r}")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text.isdigit() or not text.isascii():
            raise ValueError(f"{field} is not a number: {text[:40]!r}")
        number = int(text)
    else:
        raise ValueError(f"{field} has type {type(value).__name__}, expected a number")
    if number < 0 or number > MAX_COUNT:
        raise ValueError(f"{field} is out of range: {number}")
    return number


def is_disabled_count(value: Any) -> bool:
    """WHMCS answers the string "x" for counts when disable_admin_ticket_page_counts is set."""
    return isinstance(value, str) and value.strip().lower() == "x"


def parse_local_time(value: Any, tz: ZoneInfo, field: str) -> float:
    """`YYYY-MM-DD HH:MM:SS` in the WHMCS server's zone -> Unix time.

    In the repeated hour when clocks go back the wall time is ambiguous; the
    earlier instant (fold=0) is taken, so an age may read one hour too long for
    the tickets of that hour. A wall time that does not exist (clocks forward) is
    read as the instant the clock jumped over it, as PHP does.
    """
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a date string")
    stripped = value.strip()
    try:
        if _TIME_SHAPE.fullmatch(stripped) and stripped.isascii():
            naive = dt.datetime.fromisoformat(stripped)
        else:
            naive = dt.datetime.strptime(stripped, _TIME_FORMAT)
    except ValueError:
        raise ValueError(f"{field} is not a YYYY-MM-DD HH:MM:SS time: {value[:40]!r}") from None
    try:
        return naive.replace(tzinfo=tz).timestamp()
    except (OverflowError, OSError):  # year 1 or 9999 at the edge of the zone's range
        raise ValueError(f"{field} is out of range: {value[:40]!r}") from None


def items(container: Any, key: str, field: str) -> list[Mapping[str, Any]]:
    """The list in WHMCS's `{"tickets": {"ticket": [...]}}` wrappers.

    An absent or empty wrapper is an empty list (WHMCS drops the key when there
    are no results); a single object instead of a list is a list of one, as XML
    converters make it.
    """
    if container is None or container == "" or container == []:
        return []
    if not isinstance(container, Mapping):
        raise ValueError(f"{field} is not an object")
    inner = container.get(key)
    if inner is None:
        return []
    if isinstance(inner, Mapping):
        inner = [inner]
    if not isinstance(inner, list):
        raise ValueError(f"{field}.{key} is not a list")
    for entry in inner:
        if not isinstance(entry, Mapping):
            raise ValueError(f"{field}.{key} holds a non-object")
    return inner


def text(value: Any, field: str) -> str:
    """A label-like string field; numbers are accepted and turned into text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{field} is not text")


def label_text(value: Any, field: str) -> str:
    """A name WHMCS stores (department, status, priority, staff) as its admin area shows it.

    WHMCS HTML-escapes admin-entered text on save, and whether an answer carries it escaped depends on the
    version and on how the value was saved. Character references are decoded exactly once (a value saved
    twice keeps one level: `&amp;amp;` -> `&amp;`, as the admin area shows it), so the same name reads the
    same whichever way it came. Only complete references with their semicolon are decoded: a literal `&`
    (`R&D`, `Tom&notes`) stays as it is. Surrounding whitespace is dropped.
    """
    raw = text(value, field)
    if "&" in raw:
        raw = _ENTITY.sub(lambda m: html.unescape(m.group(0)), raw)
    return raw.strip()
