"""Which tickets were opened in the first-response window: a listing of the `lastreply DESC` list's head.

A **full pass** lists the window's head page by page (across polls when the page
budget runs out), and an **incremental head scan** keeps it current every poll.
Merges and deletions that `totalresults` reveals step the pass back and are
counted until a pass drops the tickets. The design, its bounds and its failure
modes: docs/first-response.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from exporter.collectors.base import PollContext
from exporter.collectors.ticket_lists import Page, TicketRow, next_page

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

@dataclass(frozen=True, slots=True)
class Tracked:
    """One ticket opened in the window, as far as the exporter knows it (one per ticket: kept compact)."""

    opened: float
    lastreply: float
    read_at: float | None = None  # the ticket's lastreply when its replies were last read
    first_staff_reply: float | None = None
    unreadable: bool = False  # its GetTicket answer could not be read; retried when lastreply moves
    listed: int = 0  # the full pass during which the list last showed it
    deptid: int | None = None  # department and priority as the list last showed them, for the labels;
    priority: str | None = None  # None: not listed since state of a version without them was restored

    @property
    def labelled(self) -> bool:
        return self.priority is not None

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
    # One string object per priority text, not one per ticket: 55 bytes a ticket at 100k tickets.
    priority = sys.intern(row.priority)
    if previous is None:
        return Tracked(opened=row.date, lastreply=row.lastreply,
                       read_at=row.lastreply if row.lastreply <= row.date else None, listed=listed,
                       deptid=row.deptid, priority=priority)
    last = max(previous.lastreply, row.lastreply)
    # A ticket moved to another department or priority takes its new labels the next time it is listed.
    same_labels = row.deptid == previous.deptid and row.priority == previous.priority
    if last == previous.lastreply and listed == previous.listed and same_labels:
        return previous
    return replace(previous, lastreply=last, listed=listed, deptid=row.deptid, priority=priority)


@dataclass(slots=True)
class FullPass:
    """A full pass over the window head, possibly spanning several polls."""

    number: int  # tickets it listed carry this number in `Tracked.listed`
    cursor: int  # list position of its next page
    size: int = PAGE_SIZE  # rows its next page asks for: more than a page when a tie run needs it
    done: bool = False  # listed down to the window's end; only the check for unlisted tickets is left
    top_seen: bool = False  # a head scan ran after `done`: tickets that moved to the top meanwhile are listed
    rerun: bool = False  # a merge or deletion was noticed while it ran: another pass follows at once
    settles: int = 0  # merges/deletions noticed before it began: it drops those tickets


class WindowListing:
    """The tickets opened in the window as far as the list has shown them, kept current poll by poll.

    `tickets` is shared with the collector, which records what GetTicket tells about each one.
    """

    def __init__(self, full_pass_interval: float = FULL_PASS_INTERVAL,
                 max_list_pages: int = MAX_LIST_PAGES_PER_POLL) -> None:
        if max_list_pages < 2:
            raise ValueError("max_list_pages must be at least 2: one for the head scan, one for a full pass")
        self.full_pass_interval = full_pass_interval
        self.max_pages = max_list_pages
        self.tickets: dict[int, Tracked] = {}
        self._newest: float | None = None  # newest lastreply of the last completed head scan
        self._total: int | None = None  # totalresults of that scan
        self._max_id = 0
        self._last_full: float | None = None  # when the last full pass completed
        self._pass: FullPass | None = None
        # The head scan's first page: INCREMENTAL_PAGE, or the size that held the top's tie run last time.
        self._head_size = INCREMENTAL_PAGE
        self._passes = 0  # number of the last full pass started
        self._listed = False  # every ticket of the window has been listed (a full pass completed, no overflow since)
        self._rerun = False
        self._suspect = 0  # merges/deletions noticed that no completed full pass has dropped yet
        self.last_pages = 0  # GetTickets calls of the last poll
        self.last_full_pass = False  # the last poll worked on a full pass

    def update(self, ctx: PollContext, cutoff: float) -> None:
        """List what changed since the last poll (and more of a full pass), within the page budget; evict
        tickets opened before `cutoff`."""
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

    @property
    def suspect(self) -> int:
        """Merges/deletions noticed that no completed full pass has dropped yet."""
        return self._suspect

    @property
    def unread(self) -> int:
        """While the window is not listed yet: at most this many of its tickets lie in rows not read yet."""
        if self.complete:
            return 0
        cursor = self._pass.cursor if self._pass is not None else 0
        return max(1, (self._total or 0) - cursor)

    @property
    def complete(self) -> bool:
        """Whether every ticket of the window has been listed (coverage can reach 1)."""
        return self._listed or (self._pass is not None and self._pass.done)

    def _page(self, ctx: PollContext, params: dict, start: int, size: int) -> Page:
        self.last_pages += 1
        return ctx.reads.page(params, start, size)

    def _list(self, rows: list[TicketRow] | tuple[TicketRow, ...], cutoff: float, listed: int) -> None:
        tickets = self.tickets
        for row in rows:
            if row.date is not None and row.date >= cutoff:
                tickets[row.id] = track(row, tickets.get(row.id), listed)

    def _begin_pass(self, cursor: int, done: bool = False, size: int = PAGE_SIZE) -> FullPass:
        self._passes += 1
        self._rerun = False
        self._pass = FullPass(number=self._passes, cursor=cursor, size=size, done=done, settles=self._suspect)
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
        start, total, size = 0, None, max(size, self._head_size)
        while True:
            page = self._page(ctx, params, start, size)
            total = page.total if total is None else total
            _keep_newest(rows, page.tickets)
            read, (start, size) = size, next_page(page, PAGE_OVERLAP, PAGE_SIZE)
            ended = page.reaches_end or not page.tickets
            complete = ended or page.tickets[-1].lastreply < stop
            if complete or self.last_pages >= self.max_pages - 1 or ctx.pace.past_deadline():
                break
        # A tie run at the top stays there until newer replies come: the next scan reads it in one page.
        self._head_size = read if complete and read > PAGE_SIZE else INCREMENTAL_PAGE
        below_window = ended or (bool(page.tickets) and page.tickets[-1].lastreply < cutoff)
        # New tickets take new ids; any other change of totalresults is a merge or deletion (or an undone merge).
        new = sum(1 for i in rows if i > self._max_id)
        changed = complete and self._total is not None and total != self._total + new
        removed = max(0, self._total + new - total) if changed and self._total is not None else 0
        self._suspect += removed
        p = self._pass
        if p is None and (changed or self._rerun or not complete or timed):
            # The head rows just read are the pass's first rows: it continues below them.
            p = self._begin_pass(start, done=complete and below_window, size=size)
        elif p is not None:
            if changed:
                p.rerun = True
                p.cursor = max(0, p.cursor - removed)  # rows below a removal moved up: step back over them
            if not complete:  # changed rows below the head: list them again
                if start < p.cursor:
                    p.cursor, p.size = start, size
                p.done = False
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
        while not p.done and self.last_pages < self.max_pages and not ctx.pace.past_deadline():
            page = self._page(ctx, params, p.cursor, p.size)
            self._list(page.tickets, cutoff, p.number)
            if page.tickets:
                if self._newest is None:  # the very first page: the head scans start from it
                    self._newest = max(r.lastreply for r in page.tickets)
                    self._total = page.total
                # A ticket first seen below the head existed when totalresults was read: not a new one.
                self._max_id = max(self._max_id, max(r.id for r in page.tickets))
            elif self._newest is None:
                self._newest, self._total = ctx.now, page.total
            p.cursor, p.size = next_page(page, PAGE_OVERLAP, PAGE_SIZE)
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
            if self.last_pages >= self.max_pages or ctx.pace.past_deadline():
                return  # the next poll's head scan looks at the top, then the pass ends
            # A ticket replied to while we paged jumps to the top, past pages already read.
            page = self._page(ctx, ctx.tickets_params(), 0, max(PAGE_SIZE, self._head_size))
            self._list(page.tickets, cutoff, p.number)
            missing = [i for i in missing if self.tickets[i].listed != p.number]
        for ident in missing:
            del self.tickets[ident]
        self._pass = None
        self._last_full = ctx.now
        self._listed = True
        self._rerun = p.rerun
        self._suspect = max(0, self._suspect - p.settles)


    # -- state across restarts ---------------------------------------------------------------------------
    def request_full_pass(self) -> None:
        """List the whole window again at the next poll (e.g. restored tickets lack what the list shows)."""
        self._last_full = None

    def export_state(self) -> dict:
        """The cursors and watermarks (JSON-able); `tickets` are saved by the collector that shares them."""
        p = self._pass
        return {"newest": self._newest, "total": self._total, "max_id": self._max_id, "last_full": self._last_full,
                "passes": self._passes, "listed": self._listed, "rerun": self._rerun, "suspect": self._suspect,
                "pass": None if p is None else [p.number, p.cursor, p.done, p.top_seen, p.rerun, p.settles]}

    def import_state(self, state: dict, tickets: dict[int, Tracked]) -> None:
        """Take over exported cursors and the tickets they describe; raises (changing nothing) if malformed."""
        number, cursor, done, top_seen, rerun, settles = state["pass"] if state["pass"] is not None else [None] * 6
        full = None if number is None else FullPass(int(number), int(cursor), bool(done), bool(top_seen),
                                                    bool(rerun), int(settles))
        values = (_opt_float(state["newest"]), _opt_int(state["total"]), int(state["max_id"]),
                  _opt_float(state["last_full"]), int(state["passes"]), bool(state["listed"]),
                  bool(state["rerun"]), int(state["suspect"]))
        (self._newest, self._total, self._max_id, self._last_full, self._passes, self._listed, self._rerun,
         self._suspect) = values
        self._pass = full
        self.tickets.clear()
        self.tickets.update(tickets)


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _keep_newest(rows: dict[int, TicketRow], tickets: tuple[TicketRow, ...]) -> None:
    """Merge a page into `rows`: a ticket read twice (pages overlap, replies move it) keeps its newest row."""
    for row in tickets:
        seen = rows.get(row.id)
        if seen is None or row.lastreply > seen.lastreply:
            rows[row.id] = row
