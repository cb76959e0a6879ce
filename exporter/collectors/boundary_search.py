"""Boundary search in a `lastreply DESC` list: where "waited at most X" ends, for several X, in few calls.

GetTickets is ordered by `lastreply` newest first, so "waited <= le" holds for a prefix of the list and
every threshold is a position. A boundary is known exactly once two adjacent positions straddle it.
`search` finds all of them: the head window and the tail window, then per unresolved boundary a window of
WINDOW tickets placed by interpolation between known (position, lastreply) points (in log(wait): waits
spread over orders of magnitude), falling back to bisection when a step does not halve the bracket. Every
fetched window resolves whatever boundaries it happens to contain. `previous` warm-starts it: an open
boundary is first looked for in the window around where it was last poll, so a boundary that moved less
than WINDOW/2 costs one call.

Runs of equal `lastreply`, which GetTickets orders differently from call to call, change nothing: a
position carries the same `lastreply` whichever tied ticket stands there. Tickets that move between two
calls shift positions; each count is then off by at most the number that moved, and counts are clamped
to be monotone and <= the total.

Used by the wait_distribution collector (bounds = histogram buckets) and the sla collector (bounds =
business-time targets turned into wall-clock cutoffs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from exporter.collectors.ticket_lists import Page

WINDOW = 250
DENSITY_SPAN = 50  # tickets: how far from a bracket end the local density is read
LOG_OFFSET = 60.0  # seconds: keeps log(wait) finite for tickets answered this very second

Fetch = Callable[[int, int], Page]


@dataclass(frozen=True)
class Distribution:
    """What the search found: cumulative counts per bound (+Inf = total) or None when unresolved; with
    `deferred`, the bounds the deadline left open count None (the others are exact)."""

    total: int
    counts: tuple[int | None, ...] | None
    gsum: float
    fetched: int
    calls: int
    deferred: bool = False  # the poll's deadline stopped the refinement with some bounds open

    @property
    def exact_sum(self) -> bool:
        return self.fetched >= self.total


def waited(now: float, lastreply: float, le: float) -> bool:
    """The bucket predicate, written exactly as the truth is: the age, then the comparison."""
    return now - lastreply <= le


def bracket(points: Sequence[tuple[int, float]], total: int, now: float, le: float) -> tuple[int, int]:
    """(lo, hi): the last known position inside the bucket before `hi`, the first known one outside.

    -1 / `total` stand for "no such point". Resolved when hi == lo + 1: the count is hi. After tickets
    moved between calls the points may disagree; the first outside point wins, so the error stays
    bounded by the movement.
    """
    hi = total
    for pos, lastreply in points:
        if not waited(now, lastreply, le):
            hi = pos
            break
    lo = -1
    for pos, lastreply in points:
        if pos >= hi:
            break
        if waited(now, lastreply, le):
            lo = pos
    return lo, hi


def plan_window(points: dict[int, float], lo: int, hi: int, now: float, le: float, window: int,
                bisect: bool) -> tuple[int, int]:
    """(start, num) of the next window inside the open bracket (lo, hi), centred on the estimate."""
    first, last = lo + 1, hi - 1
    size = last - first + 1
    if size <= window:
        return first, size
    if bisect or lo < 0 or hi not in points:
        guess = (first + last) // 2
    else:
        guess = estimate(points, lo, hi, now, le)
    start = min(max(first, guess - window // 2), last - window + 1)
    return start, window


def around(count: int, lo: int, hi: int, window: int) -> tuple[int, int]:
    """(start, num) of the window inside the open bracket (lo, hi) centred on where a boundary was last poll
    (`count` tickets waited at most its bound then)."""
    first, last = lo + 1, hi - 1
    if last - first + 1 <= window:
        return first, last - first + 1
    return min(max(first, count - window // 2), last - window + 1), window


def estimate(points: dict[int, float], lo: int, hi: int, now: float, le: float) -> int:
    """The likeliest position of the boundary inside (lo, hi).

    Both bracket ends usually sit at the edge of a fetched window, whose tickets show the local density
    (tickets per second of lastreply). Extrapolating from each end with its local density and
    interpolating between the ends (in log(wait)) give three guesses; the median is robust to the one
    that a skewed spread of waits throws off.
    """
    threshold = now - le
    guesses = [lo + interpolate(points[lo], points[hi], now, le) * (hi - lo)]
    for end, step in ((lo, -1), (hi, 1)):
        far = end + step * DENSITY_SPAN
        if far in points and points[far] != points[end]:
            density = DENSITY_SPAN / abs(points[far] - points[end])
            guesses.append(end + (points[end] - threshold) * density)
    guesses.sort()
    middle = guesses[len(guesses) // 2] if len(guesses) != 2 else sum(guesses) / 2
    return int(round(min(hi - 1, max(lo + 1, middle))))


def interpolate(upper: float, lower: float, now: float, le: float) -> float:
    """Where between two known tickets (0 = the newer, 1 = the older) a wait of `le` falls.

    Interpolated in log(wait) because waits spread over orders of magnitude (minutes to weeks):
    linear interpolation would crowd every short bucket against the head of the list.
    """
    a, b, x = (math.log(max(0.0, now - t) + LOG_OFFSET) for t in (upper, lower, now - le))
    if b <= a:
        return 0.5
    return min(1.0, max(0.0, (x - a) / (b - a)))


def integrate_ages(points: Sequence[tuple[int, float]], total: int, now: float) -> float:
    """Sum of ages over positions 0..total-1: exact at known points, estimated in the gaps between them.

    In a gap the estimate is the mean of a straight line and of geometric growth (linear in log(wait),
    as in `interpolate`) between the known ages: a straight line across a wide gap overstates a long
    tail, geometric growth understates an even spread. Measured error: within ~5% on even spreads,
    up to ~20% on long-tailed ones at 100,000 tickets (see the README, Backlog depth).
    """
    ages = [(pos, max(0.0, now - lastreply)) for pos, lastreply in points if pos < total]
    if not ages:
        return 0.0
    result = sum(age for _, age in ages)
    for (p0, a0), (p1, a1) in zip(ages, ages[1:]):
        geometric = gap_sum(a0 + LOG_OFFSET, a1 + LOG_OFFSET, p1 - p0) - (p1 - p0 - 1) * LOG_OFFSET
        result += (geometric + (p1 - p0 - 1) * (a0 + a1) / 2) / 2
    # Ends not fetched (only after movement): extend the nearest known age.
    result += ages[0][0] * ages[0][1] + (total - 1 - ages[-1][0]) * ages[-1][1]
    return result


def gap_sum(a0: float, a1: float, steps: int) -> float:
    """Sum of a0 * r**j for j = 1..steps-1 where a0 * r**steps = a1 (the positions strictly between)."""
    if steps <= 1:
        return 0.0
    if a0 <= 0 or a1 <= 0 or math.isclose(a0, a1):
        return (steps - 1) * (a0 + a1) / 2
    ratio = (a1 / a0) ** (1 / steps)
    return a0 * ratio * (ratio ** (steps - 1) - 1) / (ratio - 1)


@dataclass
class _Positions:
    """What the fetched pages showed: `lastreply` by list position, and where a short page ended the list."""

    fetch: Fetch
    calls: int = 0
    points: dict[int, float] = field(default_factory=dict)
    ends: set[int] = field(default_factory=set)

    def take(self, start: int, num: int) -> Page:
        self.calls += 1
        page = self.fetch(start, num)
        for offset, ticket in enumerate(page.tickets):
            self.points[start + offset] = ticket.lastreply
        # Short and, by its own totalresults, at the end: the list shrank. Short but not at the end: the
        # server capped limitnum (gateways do), which says nothing about where the list ends.
        if len(page.tickets) < num and start + len(page.tickets) >= page.total:
            self.ends.add(start + len(page.tickets))
        return page

    def ordered(self) -> list[tuple[int, float]]:
        ordered = sorted(self.points.items())
        if self.ends:
            # A short page near the end: the list shrank, positions from there on hold nothing.
            cut = min(self.ends)
            ordered = [p for p in ordered if p[0] < cut] + [(cut, float("-inf"))]
        return ordered


def search(fetch: Fetch, now: float, bounds: Sequence[float], *, total_hint: int | None, full_limit: int,
           max_calls: int, window: int = WINDOW, stop: Callable[[], bool] = lambda: False,
           previous: Mapping[float, int] | None = None) -> Distribution:
    """Find every bucket boundary of the awaiting list; `fetch(start, num)` is one GetTickets call.

    `previous` (bound -> count found last poll) warm-starts the search: an open boundary is first looked
    for in the window around where it was, so one that moved less than half a window costs one call.
    Refinement calls (beyond the first one or two) are made only while `stop()` says no: the poll's deadline.
    Stopped with boundaries still open, the distribution is `deferred`: those bounds count None."""
    seen = _Positions(fetch)
    first_num = total_hint + 25 if total_hint is not None and total_hint <= full_limit else window
    first = seen.take(0, max(1, min(first_num, full_limit)))
    total = first.total  # the first answer is authoritative; later totals only show movement
    if total > len(seen.points) and total <= full_limit and seen.calls < max_calls:
        seen.take(len(first.tickets), total - len(first.tickets))
    elif total > len(seen.points) and seen.calls < max_calls:
        seen.take(max(len(first.tickets), total - window), window)
    widths: dict[int, int] = {}
    bisect: dict[int, bool] = {}
    warm = dict(previous or {})
    while True:
        ordered = seen.ordered()
        brackets = [bracket(ordered, total, now, le) for le in bounds]
        open_ = [(i, lo, hi) for i, (lo, hi) in enumerate(brackets) if hi - lo > 1]
        if not open_:
            counts: list[int | None] = [hi for _, hi in brackets]
            break
        if seen.calls >= max_calls:
            return Distribution(total, None, 0.0, len(seen.points), seen.calls)
        if stop():  # the deadline: the buckets already exact are kept, the others are left out this poll
            counts = [hi if hi - lo == 1 else None for lo, hi in brackets]
            break
        index, lo, hi = open_[0]
        last_time = warm.pop(bounds[index], None)
        if last_time is not None and lo < last_time <= hi:
            seen.take(*around(last_time, lo, hi, window))
            continue
        width = hi - lo
        bisect[index] = index in widths and width > widths[index] // 2 and not bisect.get(index, False)
        widths[index] = width
        seen.take(*plan_window(dict(ordered), lo, hi, now, bounds[index], window, bisect[index]))
    clamped = _monotone(counts, total)
    gsum = integrate_ages(sorted(p for p in seen.points.items() if p[0] < total), total, now)
    return Distribution(total, tuple(clamped) + (total,), gsum, len([p for p in seen.points if p < total]),
                        seen.calls, deferred=None in clamped)


def _monotone(counts: Sequence[int | None], total: int) -> list[int | None]:
    """Cumulative counts clamped to be non-decreasing and at most `total` (tickets moved between calls)."""
    clamped: list[int | None] = []
    previous = 0
    for count in counts:
        if count is not None:
            previous = min(total, max(previous, count))
        clamped.append(None if count is None else previous)
    return clamped
