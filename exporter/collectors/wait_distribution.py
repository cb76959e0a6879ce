"""The exact wait-time distribution of awaiting-reply tickets, as a gauge histogram, in few API calls.

GetTickets(status="Awaiting Reply") is ordered by `lastreply` newest first, so "waited <= le" holds for
a prefix of the list: the bucket count for `le` is the position of the first ticket that waited longer.
Each bucket is therefore one boundary to find in one sorted list, and a boundary is known exactly once
two adjacent positions straddle it.

Cost per poll (N = awaiting tickets, W = WINDOW = 250), every page through the poll's shared reads:
- N <= whole_list_max_tickets (5,000): the whole list, read once per poll for every collector (normally by
  oldest_awaiting, in pages of 1,000): no call of its own; every bucket and `_gsum` exact.
- larger: the head window and the tail window (the tail is oldest_awaiting's page), then per unresolved
  boundary windows of W tickets placed by interpolation between known (position, lastreply) points, falling
  back to bisection when a step does not halve the bracket. Every fetched window resolves whatever
  boundaries it happens to contain. From the second poll on, an open boundary is first looked for in the
  window around where it was last poll, so a boundary that moved less than W/2 costs one call. Measured at
  100,000 awaiting tickets: 14-30 calls on a first poll depending on the spread of waits, 8 warm.
- Refinement calls stop at the poll's deadline: the buckets already exact are exported, the others are
  absent that poll (+Inf, the total, is always known).
- Never more than `distribution_max_calls` (default 40). If that cap is reached with a boundary still
  open, the part carries no histogram (numbers are true or absent) and the reason is logged.

`_gsum` is exact when every ticket was fetched; otherwise ages are integrated piecewise-linearly
between the fetched positions (an estimate; `sample_ratio` says how much was fetched).

Runs of equal `lastreply` (bulk imports, mass replies), which GetTickets orders differently from call to
call, change nothing: a position carries the same `lastreply` whichever tied ticket stands there, so the
boundaries and `_gsum` stay exact and the calls the same (tests/test_tie_runs.py: runs of 1x, 2x, 10x WINDOW).

Tickets that get a reply (or arrive) between two calls shift positions; each bucket is then off by at
most the number of tickets that moved, and counts are clamped to be monotone and <= the total.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from exporter.collectors.base import PollContext
from exporter.collectors.ticket_lists import AWAITING, Page
from exporter.families import FROM_LAST_POLL, FamilySink

log = logging.getLogger(__name__)

HELP_WAITS = ("Awaiting-reply tickets by seconds since their last reply (gauge histogram; bucket counts are exact; "
        "a bucket the poll's deadline left unresolved is absent that poll). "
        "_gsum is exact when whmcs_exporter_sample_ratio{collector=\"wait_distribution\"} is 1, otherwise "
        "estimated by interpolating ages between the fetched tickets." + FROM_LAST_POLL)
WINDOW = 250
DENSITY_SPAN = 50  # tickets: how far from a bracket end the local density is read
LOG_OFFSET = 60.0  # seconds: keeps log(wait) finite for tickets answered this very second

Fetch = Callable[[int, int], Page]


@dataclass(frozen=True)
class WaitDistributionPart:
    whmcs: str
    buckets: tuple[tuple[float, int], ...] | None  # (le, cumulative count), +Inf last; None = unresolved
    gsum: float | None
    sample_ratio: float | None
    calls: int  # GetTickets calls this collector made (not those answered by pages the poll read already)
    gsum_exact: bool = False

    def families(self, out: FamilySink) -> None:
        if self.buckets is not None:
            out.gauge_histogram("whmcs_tickets_awaiting_reply_age_seconds", HELP_WAITS, {"whmcs": self.whmcs},
                                self.buckets, self.gsum)


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


class WaitDistributionCollector:
    """Bound: `distribution_max_calls` GetTickets calls (1-2 up to sample_limit tickets, 14-30 at 100k)."""

    name = "wait_distribution"

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._told_unresolved = False
        self._counts: dict[float, int] = {}  # bound -> count found last poll: where the search starts looking

    def poll(self, ctx: PollContext) -> WaitDistributionPart:
        inst = ctx.installation
        params = ctx.tickets_params(status=AWAITING)
        # A list short enough is read whole once per poll (and maybe already was, by oldest_awaiting): every
        # window of the search is then answered from it, and every bucket and _gsum are exact at no extra call.
        calls_before = ctx.reads.list_calls
        whole = ctx.reads.whole(params, ctx.awaiting_hint)
        hint = whole.total if whole is not None else ctx.awaiting_hint
        full_limit = max(self.window, inst.sample_limit, hint if whole is not None else 0)

        def fetch(start: int, num: int) -> Page:
            return ctx.reads.page(params, start, num)

        found = search(fetch, ctx.now, inst.buckets, total_hint=hint, full_limit=full_limit,
                       max_calls=inst.distribution_max_calls, window=self.window, stop=ctx.pace.past_deadline,
                       previous=self._counts)
        calls = ctx.reads.list_calls - calls_before  # those the poll's earlier reads answered are not counted
        if found.counts is not None:
            self._counts = {le: n for le, n in zip(inst.buckets, found.counts) if n is not None}
        if found.counts is None:
            level = logging.DEBUG if self._told_unresolved else logging.WARNING
            self._told_unresolved = True
            log.log(level, "whmcs=%s collector=wait_distribution: %d awaiting tickets, boundaries still open after "
                    "distribution_max_calls=%d calls (tickets moving fast, or an unusual spread of waits); "
                    "not exporting whmcs_tickets_awaiting_reply_age_seconds this poll rather than a guess. "
                    "Raise distribution_max_calls to allow more.",
                    inst.name, found.total, inst.distribution_max_calls)
            return WaitDistributionPart(inst.name, None, None, None, calls)
        self._told_unresolved = False
        # Only exact buckets: those the deadline left open are absent this poll (+Inf, the total, always known).
        buckets = tuple((le, n) for le, n in zip((*inst.buckets, float("inf")), found.counts) if n is not None)
        ratio = 1.0 if found.total == 0 else min(1.0, found.fetched / found.total)
        return WaitDistributionPart(inst.name, buckets, found.gsum, ratio, calls, found.exact_sum)
