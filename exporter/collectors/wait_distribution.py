"""The exact wait-time distribution of awaiting-reply tickets, as a gauge histogram, in few API calls.

GetTickets(status="Awaiting Reply") is ordered by `lastreply` newest first, so "waited <= le" holds for
a prefix of the list: the bucket count for `le` is the position of the first ticket that waited longer.
Each bucket is therefore one boundary to find in one sorted list, and a boundary is known exactly once
two adjacent positions straddle it.

The boundaries are found by boundary_search.search. Cost per poll (N = awaiting tickets, W = WINDOW = 250),
every page through the poll's shared reads:
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
from dataclasses import dataclass

from exporter.collectors.base import PollContext
from exporter.collectors.boundary_search import WINDOW, search
from exporter.collectors.ticket_lists import AWAITING, Page, sample_ratio
from exporter.families import FROM_LAST_POLL, FamilySink

log = logging.getLogger(__name__)

HELP_WAITS = ("Awaiting-reply tickets by seconds since their last reply (gauge histogram; bucket counts are exact; "
        "a bucket the poll's deadline left unresolved is absent that poll). "
        "_gsum is exact when whmcs_exporter_sample_ratio{collector=\"wait_distribution\"} is 1, otherwise "
        "estimated by interpolating ages between the fetched tickets." + FROM_LAST_POLL)


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
        ratio = sample_ratio(found.fetched, found.total)
        return WaitDistributionPart(inst.name, buckets, found.gsum, ratio, calls, found.exact_sum)
