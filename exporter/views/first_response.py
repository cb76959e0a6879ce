"""First-response time: opening to first staff reply, for tickets opened in a trailing window.

Which tickets: GetTickets (no status filter, so closed tickets count) is sorted
by `lastreply` DESC and a ticket's last reply is never older than its opening,
so every ticket opened in the window lies in the list's head, down to
`lastreply < now - window`. The view lists that head with a **full pass** and
keeps it current with an **incremental head scan** every poll: the part of the
list newer than the previous poll's newest `lastreply` (minus `HEAD_MARGIN`).

Page budget: every poll reads at most `max_list_pages` GetTickets pages
(default `MAX_LIST_PAGES_PER_POLL`). The head scan runs first and may use all
but one of them, so fresh traffic is never starved by a long full pass; the
full pass gets the rest and continues on the next poll(s) from the list
position where it stopped. A full pass runs on the first poll, `FULL_PASS_INTERVAL`
after the previous one completed, at once when `totalresults` says tickets were
merged or deleted, and when the head scan overflows its pages (a burst, or the
first poll after an outage); a merge or deletion noticed while a pass runs
makes another pass follow it at once. Should the head scan overflow on every
poll (over `max_list_pages - 1` pages of changes per poll interval, or a run of
equal `lastreply` longer than those pages: `next_start` then advances one row
per page), the pass restarts below the head each time and never completes;
coverage stays below 1 meanwhile.

Paging across polls by offset: between two polls the rows below the pass's
cursor move. New tickets and replies put a ticket at the top, which shifts the
rows below its old position *down*: those rows are read twice (harmless), and
the moved ticket itself is seen by the next head scan (it is newer than the
previous newest). Merged or deleted tickets shift the rows below them *up*,
which could make the pass skip rows: the head scan counts them (`totalresults`
against new ids) and the cursor steps back that many rows (plus
`PAGE_OVERLAP`). What can still be skipped is a removal that `totalresults`
hides (a merge undone as another ticket is deleted); such a ticket, if it was
tracked, is missed by this pass's missing-ticket check, dropped, and listed again
by the next pass (one more GetTicket). A pass ends when a page reaches below
the window; tracked tickets it did not list are looked for once more at the top
of the list (a reply while we paged moves a ticket past pages already read),
or, when the page budget is spent, in the next poll's head scan, and dropped if
absent (merged or deleted).

Merges and deletions that `totalresults` revealed are counted until a full
pass that began after them has dropped the tickets (`_suspect`); until then as
many known tickets are left out of the coverage ratio, which stays below 1.

Coverage while the window is not listed yet (the first pass, or after a head
scan overflow, until that pass completes): the number of tickets opened in the
window is unknown, but at most `tickets listed so far + rows of the list not
read yet` (`totalresults - cursor`). The exported
`whmcs_exporter_response_coverage_ratio` is then `known / (listed + unread)`:
a lower bound of the true share, below 1 until the window is listed, and exact
from then on (`known / tracked`). The histogram, count and oldest age are
always over the known tickets only, as when replies are still being read.

Replies: GetTicket per ticket. A first response never changes once it exists,
so it is cached for the ticket's life in the window; a ticket is fetched again
only while it has none and its `lastreply` moved. A ticket whose `lastreply`
still equals its opening time has no reply at all and needs no call.

Calls per poll: GetTickets: at most `max_list_pages` (steady state: 1 page of
`INCREMENTAL_PAGE` rows; during a full pass: the head scan's page(s), the rest
for the pass, one of them at its end for the look at the top); GetTicket:
at most `max_ticket_fetches_per_poll`, oldest-opened first, the rest waits for the
next poll (`whmcs_exporter_response_coverage_ratio` < 1 meanwhile).

Memory: one `Tracked` (slots; ~220 bytes with its floats, id and dict entry,
measured with tracemalloc at 53,000 tickets) per ticket opened in the window;
full-pass rows are merged page by page and the head scan holds at most
`max_list_pages - 1` pages, so no more than that many pages of rows are alive
at once.

State is committed only for work that completed: the head scan is merged
after its last page, each full-pass page after its answer (with the cursor),
each GetTicket result after its answer, so an error in the middle of a poll
leaves a cache that is consistent, just less up to date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from exporter.config import InstallationConfig
from exporter.errors import NotFound
from exporter.families import FROM_LAST_POLL, FamilySink
from exporter.views.base import PollContext
from exporter.views.replies import next_start, parse_ticket_replies, summarise
from exporter.views.ticket_list import Page, TicketRow, fetch_page

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
# GetTickets pages per poll, head scan and full pass together (every call is an admin login in WHMCS).
MAX_LIST_PAGES_PER_POLL = 8

_SCOPE = (" Covers tickets opened in the trailing response window whose replies the exporter has read;"
          " whmcs_exporter_response_coverage_ratio below 1 means the rest are still being fetched.")
HELP_HIST = ("Seconds from a ticket's opening to its first staff reply, over tickets opened in the window that "
             "got one." + _SCOPE + FROM_LAST_POLL)
HELP_WITHOUT = "Tickets opened in the window with no staff reply yet." + _SCOPE + FROM_LAST_POLL
HELP_OLDEST = ("Seconds since the oldest ticket opened in the window with no staff reply yet was opened; 0 when "
               "none." + _SCOPE + FROM_LAST_POLL)
HELP_COVERAGE = ("Share of the tickets opened in the response window whose replies are known (1 when the window "
                 "is empty); the first-response metrics cover only those. While the window is still being "
                 "listed, a lower bound." + FROM_LAST_POLL)


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


@dataclass(frozen=True, slots=True)
class Tracked:
    """One ticket opened in the window, as far as the exporter knows it (one per ticket: kept compact)."""

    opened: float
    lastreply: float
    read_at: float | None = None  # the ticket's lastreply when its replies were last read
    first_staff_reply: float | None = None
    unreadable: bool = False  # its GetTicket answer could not be read; retried when lastreply moves
    listed: int = 0  # the full pass during which the list last showed it

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


def track(row: TicketRow, previous: Tracked | None, listed: int = 0) -> Tracked:
    """Merge a list row into what is known; a reply-less ticket (lastreply == opening) is known without a call."""
    assert row.date is not None
    if previous is None:
        return Tracked(opened=row.date, lastreply=row.lastreply,
                       read_at=row.lastreply if row.lastreply <= row.date else None, listed=listed)
    last = max(previous.lastreply, row.lastreply)
    if last == previous.lastreply and listed == previous.listed:
        return previous
    return replace(previous, lastreply=last, listed=listed)


@dataclass(slots=True)
class FullPass:
    """A full pass over the window head, possibly spanning several polls."""

    number: int  # tickets it listed carry this number in `Tracked.listed`
    cursor: int  # list position of its next page
    done: bool = False  # listed down to the window's end; only the check for unlisted tickets is left
    top_seen: bool = False  # a head scan ran after `done`: tickets that moved to the top meanwhile are listed
    rerun: bool = False  # a merge or deletion was noticed while it ran: another pass follows at once
    settles: int = 0  # merges/deletions noticed before it began: it drops those tickets


class FirstResponseView:
    """Polls first-response times with a cache that lives as long as the installation's poller."""

    name = "first_response"

    def __init__(self, installation: InstallationConfig, full_pass_interval: float = FULL_PASS_INTERVAL,
                 max_list_pages: int = MAX_LIST_PAGES_PER_POLL) -> None:
        if max_list_pages < 2:
            raise ValueError("max_list_pages must be at least 2: one for the head scan, one for a full pass")
        self.window = installation.response_window
        self.budget = installation.max_ticket_fetches_per_poll
        self.full_pass_interval = full_pass_interval
        self.max_pages = max_list_pages
        self.tickets: dict[int, Tracked] = {}
        self._newest: float | None = None  # newest lastreply of the last completed head scan
        self._total: int | None = None  # totalresults of that scan
        self._max_id = 0
        self._last_full: float | None = None  # when the last full pass completed
        self._pass: FullPass | None = None
        self._passes = 0  # number of the last full pass started
        self._listed = False  # every ticket of the window has been listed (a full pass completed, no overflow since)
        self._rerun = False
        self._suspect = 0  # merges/deletions noticed that no completed full pass has dropped yet
        self.last_fetches = 0  # GetTicket calls of the last poll, for tests and logs
        self.last_pages = 0  # GetTickets calls of the last poll
        self.last_full_pass = False  # the last poll worked on a full pass

    @property
    def listing_complete(self) -> bool:
        """Whether every ticket of the window has been listed (coverage can reach 1)."""
        return self._listed or (self._pass is not None and self._pass.done)

    def _page(self, ctx: PollContext, params: dict, start: int, size: int) -> Page:
        self.last_pages += 1
        return fetch_page(ctx.client, ctx.zone, params, start, size)

    def _list(self, rows: list[TicketRow] | tuple[TicketRow, ...], cutoff: float, listed: int) -> None:
        tickets = self.tickets
        for row in rows:
            if row.date is not None and row.date >= cutoff:
                tickets[row.id] = track(row, tickets.get(row.id), listed)

    def _begin_pass(self, cursor: int, done: bool = False) -> FullPass:
        self._passes += 1
        self._rerun = False
        self._pass = FullPass(number=self._passes, cursor=cursor, done=done, settles=self._suspect)
        return self._pass

    # -- the head of the list -------------------------------------------------------------------------
    def _head(self, ctx: PollContext, cutoff: float) -> None:
        """Read the list from the top down to the previous newest `lastreply` (minus the margin); merge it."""
        assert self._newest is not None
        stop = max(cutoff, self._newest - HEAD_MARGIN)
        params = ctx.tickets_params()
        rows: dict[int, TicketRow] = {}
        timed = self._last_full is None or ctx.now - self._last_full >= self.full_pass_interval
        # When a full pass is due, the head scan's page is its first page: a whole one.
        size = PAGE_SIZE if self._pass is None and (timed or self._rerun) else INCREMENTAL_PAGE
        start, total = 0, None
        while True:
            page = self._page(ctx, params, start, size)
            total = page.total if total is None else total
            for row in page.tickets:
                seen = rows.get(row.id)
                if seen is None or row.lastreply > seen.lastreply:
                    rows[row.id] = row
            start, size = next_start(page, PAGE_OVERLAP), PAGE_SIZE
            ended = page.reaches_end or not page.tickets
            complete = ended or page.tickets[-1].lastreply < stop
            if complete or self.last_pages >= self.max_pages - 1:
                break
        below_window = ended or (bool(page.tickets) and page.tickets[-1].lastreply < cutoff)
        # New tickets take new ids; any other change of totalresults is a merge or deletion (or an undone merge).
        new = sum(1 for i in rows if i > self._max_id)
        changed = complete and self._total is not None and total != self._total + new
        removed = max(0, self._total + new - total) if changed and self._total is not None else 0
        self._suspect += removed
        p = self._pass
        if p is None and (changed or self._rerun or not complete or timed):
            # The head rows just read are the pass's first rows: it continues below them.
            p = self._begin_pass(start, done=complete and below_window)
        elif p is not None:
            if changed:
                p.rerun = True
                p.cursor = max(0, p.cursor - removed)  # rows below a removal moved up: step back over them
            if not complete:
                p.cursor, p.done = min(p.cursor, start), False  # changed rows below the head: list them again
            elif p.done:
                p.top_seen = True
        if not complete:
            self._listed = False
        self._list(list(rows.values()), cutoff, self._passes)
        if rows:
            self._newest = max(max(r.lastreply for r in rows.values()), self._newest)
            self._max_id = max(self._max_id, max(rows))
        self._total = total

    # -- the full pass ---------------------------------------------------------------------------------
    def _continue_pass(self, ctx: PollContext, cutoff: float) -> None:
        p = self._pass
        assert p is not None
        params = ctx.tickets_params()
        while not p.done and self.last_pages < self.max_pages:
            page = self._page(ctx, params, p.cursor, PAGE_SIZE)
            self._list(page.tickets, cutoff, p.number)
            if page.tickets:
                if self._newest is None:  # the very first page: the head scans start from it
                    self._newest = max(r.lastreply for r in page.tickets)
                    self._total = page.total
                # A ticket first seen below the head existed when totalresults was read: not a new one.
                self._max_id = max(self._max_id, max(r.id for r in page.tickets))
            elif self._newest is None:
                self._newest, self._total = ctx.now, page.total
            p.cursor = next_start(page, PAGE_OVERLAP)
            p.done = page.reaches_end or not page.tickets or page.tickets[-1].lastreply < cutoff
            # The last page read may be the only one of this poll; `top_seen` needs a head scan after it.
            p.top_seen = False
        if p.done:
            self._finish(ctx, p, cutoff)

    def _finish(self, ctx: PollContext, p: FullPass, cutoff: float) -> None:
        """Drop tracked tickets the pass did not list (merged or deleted), after one more look at the top."""
        # Tickets opened before the window are not listed any more: they are evicted, not missing.
        missing = [i for i, t in self.tickets.items() if t.listed != p.number and t.opened >= cutoff]
        if missing and not p.top_seen:
            if self.last_pages >= self.max_pages:
                return  # the next poll's head scan looks at the top, then the pass ends
            # A ticket replied to while we paged jumps to the top, past pages already read.
            page = self._page(ctx, ctx.tickets_params(), 0, PAGE_SIZE)
            self._list(page.tickets, cutoff, p.number)
            missing = [i for i in missing if self.tickets[i].listed != p.number]
        for ident in missing:
            del self.tickets[ident]
        self._pass = None
        self._last_full = ctx.now
        self._listed = True
        self._rerun = p.rerun
        self._suspect = max(0, self._suspect - p.settles)

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

    def _coverage(self, known: int) -> float:
        if not self.tickets and self.listing_complete:
            return 1.0
        # Up to `_suspect` tracked tickets are merged or deleted and not dropped yet: not counted as known.
        known = max(0, known - self._suspect)
        unread = 0
        if not self.listing_complete:
            # Tickets of the window not listed yet lie in the rows below the cursor: at most that many.
            cursor = self._pass.cursor if self._pass is not None else 0
            unread = max(1, (self._total or 0) - cursor)
        return known / (len(self.tickets) + unread)

    def poll(self, ctx: PollContext) -> FirstResponsePart:
        cutoff = ctx.now - self.window
        self.last_pages = 0
        if self._newest is None:
            if self._pass is None:
                self._begin_pass(0)
        else:
            self._head(ctx, cutoff)
        self.last_full_pass = self._pass is not None
        if self._pass is not None:
            self._continue_pass(ctx, cutoff)
        for ident in [i for i, t in self.tickets.items() if t.opened < cutoff]:
            del self.tickets[ident]  # eviction: opened before the window
        self._fetch(ctx)
        summary = summarise(((t.opened, t.known, t.first_staff_reply) for t in self.tickets.values()),
                            ctx.now, ctx.installation.buckets)
        return FirstResponsePart(
            whmcs=ctx.installation.name, buckets=summary.buckets, total_seconds=summary.total_seconds,
            without_staff_reply=summary.without_staff_reply,
            oldest_without_staff_reply_age=summary.oldest_without_staff_reply_age,
            coverage=self._coverage(summary.known))
