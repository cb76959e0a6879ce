"""Business time: which seconds count towards a service level, in an installation's local time.

A `Schedule` is a week of local opening ranges (several per day), whole local days off (holidays) and an
IANA time zone. `elapsed(start, end)` counts the business seconds between two Unix instants;
`reached(start, seconds)` is the first instant at which that many business seconds have passed since
`start`; `cutoff(end, seconds)` is the earliest start from which at most that many pass until `end` (the
wall-clock age at which a wait passes a business-time target). All work on real instants, so a day with
a DST change counts its true length (a 09:00-18:00 day is 9 hours on either side of the change, a
00:00-24:00 day is 23 or 25 hours). Local times that do not
exist (the spring-forward gap) map to the instant after the gap, times that exist twice to the first one.

Pure arithmetic, no I/O: config parsing lives in exporter/config/sla.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 86400
ALL_DAY = ((0, DAY),)
# How far `reached` looks ahead before it says "never": a schedule with business hours reaches any
# realistic target long before; one without (every day a holiday) must not loop forever.
HORIZON_DAYS = 3 * 366

Ranges = tuple[tuple[int, int], ...]  # (start, end) seconds after local midnight, sorted, end may be 86400


@dataclass(frozen=True)
class Schedule:
    """When business time runs. `week` None = every hour of every day (24x7); holidays apply either way."""

    zone: ZoneInfo
    week: tuple[Ranges, ...] | None = None  # seven entries, Monday first
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def is_calendar(self) -> bool:
        """Every second counts: elapsed time is wall time."""
        return self.week is None and not self.holidays

    def ranges_on(self, day: date) -> Ranges:
        if day in self.holidays:
            return ()
        return ALL_DAY if self.week is None else self.week[day.weekday()]

    def elapsed(self, start: float, end: float) -> float:
        """Business seconds in [start, end); 0 when end <= start."""
        if end <= start:
            return 0.0
        if self.is_calendar:
            return end - start
        total = 0.0
        day = _local_date(start, self.zone)
        last = _local_date(end, self.zone)
        while day <= last:
            for opens, closes in _instants(self, day):
                total += max(0.0, min(end, closes) - max(start, opens))
            day += timedelta(days=1)
        return total

    def reached(self, start: float, seconds: float) -> float | None:
        """The first instant at which `seconds` business seconds have passed since `start`; None when the
        schedule has no business time left within HORIZON_DAYS."""
        if seconds <= 0:
            return start
        if self.is_calendar:
            return start + seconds
        left = float(seconds)
        day = _local_date(start, self.zone)
        for _ in range(HORIZON_DAYS):
            for opens, closes in _instants(self, day):
                begin = max(start, opens)
                if closes <= begin:
                    continue
                if closes - begin >= left:
                    return begin + left
                left -= closes - begin
            day += timedelta(days=1)
        return None

    def cutoff(self, end: float, seconds: float) -> float | None:
        """The earliest instant from which at most `seconds` business seconds pass until `end`: a wait that
        started before it has more (`elapsed(x, end) > seconds` exactly when `x < cutoff`). A target met exactly at
        an opening puts the cutoff at the closing before it: a wait started in the closed time between has
        only `seconds`. None when the business time within HORIZON_DAYS before `end` is at most `seconds`."""
        if self.is_calendar:
            return end - max(0.0, seconds)
        left = max(0.0, float(seconds))
        day = _local_date(end, self.zone)
        for _ in range(HORIZON_DAYS):
            for opens, closes in reversed(_instants(self, day)):
                finish = min(end, closes)
                if finish <= opens:
                    continue
                if finish - opens > left:
                    return finish - left
                left -= finish - opens
            day -= timedelta(days=1)
        return None


def _local_date(instant: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(instant, zone).date()


def _instants(schedule: Schedule, day: date) -> tuple[tuple[float, float], ...]:
    return _day_instants(schedule.zone, schedule.ranges_on(day), day)


@functools.lru_cache(maxsize=4096)
def _day_instants(zone: ZoneInfo, ranges: Ranges, day: date) -> tuple[tuple[float, float], ...]:
    """A day's ranges as Unix instants. Cached: every ticket of a poll walks the same recent days."""
    out = []
    for opens, closes in ranges:
        a, b = _local_instant(zone, day, opens), _local_instant(zone, day, closes)
        if b > a:  # a range entirely inside a spring-forward gap has no real seconds
            out.append((a, b))
    return tuple(out)


def _local_instant(zone: ZoneInfo, day: date, seconds: int) -> float:
    """The instant of a local wall time `seconds` after midnight (86400 = the next midnight)."""
    if seconds >= DAY:
        return _local_instant(zone, day + timedelta(days=1), seconds - DAY)
    wall = datetime.combine(day, time(seconds // 3600, seconds // 60 % 60, seconds % 60))
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) != wall:
        # In a spring-forward gap: business starts (or ends) when the clocks show a real time again.
        return _gap_end(zone, wall)
    return first.timestamp()


def _gap_end(zone: ZoneInfo, wall: datetime) -> float:
    """The first real instant after a nonexistent local wall time: the transition itself."""
    before = wall.replace(tzinfo=zone, fold=0).timestamp()  # the wall time read with the old offset
    after = wall.replace(tzinfo=zone, fold=1).timestamp()  # ... and with the new one
    low, high = min(before, after), max(before, after)
    # The transition lies between the two readings: bisect to the second.
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) < wall:
            low = mid
        else:
            high = mid
    return float(high)
