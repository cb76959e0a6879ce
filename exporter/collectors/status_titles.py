"""Status titles that collide in GetTicketCounts' `status` map, and the per-status counts that survive it.

GetTicketCounts keys its map by the title with everything but ASCII letters and digits dropped, so two
non-ASCII titles (Cyrillic, Greek, CJK) reduce to one key and one overwrites the other: a status goes
missing. GetSupportStatuses answers per title, so it gives the exact counts, for one more API call.

When it is asked (at most once per poll, never when the map is known to be whole):
- the map looks lossy: an entry under the empty key (a title with no ASCII letter or digit: any other such
  title would share its key) or a key that is not its title reduced the way WHMCS reduces it, and this
  exact map (its keys and titles) has not been checked yet;
- the map's keys or titles changed since the last check (a status was added, renamed or left on tickets);
- a collision was found at the last check: its counts come from GetSupportStatuses every poll, which also
  shows when it is gone;
- `RECHECK_TITLES` after the last check (the first one that long after the first poll): a collision that
  leaves no trace in the map (`Ждём 1` and `Этап 1` both reduce to `1`) is found within the hour.

So a desk whose titles do not collide costs one GetSupportStatuses call an hour (plus one when its map
looks lossy or changes); a desk whose titles collide costs one per poll.

A check compares GetSupportStatuses' titles with the map's: a configured title with no entry in the map,
or several configured titles on one key, is a collision. Then the per-status counts are GetSupportStatuses'
plus the map's titles it does not list (titles left on tickets after their status was deleted, which only
GetTicketCounts reports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from exporter.errors import WhmcsError
from exporter.fields import items, label_text, text, to_count

log = logging.getLogger(__name__)

RECHECK_TITLES = 3600.0
UNTITLED = "(no title)"

Counts = tuple[tuple[str, int], ...]


def whmcs_key(title: str) -> str:
    """GetTicketCounts' key for a stored title: ASCII letters lower-cased and digits kept, the rest dropped."""
    return "".join(ch.lower() for ch in title if ch.isascii() and ch.isalnum())


def map_signature(status_map: Any) -> frozenset[tuple[str, str]] | None:
    """The map's (key, stored title) pairs; None when there is no map to judge."""
    if not isinstance(status_map, Mapping) or not status_map:
        return None
    return frozenset((str(key), str(entry.get("title", "")) if isinstance(entry, Mapping) else "")
                     for key, entry in status_map.items())


def looks_lossy(signature: frozenset[tuple[str, str]]) -> bool:
    return any(key == "" or key != whmcs_key(title) for key, title in signature)


def configured_titles(answer: Mapping[str, Any]) -> list[tuple[str, int]]:
    """GetSupportStatuses -> (stored title, count) in WHMCS's order."""
    out = []
    for entry in items(answer.get("statuses"), "status", "statuses"):
        title = text(entry.get("title"), "status title")
        out.append((title, to_count(entry.get("count"), f"status {title[:40]} count")))
    return out


def merged_counts(configured: list[tuple[str, int]], from_map: Counts) -> Counts:
    """GetSupportStatuses' counts per title, plus the map's titles it does not list (left on tickets)."""
    counts: dict[str, int] = {}
    for title, count in configured:
        label = label_text(title, "status title") or UNTITLED
        counts[label] = counts.get(label, 0) + count
    for title, count in from_map:
        if title not in counts:
            counts[title] = count
    return tuple(sorted(counts.items()))


def collisions(configured: list[tuple[str, int]], signature: frozenset[tuple[str, str]]) -> dict[str, list[str]]:
    """Key -> configured titles on it, for keys that hide a configured title (missing from the map, or shared)."""
    in_map = {label_text(title, "status title") for _, title in signature}
    by_key: dict[str, list[str]] = {}
    for title, _ in configured:
        by_key.setdefault(whmcs_key(title), []).append(title)
    return {key: titles for key, titles in by_key.items()
            if len(titles) > 1 or any(label_text(t, "status title") not in in_map for t in titles)}


class StatusTitles:
    """Per installation: when to ask GetSupportStatuses, and the per-status counts to export."""

    def __init__(self, recheck: float = RECHECK_TITLES) -> None:
        self.recheck = recheck
        self._checked: frozenset[tuple[str, str]] | None = None  # the map at the last check
        self._colliding: dict[str, list[str]] = {}
        self._next_check: float | None = None

    def needs_check(self, signature: frozenset[tuple[str, str]] | None, now: float) -> bool:
        if signature is None:
            return False
        if self._next_check is None:
            self._next_check = now + self.recheck
        if self._colliding or now >= self._next_check:
            return True
        if signature == self._checked:
            return False
        return self._checked is not None or looks_lossy(signature)

    def counts(self, whmcs: str, status_map: Any, from_map: Counts, now: float,
               statuses: Callable[[], Mapping[str, Any]]) -> Counts:
        """The per-status counts: the map's, or GetSupportStatuses' (`statuses()`: one call) on a collision."""
        signature = map_signature(status_map)
        if signature is None or not self.needs_check(signature, now):
            return from_map
        try:
            configured = configured_titles(statuses())
        except (WhmcsError, ValueError) as exc:
            if isinstance(exc, WhmcsError) and exc.aborts_poll:
                raise
            # The role may lack GetSupportStatuses, or its answer is unreadable: the map's counts stand (a
            # hidden status is absent, not guessed), and the check waits an hour instead of failing every poll.
            log.warning("whmcs=%s: could not check status titles for collisions in GetTicketCounts' keys: %s; "
                        "per-status counts as GetTicketCounts gives them", whmcs, exc)
            self._checked, self._next_check = signature, now + self.recheck
            return from_map
        found = collisions(configured, signature)
        if found != self._colliding:
            self._tell(whmcs, found)
        self._checked, self._colliding, self._next_check = signature, found, now + self.recheck
        return merged_counts(configured, from_map) if found else from_map

    @staticmethod
    def _tell(whmcs: str, found: dict[str, list[str]]) -> None:
        if not found:
            log.info("whmcs=%s: status titles no longer collide in GetTicketCounts' keys; per-status counts "
                     "come from GetTicketCounts again", whmcs)
            return
        shown = "; ".join(f"key {key!r}: {', '.join(titles)}" for key, titles in sorted(found.items()))
        log.warning("whmcs=%s: status titles collide in GetTicketCounts' status keys, which drop every character "
                    "but a-z and 0-9 (%s): per-status counts come from GetSupportStatuses, one more API call per "
                    "poll while they collide. Renaming the statuses apart (an ASCII letter or digit each) "
                    "saves the call.", whmcs, shown)
