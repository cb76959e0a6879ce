"""Ticket flow: tickets opened, replies by author, customer ratings and staff replies, as counters.

Each poll:
1. Department labels from the departments collector's part (else GetSupportDepartments at most hourly, and
   the last ones read while it fails: ticket_labels.DepartmentLabels): every department's counters start at 0.
2. The head of the unfiltered `lastreply DESC` list, down to the last poll's newest `lastreply` (less
   HEAD_MARGIN), through the poll's shared reads like the first-response window listing (a page it read
   already costs nothing). A ticket id above the highest seen, opened since the exporter started watching, is a
   ticket opened; a ticket whose `lastreply` moved joins the queue for GetTicket.
3. Tickets with a staff reply join the queue once more `rating_delay` after it: a customer rates a reply
   without moving `lastreply`.
4. GetTicket for the queue's oldest entries, within `max_ticket_fetches_per_poll` less the GetTicket calls
   first_response made this poll (a ticket it read is answered from the poll's reads, free), and the pace:
   `reply_events` says which replies and ratings are new. The rest of the queue waits for the next polls
   (`whmcs_exporter_pending_ticket_fetches`): counters lag, nothing is lost or counted twice.
Bounds, state and costs: docs/flow.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from exporter.collectors.base import PollContext
from exporter.collectors.flow_counters import FlowCounters, FlowPart
from exporter.collectors.reply_events import EVERY_REPLY, Ledger, new_events, parse_reply_events
from exporter.collectors.ticket_labels import DepartmentLabels, department_label
from exporter.collectors.ticket_lists import TicketRow, next_page
from exporter.collectors.window_listing import HEAD_MARGIN, INCREMENTAL_PAGE, PAGE_OVERLAP, PAGE_SIZE
from exporter.errors import NotFound, WhmcsError
from exporter.fields import to_count
from exporter.state.saved import SavedCollector

if TYPE_CHECKING:
    from exporter.config import InstallationConfig

log = logging.getLogger(__name__)

CATCHUP_PAGE = 1000  # rows of the head's third and later pages: only a burst or an outage needs them
MAX_HEAD_PAGES = 8  # GetTickets calls per poll: a head of up to ~6,300 changed tickets is read in one poll
FORGET_AFTER = 86400.0  # a ticket's ledger is dropped a day after its last change (unless a recheck is due)
MAX_TRACKED = 100_000  # hard bound on ledgers: the longest unchanged are dropped first


@dataclass(frozen=True, slots=True)
class Watched:
    """One ticket as the flow collector knows it."""

    deptid: int | None
    seen: float  # its newest `lastreply` the list has shown
    ledger: Ledger
    recheck: float | None = None  # when to read it once more for late ratings
    touched: float = 0.0  # last poll whose list showed it changed


class FlowCollector:
    """Keeps the counters, the high-water ticket id, the GetTicket queue and per-ticket ledgers across polls."""

    name = "flow"

    def __init__(self, installation: InstallationConfig) -> None:
        self.rating_delay = installation.rating_delay
        self.staff_metrics = installation.staff_metrics
        self.counters = FlowCounters(max_staff=installation.max_staff)
        self.tickets: dict[int, Watched] = {}
        self.queue: dict[int, None] = {}  # ticket ids in the order they joined (oldest first)
        self.max_id: int | None = None  # highest ticket id seen; None before the first poll
        self.since = 0.0  # tickets opened before the first poll are not counted as opened
        self.newest = 0.0  # newest lastreply of the last complete head scan
        self.last_fetches = 0
        self.last_pages = 0
        self.departments = DepartmentLabels()  # department id -> label, the last read kept while one fails
        self.poll_interval = installation.poll_interval
        self.polled_at: float | None = None  # the last poll that ran this collector
        self.behind = False  # the last poll's deadline cut its head scan short

    def wants_share(self, now: float) -> bool:
        """Whether this poll has GetTicket work for it (queued tickets, due late-rating looks) or its head went
        unread (or was cut short) last poll. Otherwise the poller leaves its share of the poll's time to the
        collectors before it (first_response): the head's pages are theirs, read anyway, and nothing waits."""
        unread = self.behind or self.polled_at is None or now - self.polled_at > 1.5 * self.poll_interval
        return unread or bool(self.queue) or any(w.recheck is not None and w.recheck <= now
                                                 for w in self.tickets.values())

    def poll(self, ctx: PollContext) -> FlowPart:
        self.polled_at = ctx.now
        labels = self.departments.current(ctx)
        self.counters.start_departments(list(labels.values()))
        rows, whole = self._read_head(ctx)
        self.behind = not whole
        if self.max_id is None:
            self._first_poll(ctx, rows)
        else:
            self._take_rows(ctx, rows, labels, whole)
        self._queue_rechecks(ctx.now)
        self._fetch(ctx, labels)
        self._forget(ctx.now)
        return self.counters.part(ctx.installation.name, self.staff_metrics, len(self.queue), self.last_fetches)

    # -- the head of the list ----------------------------------------------------------------------------
    def _read_head(self, ctx: PollContext) -> tuple[list[TicketRow], bool]:
        """The rows at or above the last scan's newest lastreply less the margin (all of one page the first time),
        and whether the watermarks may move past them: not when the poll's deadline cut the scan short (the next
        poll reads on from the top; rows taken twice are not counted twice)."""
        stop = self.newest - HEAD_MARGIN
        params = ctx.tickets_params()
        rows: dict[int, TicketRow] = {}
        start, size = 0, INCREMENTAL_PAGE
        self.last_pages = 0
        while True:
            page = ctx.reads.page(params, start, size)
            self.last_pages += 1
            for row in page.tickets:
                if row.id not in rows or row.lastreply > rows[row.id].lastreply:
                    rows[row.id] = row
            if self.max_id is None or page.reaches_end or not page.tickets or page.tickets[-1].lastreply < stop:
                return [r for r in rows.values() if r.lastreply >= stop], True
            if ctx.pace.past_deadline():
                return list(rows.values()), False
            if self.last_pages >= MAX_HEAD_PAGES:
                log.warning("whmcs=%s: flow: more tickets changed since the last poll than %d list pages hold; "
                            "replies to tickets last changed between %s and %s are not counted",
                            ctx.installation.name, self.last_pages, int(stop), int(page.tickets[-1].lastreply))
                return list(rows.values()), True
            # The first two pages are the sizes the window listing's head scan asks for (the poll's shared reads
            # can answer them); a longer head is a burst or an outage, read in larger pages.
            start, size = next_page(page, PAGE_OVERLAP, PAGE_SIZE if self.last_pages == 1 else CATCHUP_PAGE)

    def _first_poll(self, ctx: PollContext, rows: list[TicketRow]) -> None:
        """Start watching: what exists now is history, neither opened nor replied to since."""
        self.max_id = max((r.id for r in rows), default=0)
        self.newest = max((r.lastreply for r in rows), default=ctx.now)
        self.since = self.newest

    def _take_rows(self, ctx: PollContext, rows: list[TicketRow], labels: dict[int, str], whole: bool) -> None:
        assert self.max_id is not None
        previous = self.newest
        for row in sorted(rows, key=lambda r: r.id):
            known = self.tickets.get(row.id)
            if known is not None:
                if row.lastreply > known.seen:
                    self.tickets[row.id] = replace(known, seen=row.lastreply, deptid=row.deptid, touched=ctx.now)
                    self.queue[row.id] = None
            elif row.id > self.max_id and (row.date is None or row.date >= self.since):
                self.counters.count_opened(department_label(labels, row.deptid))
                opened = row.date if row.date is not None else previous
                self.tickets[row.id] = Watched(row.deptid, row.lastreply, Ledger(upto=opened, start=opened),
                                               touched=ctx.now)
                if row.lastreply > opened:
                    self.queue[row.id] = None
            elif row.lastreply > previous:
                # Changed since the last scan but not watched: replies after that scan are new.
                self.tickets[row.id] = Watched(row.deptid, row.lastreply, self._baseline(ctx.now, previous),
                                               touched=ctx.now)
                self.queue[row.id] = None
        if rows and whole:
            self.max_id = max(self.max_id, max(r.id for r in rows))
            self.newest = max(self.newest, max(r.lastreply for r in rows))

    def _baseline(self, now: float, previous: float) -> Ledger:
        """The ledger of a ticket first seen changed: replies up to the last scan's newest are history. One in
        that very second is new (stored after the scan read the list), unless it can be history: the first
        poll's second, or one a day old (the ticket's ledger may have been forgotten since)."""
        same_second_new = previous > self.since and now - previous < FORGET_AFTER
        return Ledger(upto=previous, at_upto=() if same_second_new else (EVERY_REPLY,), start=previous)

    def _queue_rechecks(self, now: float) -> None:
        for ident, watched in self.tickets.items():
            if watched.recheck is not None and watched.recheck <= now:
                self.queue.setdefault(ident, None)

    # -- GetTicket -----------------------------------------------------------------------------------------
    def _fetch(self, ctx: PollContext, labels: dict[int, str]) -> None:
        # The budget is the poll's: first_response's calls count; a ticket it read this poll is answered again
        # from the poll's reads at no cost.
        budget = max(0, ctx.installation.max_ticket_fetches_per_poll - ctx.reads.ticket_calls)
        # As many calls as fit before the deadline at the measured latency: the rest waits for the next poll.
        allowed = ctx.pace.affordable(min(budget, len(self.queue)))
        self.last_fetches = 0
        for ident in list(self.queue):
            if self.last_fetches >= allowed or ctx.pace.past_deadline():
                break
            calls = ctx.reads.ticket_calls
            try:
                answer = ctx.reads.ticket(ident)
            except NotFound:
                self._drop(ident)  # merged or deleted since the list showed it
                continue
            except WhmcsError as exc:
                if exc.aborts_poll:
                    raise
                # One ticket WHMCS cannot answer must not hold up the queue: read again when lastreply moves.
                log.warning("whmcs=%s: flow: GetTicket %d failed (%s); its replies are not counted",
                            ctx.installation.name, ident, exc)
                self.queue.pop(ident, None)
                continue
            finally:
                self.last_fetches += ctx.reads.ticket_calls - calls
            self._account(ctx, ident, answer, labels)
            self.queue.pop(ident, None)

    def _account(self, ctx: PollContext, ident: int, answer: dict, labels: dict[int, str]) -> None:
        watched = self.tickets[ident]
        try:
            if to_count(answer.get("ticketid", answer.get("id")), "ticketid") != ident:
                self._drop(ident)  # answered with another ticket: this one was merged into it
                return
            replies = parse_reply_events(answer, ctx.zone)
            dept = answer.get("deptid")
            deptid = to_count(dept, "deptid") if dept not in (None, "") else watched.deptid
        except ValueError as exc:
            # One odd ticket must not stop the queue: it is read again when its lastreply moves.
            log.warning("whmcs=%s: flow: GetTicket %d: unreadable answer (%s); its replies are not counted",
                        ctx.installation.name, ident, exc)
            self.tickets[ident] = replace(watched, recheck=None)
            return
        found = new_events(watched.ledger, replies)
        department = department_label(labels, deptid)
        for reply in found.replies:
            self.counters.count_reply(department, reply)
        for reply in found.ratings:
            self.counters.count_rating(department, reply)
        due = None if found.last_staff is None else found.last_staff + self.rating_delay
        self.tickets[ident] = Watched(deptid, watched.seen, found.ledger,
                                      recheck=due if due is not None and due > ctx.now else None,
                                      touched=watched.touched)

    def _drop(self, ident: int) -> None:
        self.tickets.pop(ident, None)
        self.queue.pop(ident, None)

    def _forget(self, now: float) -> None:
        """Ledgers live a day after the ticket's last change, longer while a late-rating look is due."""
        stale = [i for i, w in self.tickets.items()
                 if w.recheck is None and now - w.touched > FORGET_AFTER and i not in self.queue]
        for ident in stale:
            del self.tickets[ident]
        if len(self.tickets) > MAX_TRACKED:
            idle = sorted((w.touched, i) for i, w in self.tickets.items() if i not in self.queue)
            for _, ident in idle[:len(self.tickets) - MAX_TRACKED]:
                del self.tickets[ident]

    # -- state across restarts (exporter/state) ----------------------------------------------------------------
    def save_state(self) -> SavedCollector:
        """Totals, watermarks, the queue and the ledgers: ids, times, department ids, reply ids; no names but
        the staff names of staff_replies' totals."""
        return SavedCollector(
            scalars={"counters": self.counters.export(), "max_id": self.max_id, "since": self.since,
                     "newest": self.newest, "queue": list(self.queue)},
            items={ident: (w.deptid, w.seen, w.ledger.upto, list(w.ledger.at_upto), list(w.ledger.rated),
                           w.ledger.start, w.recheck, w.touched) for ident, w in self.tickets.items()})

    def restore_state(self, saved: SavedCollector) -> None:
        scalars = saved.scalars
        tickets = {int(i): _watched(item) for i, item in saved.items.items()}
        max_id = None if scalars["max_id"] is None else int(scalars["max_id"])
        since, newest = float(scalars["since"]), float(scalars["newest"])
        queue = {int(i): None for i in scalars["queue"] if int(i) in tickets}
        self.counters.take(scalars["counters"])
        self.tickets, self.queue, self.max_id, self.since, self.newest = tickets, queue, max_id, since, newest


def _watched(item: tuple) -> Watched:
    deptid, seen, upto, at_upto, rated, start, recheck, touched = item
    ledger = Ledger(float(upto), tuple(str(k) for k in at_upto), tuple(str(k) for k in rated), float(start))
    return Watched(None if deptid is None else int(deptid), float(seen), ledger,
                   None if recheck is None else float(recheck), float(touched))
