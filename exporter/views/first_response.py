"""First-response time: opening to first staff reply, for tickets opened in a trailing window.

Which tickets: GetTickets (no status filter, so closed tickets count) is sorted
by `lastreply` DESC and a ticket's last reply is never older than its opening,
so every ticket opened in the window lies in the list's head, down to
`lastreply < now - window`. The first poll reads that head; later polls read
only the part newer than the previous poll's newest `lastreply` (minus
`HEAD_MARGIN`), plus a full pass every `FULL_PASS_INTERVAL`, or at once when
`totalresults` says tickets were merged or deleted, to drop those.

Replies: GetTicket per ticket. A first response never changes once it exists,
so it is cached for the ticket's life in the window; a ticket is fetched again
only while it has none and its `lastreply` moved. A ticket whose `lastreply`
still equals its opening time has no reply at all and needs no call.

Calls per poll: GetTickets: 1 page in steady state (more when over
`INCREMENTAL_PAGE` rows changed), head size / `PAGE_SIZE` + 1 on a full pass,
+1 when a full pass misses a tracked ticket; GetTicket: at most
`max_ticket_fetches_per_poll`, oldest-opened first, the rest waits for the next
poll (`whmcs_exporter_response_coverage_ratio` < 1 meanwhile).

State is committed only for work that completed: the head scan is merged
after its last page, each GetTicket result after its answer, so an error in
the middle of a poll leaves a cache that is consistent, just less up to date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from exporter.config import InstallationConfig
from exporter.errors import NotFound
from exporter.families import FROM_LAST_POLL, FamilySink
from exporter.views.base import PollContext
from exporter.views.replies import next_start, parse_ticket_replies, summarise
from exporter.views.ticket_list import TicketRow, fetch_page

log = logging.getLogger(__name__)

PAGE_SIZE = 250
# A steady-state poll sees few changed tickets: a smaller first page keeps the answer small.
INCREMENTAL_PAGE = 100
# Rows re-read below the previous newest `lastreply`: whole-second ties and a reply stored while we paged.
HEAD_MARGIN = 300.0
# Rows re-read at each page boundary, for tickets that left the list between two page calls.
PAGE_OVERLAP = 2
# A full pass re-reads the whole window head to notice merged/deleted tickets totalresults could not reveal.
FULL_PASS_INTERVAL = 3600.0

_SCOPE = (" Covers tickets opened in the trailing response window whose replies the exporter has read;"
          " whmcs_exporter_response_coverage_ratio below 1 means the rest are still being fetched.")
HELP_HIST = ("Seconds from a ticket's opening to its first staff reply, over tickets opened in the window that "
             "got one." + _SCOPE + FROM_LAST_POLL)
HELP_WITHOUT = "Tickets opened in the window with no staff reply yet." + _SCOPE + FROM_LAST_POLL
HELP_OLDEST = ("Seconds since the oldest ticket opened in the window with no staff reply yet was opened; 0 when "
               "none." + _SCOPE + FROM_LAST_POLL)
HELP_COVERAGE = ("Share of the tickets opened in the response window whose replies are known (1 when the window "
                 "is empty); the first-response metrics cover only those." + FROM_LAST_POLL)


@dataclass(frozen=True)
class FirstResponsePart:
    whmcs: str
    buckets: tuple[tuple[float, int], ...]
    total_seconds: float
    without_staff_reply: int
    oldest_without_staff_reply_age: float
    coverage: float

    @property
    def sample_ratio(self) -> float:
        return self.coverage

    def families(self, out: FamilySink) -> None:
        labels = {"whmcs": self.whmcs}
        out.gauge_histogram("whmcs_ticket_first_response_seconds", HELP_HIST, labels, self.buckets,
                            self.total_seconds)
        out.gauge("whmcs_tickets_without_staff_reply", HELP_WITHOUT, labels, self.without_staff_reply)
        out.gauge("whmcs_ticket_oldest_without_staff_reply_age_seconds", HELP_OLDEST, labels,
                  self.oldest_without_staff_reply_age)
        out.gauge("whmcs_exporter_response_coverage_ratio", HELP_COVERAGE, labels, self.coverage)


@dataclass(frozen=True)
class Tracked:
    """One ticket opened in the window, as far as the exporter knows it."""

    opened: float
    lastreply: float
    read_at: float | None = None  # the ticket's lastreply when its replies were last read
    first_staff_reply: float | None = None
    unreadable: bool = False  # its GetTicket answer could not be read; retried when lastreply moves

    @property
    def known(self) -> bool:
        if self.read_at is None or self.unreadable:
            return False
        return self.first_staff_reply is not None or self.lastreply <= self.read_at

    @property
    def needs_fetch(self) -> bool:
        if self.unreadable and self.read_at is not None and self.lastreply <= self.read_at:
            return False
        return not self.known


def track(row: TicketRow, previous: Tracked | None) -> Tracked:
    """Merge a list row into what is known; a reply-less ticket (lastreply == opening) is known without a call."""
    assert row.date is not None
    if previous is None:
        previous = Tracked(opened=row.date, lastreply=row.lastreply)
        if row.lastreply <= row.date:
            return replace(previous, read_at=row.lastreply)
        return previous
    return replace(previous, lastreply=max(previous.lastreply, row.lastreply))


class FirstResponseView:
    """Polls first-response times with a cache that lives as long as the installation's poller."""

    name = "first_response"

    def __init__(self, installation: InstallationConfig, full_pass_interval: float = FULL_PASS_INTERVAL) -> None:
        self.window = installation.response_window
        self.budget = installation.max_ticket_fetches_per_poll
        self.full_pass_interval = full_pass_interval
        self.tickets: dict[int, Tracked] = {}
        self._newest: float | None = None  # newest lastreply of the last completed head scan
        self._total: int | None = None  # totalresults of that scan
        self._max_id = 0
        self._last_full: float | None = None
        self.last_fetches = 0  # GetTicket calls of the last poll, for tests and logs
        self.last_full_pass = False

    # -- the head of the list -------------------------------------------------------------------------
    def _scan(self, ctx: PollContext) -> tuple[dict[int, TicketRow], bool, int]:
        """Rows of the list head; whether it was a full pass; the list's totalresults."""
        cutoff = ctx.now - self.window
        full = (self._newest is None or self._last_full is None
                or ctx.now - self._last_full >= self.full_pass_interval)
        stop = cutoff if full else max(cutoff, self._newest - HEAD_MARGIN)
        params = ctx.tickets_params()
        rows: dict[int, TicketRow] = {}
        start, size, total = 0, (PAGE_SIZE if full else INCREMENTAL_PAGE), None
        while True:
            page = fetch_page(ctx.client, ctx.zone, params, start, size)
            total = page.total if total is None else total
            for row in page.tickets:
                seen = rows.get(row.id)
                if seen is None or row.lastreply > seen.lastreply:
                    rows[row.id] = row
            done = page.reaches_end or not page.tickets or page.tickets[-1].lastreply < stop
            if done and not full and self._total is not None:
                # New tickets take new ids; any other change of totalresults is a merge or deletion.
                new = sum(1 for i in rows if i > self._max_id)
                if total != self._total + new:
                    full, stop = True, cutoff
                    done = page.reaches_end or not page.tickets or page.tickets[-1].lastreply < stop
            if done:
                return rows, full, total
            start, size = next_start(page, PAGE_OVERLAP), PAGE_SIZE

    def _merge(self, ctx: PollContext, rows: dict[int, TicketRow], full: bool, total: int) -> None:
        cutoff = ctx.now - self.window
        tickets = {i: t for i, t in self.tickets.items() if t.opened >= cutoff}  # eviction
        for ident, row in rows.items():
            if row.date is not None and row.date >= cutoff:
                tickets[ident] = track(row, tickets.get(ident))
        if full:
            missing = [i for i in tickets if i not in rows]
            if missing:
                # A ticket replied to while we paged jumps to the top, past pages already read: look there
                # once more before believing it is gone (merged or deleted).
                page = fetch_page(ctx.client, ctx.zone, ctx.tickets_params(), 0, PAGE_SIZE)
                top = {row.id: row for row in page.tickets}
                for ident in missing:
                    row = top.get(ident)
                    if row is None:
                        del tickets[ident]
                    elif row.date is not None:
                        tickets[ident] = track(row, tickets[ident])
            self._last_full = ctx.now
        # Commit the scan as one step: nothing above has touched the view's state.
        self.tickets = tickets
        if rows:
            self._newest = max(max(r.lastreply for r in rows.values()), self._newest or 0.0)
            self._max_id = max(self._max_id, max(rows))
        self._total = total

    # -- replies ---------------------------------------------------------------------------------------
    def _fetch(self, ctx: PollContext) -> None:
        due = sorted((t.opened, i) for i, t in self.tickets.items() if t.needs_fetch)
        self.last_fetches = 0
        for _, ident in due[:self.budget]:
            self.last_fetches += 1
            try:
                answer = ctx.client.call("GetTicket", {"ticketid": ident, "repliessort": "ASC"})
            except NotFound:
                self.tickets.pop(ident, None)  # merged or deleted since the list was read
                continue
            current = self.tickets[ident]
            try:
                found = parse_ticket_replies(answer, ctx.zone)
            except ValueError as exc:
                # One odd ticket must not fail the view on every poll: it is left out (coverage shows it).
                log.warning("whmcs=%s: GetTicket %d: unreadable answer (%s); left out until the ticket changes",
                            ctx.installation.name, ident, exc)
                self.tickets[ident] = replace(current, read_at=current.lastreply, unreadable=True)
                continue
            if found.id != ident:
                self.tickets.pop(ident, None)  # answered with another ticket: this one was merged into it
                continue
            last = max(current.lastreply, found.lastreply or current.lastreply)
            self.tickets[ident] = replace(current, lastreply=last, read_at=last,
                                          first_staff_reply=found.first_staff_reply, unreadable=False)

    def poll(self, ctx: PollContext) -> FirstResponsePart:
        rows, full, total = self._scan(ctx)
        self.last_full_pass = full
        self._merge(ctx, rows, full, total)
        self._fetch(ctx)
        summary = summarise(((t.opened, t.known, t.first_staff_reply) for t in self.tickets.values()),
                            ctx.now, ctx.installation.buckets)
        return FirstResponsePart(
            whmcs=ctx.installation.name, buckets=summary.buckets, total_seconds=summary.total_seconds,
            without_staff_reply=summary.without_staff_reply,
            oldest_without_staff_reply_age=summary.oldest_without_staff_reply_age, coverage=summary.coverage)
