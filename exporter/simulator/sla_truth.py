"""Ground truth for service levels, straight from the simulated desk's raw tickets (no exporter code).

An independent oracle for the exporter's business-time arithmetic: instead of walking local days and
ranges, it marks every UTC minute of a span open or closed by reading the local wall clock at that
minute (opening ranges and zone offsets change on whole minutes), and sums with prefix counts. Targets
are given as plain data, in the config's shape: `{"department", "priority", "first_response",
"next_reply", "calendar"}` in seconds, first match wins.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .world import World

KINDS = ("first_response", "next_reply")


@dataclass(frozen=True)
class OpenMinutes:
    """Which UTC minutes of [first, last) are business time, with prefix sums for O(log n) queries."""

    first: int  # minute index (Unix seconds // 60)
    prefix: tuple[int, ...]  # prefix[i] = open minutes among the first i minutes

    @classmethod
    def build(cls, zone: ZoneInfo, week: Mapping[int, Sequence[tuple[int, int]]] | None,
              holidays: Iterable[date], start: float, end: float) -> OpenMinutes:
        """`week`: weekday (0 = Monday) -> [(open, close)] in minutes after local midnight; None = 24x7."""
        off = set(holidays)
        first, last = int(start // 60), int(end // 60) + 2
        prefix = [0]
        for minute in range(first, last):
            wall = datetime.fromtimestamp(minute * 60, zone)
            clock = wall.hour * 60 + wall.minute
            is_open = wall.date() not in off and (
                week is None or any(a <= clock < b for a, b in week.get(wall.weekday(), ())))
            prefix.append(prefix[-1] + is_open)
        return cls(first, tuple(prefix))

    def _upto(self, instant: float) -> float:
        """Open seconds from the span's start to `instant`."""
        index = int(instant // 60) - self.first
        whole = self.prefix[index]
        is_open = self.prefix[index + 1] - whole
        return whole * 60.0 + is_open * (instant - (instant // 60) * 60)

    def elapsed(self, start: float, end: float) -> float:
        return max(0.0, self._upto(end) - self._upto(start))

    def reached(self, start: float, seconds: float) -> float | None:
        goal = self._upto(start) + seconds
        index = bisect.bisect_left(self.prefix, goal / 60.0)  # first i with open minutes * 60 >= goal
        if index >= len(self.prefix):
            return None
        minute = self.first + index - 1  # the open minute in which the goal is reached
        return minute * 60.0 + (goal - self.prefix[index - 1] * 60.0)


@dataclass(frozen=True)
class SlaTruth:
    breached: dict[tuple[str, str, str], int]
    at_risk: dict[tuple[str, str, str], int]
    next_breach: float | None
    waits: dict[int, tuple[str, float]]  # ticket id -> (kind, start)


def sla_truth(world: World, now: float, rules: Sequence[Mapping[str, object]], warn_before: float,
              business: OpenMinutes, calendar: OpenMinutes) -> SlaTruth:
    """Breached and at-risk awaiting tickets per (department, priority, kind), and the next breach."""
    breached: dict[tuple[str, str, str], int] = {}
    at_risk: dict[tuple[str, str, str], int] = {}
    waits: dict[int, tuple[str, float]] = {}
    upcoming: list[float] = []
    with world.lock:
        names = {d.id: d.name for d in world.departments}
        for t in world.live_tickets():
            status = world.status(t.status)
            if status is None or not status.showawaiting:
                continue
            staff = any(r.admin for r in world.replies(t)[1:])
            kind, start = ("next_reply", t.lastreply) if staff else ("first_response", t.date)
            waits[t.id] = (kind, start)
            dept = names.get(t.deptid, f"id {t.deptid}")
            rule = next((r for r in rules if r.get("department") in (None, dept)
                         and r.get("priority") in (None, t.priority)), None)
            if rule is None or rule.get(kind) is None:
                continue
            target = float(rule[kind])  # type: ignore[arg-type]
            hours = calendar if rule.get("calendar") else business
            elapsed = hours.elapsed(start, now)
            cell = (dept, t.priority, kind)
            if elapsed > target:
                breached[cell] = breached.get(cell, 0) + 1
                continue
            if target - elapsed <= warn_before:
                at_risk[cell] = at_risk.get(cell, 0) + 1
            due = hours.reached(start, target)
            if due is not None:
                upcoming.append(due)
    return SlaTruth(breached, at_risk, min(upcoming) if upcoming else None, waits)
