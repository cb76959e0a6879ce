"""Durations as a user writes them (`90s`, `5m`, `1h30m`, `500ms`) and as the exporter shows them back."""

from __future__ import annotations

import re
from typing import Any

DEFAULT_BUCKETS = (900.0, 3600.0, 14400.0, 28800.0, 86400.0, 172800.0, 259200.0, 604800.0)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WHOLE_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(value: Any) -> float:
    """`90`, `90s`, `5m`, `1h30m`, `500ms` -> seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError("not a duration like 60s, 5m or 1h30m")
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as `parse_duration` reads them back: 5400 -> `1h30m`, 0.5 -> `500ms`, 2.5 -> `2.5s`."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest, text = int(seconds), ""
    for unit, size in _WHOLE_UNITS:
        if rest >= size:
            text += f"{rest // size}{unit}"
            rest %= size
    return text
