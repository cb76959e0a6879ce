"""Service levels: awaiting tickets breached or about to breach their targets, and replies that met them.

Runs only for installations with an `sla` section (exporter/config/sla.py; docs/sla.md). Each poll:
1. Department labels: the departments collector's part when it ran in this poll, else GetSupportDepartments
   at most hourly (ticket_labels.DepartmentLabels).
2. The `Awaiting Reply` list, completely, in pages of PAGE_SIZE while it holds at most `sla.max_tickets`
   tickets (5,000 tickets: 5-6 calls). Above that, its first page and then per department boundary searches
   on each next-reply target (sla_boundaries.py: small departments read whole, at-risk bands read whole,
   within `distribution_max_calls` calls); `sample_ratio` says which share was read: the gauges count those
   tickets, exact where sla_boundaries.py says.
3. Which wait each ticket is in: none of its replies is from staff yet (first response, since its
   `date`) or one is (next reply, since its `lastreply`). `lastreply == date` means no reply at all;
   otherwise the first-response collector's part, this collector's cache, or GetTicket (longest waits
   first, within `max_ticket_fetches_per_poll` minus what first_response and flow spent in this poll). A staff
   reply never disappears, so "has one" is cached for the ticket's life; "has none" until `lastreply` moves.
4. Replies: a ticket watched waiting in the last complete poll that has left the list is looked up in
   the head of the unfiltered GetTickets list (newest `lastreply` first; usually 1 call, at most
   MAX_HEAD_CALLS); a newer `lastreply` there is the staff reply that ended its wait. A ticket watched
   waiting for its first response that is still listed but whose GetTicket now shows a staff reply (the
   customer wrote again meanwhile) counts that reply.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from exporter.collectors.base import PollContext
from exporter.collectors.sla_boundaries import SampledRead, read_by_department
from exporter.collectors.sla_waits import (
    FIRST_RESPONSE,
    Cell,
    Evaluation,
    Wait,
    evaluate,
    grid,
    response_result,
    wait_of,
)
from exporter.collectors.ticket_labels import DepartmentLabels, department_label
from exporter.collectors.ticket_lists import AWAITING, Page, TicketRow, next_start, sample_ratio
from exporter.collectors.ticket_replies import TicketReplies, parse_ticket_replies
from exporter.config import InstallationConfig
from exporter.config.sla import SlaConfig
from exporter.errors import NotFound
from exporter.families import FROM_LAST_POLL, FamilySink
from exporter.state.saved import SavedCollector

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
OVERLAP = 20  # rows re-read at each page start: tickets answered between two calls shift the list up
HEAD_PAGE = 200
MAX_HEAD_CALLS = 3
FORGET_AFTER = 30 * 86400.0  # cache entries of tickets not seen awaiting for this long are dropped
RESULTS = ("met", "breached")

_SCOPE = (" Counts every awaiting ticket when whmcs_exporter_sample_ratio{collector=\"sla\"} is 1; below 1, only "
          "the tickets read (next-reply at-risk counts stay exact per department: docs/sla.md).")
HELP_BREACHED = ("Awaiting-reply tickets whose wait (business time unless the rule says calendar) exceeds their "
                 "target, by department, priority and sla (first_response or next_reply)." + _SCOPE
                 + FROM_LAST_POLL)
HELP_AT_RISK = ("Awaiting-reply tickets not breached yet that breach within warn_before, by department, "
                "priority and sla." + _SCOPE + FROM_LAST_POLL)
HELP_NEXT_BREACH = ("Unix time at which the next awaiting ticket not breached yet will breach its target "
                    "(business hours taken into account); absent when none can." + FROM_LAST_POLL)
HELP_RESPONSES = ("Staff replies that ended a wait the exporter watched, by department, priority, sla and result "
                  "(met: within the target; breached: after it). Compliance: met / (met + breached).")


@dataclass(frozen=True)
class SlaPart:
    whmcs: str
    breached: tuple[tuple[Cell, int], ...]
    at_risk: tuple[tuple[Cell, int], ...]
    next_breach: float | None
    responses: tuple[tuple[tuple[str, str, str, str], int], ...]  # ((department, priority, sla, result), count)
    sample_ratio: float

    def families(self, out: FamilySink) -> None:
        for name, help_text, cells in (("whmcs_sla_tickets_breached", HELP_BREACHED, self.breached),
                                       ("whmcs_sla_tickets_at_risk", HELP_AT_RISK, self.at_risk)):
            for (department, priority, kind), count in cells:
                labels = {"whmcs": self.whmcs, "department": department, "priority": priority, "sla": kind}
                out.gauge(name, help_text, labels, count)
        if self.next_breach is not None:
            out.gauge("whmcs_sla_next_breach_timestamp_seconds", HELP_NEXT_BREACH, {"whmcs": self.whmcs},
                      self.next_breach)
        for (department, priority, kind, result), count in self.responses:
            labels = {"whmcs": self.whmcs, "department": department, "priority": priority, "sla": kind,
                      "result": result}
            out.counter("whmcs_sla_responses", HELP_RESPONSES, labels, count)


@dataclass(slots=True)
class _Known:
    read_at: float  # the ticket's lastreply when its replies were read
    staff_replied: bool | None  # None: the answer could not be read (retried when lastreply moves)
    seen: float  # last poll that listed it awaiting


class SlaCollector:
    """Keeps, across polls, the staff-reply cache, the waits watched last poll and the response counter."""

    name = "sla"

    def __init__(self, installation: InstallationConfig, page_size: int = PAGE_SIZE) -> None:
        if installation.sla is None:
            raise ValueError("the sla collector needs an sla section")
        self.sla: SlaConfig = installation.sla
        self.page_size = page_size
        self.known: dict[int, _Known] = {}
        self.watched: dict[int, Wait] = {}
        self.responses: dict[tuple[str, str, str, str], int] = {}
        self.departments = DepartmentLabels()  # the departments part's labels, else read at most hourly
        self.last_fetches = 0
        self.last_read: SampledRead | None = None  # above max_tickets: what the department searches read
        self.band_starts: dict[tuple[int, int], int] = {}  # ... and where each band started: searched there first

    def poll(self, ctx: PollContext) -> SlaPart:
        labels = self.departments.current(ctx)
        rows, total, complete = self._read_awaiting(ctx)
        read = None if complete else read_by_department(ctx, self.sla, labels, rows, self.band_starts)
        waits = self._waits(ctx, list(read.rows) if read else rows, labels, read.band_rows if read else frozenset())
        self.last_read = read.classified({w.id for w in waits}) if read else None
        if complete:
            self._count_responses(ctx, {row.id for row in rows})
        self.watched = {w.id: w for w in waits} if complete else {}
        cells = grid(self.sla, [*labels.values(), *(w.department for w in waits)], [w.priority for w in waits])
        found = evaluate(self.sla, waits, ctx.now, cells)
        self._forget(ctx.now)
        return self._part(ctx, found, cells, sample_ratio(len(waits), total))

    def save_state(self) -> SavedCollector:
        """The response counter's totals, the waits watched last poll and the staff-reply cache: ids, times,
        department labels and priorities, nothing a customer wrote."""
        return SavedCollector(
            scalars={"targets": self._targets(), "responses": [[*key, n] for key, n in self.responses.items()],
                     "watched": [[w.id, w.department, w.priority, w.kind, w.start, w.lastreply]
                                 for w in self.watched.values()]},
            items={ident: (k.read_at, k.staff_replied, k.seen) for ident, k in self.known.items()})

    def restore_state(self, saved: SavedCollector) -> None:
        responses = {(str(d), str(p), str(k), str(r)): int(n) for d, p, k, r, n in saved.scalars["responses"]}
        known = {int(i): _Known(float(a), None if b is None else bool(b), float(c))
                 for i, (a, b, c) in saved.items.items()}
        watched = {int(w[0]): Wait(int(w[0]), str(w[1]), str(w[2]), str(w[3]), float(w[4]), float(w[5]))
                   for w in saved.scalars["watched"]}
        self.responses, self.known = responses, known
        # Waits were classified by the targets of their time: with other targets, counting them would be wrong.
        self.watched = watched if saved.scalars["targets"] == self._targets() else {}

    def _targets(self) -> str:
        return self.sla.fingerprint()

    def _part(self, ctx: PollContext, found: Evaluation, cells: list[Cell], ratio: float) -> SlaPart:
        for department, priority, kind in cells:
            for result in RESULTS:
                self.responses.setdefault((department, priority, kind, result), 0)
        return SlaPart(whmcs=ctx.installation.name, breached=tuple(sorted(found.breached.items())),
                       at_risk=tuple(sorted(found.at_risk.items())), next_breach=found.next_breach,
                       responses=tuple(sorted(self.responses.items())), sample_ratio=ratio)

    def _read_awaiting(self, ctx: PollContext) -> tuple[list[TicketRow], int, bool]:
        """(rows, the list's total, whether the rows are the whole list)."""
        limit = self.sla.max_tickets
        size = min(self.page_size, limit)
        params = ctx.tickets_params(status=AWAITING)
        whole = ctx.reads.whole(params, ctx.awaiting_hint, limit)  # maybe read already, by oldest_awaiting
        if whole is not None:
            return list(whole.tickets), whole.total, True
        page = ctx.reads.page(params, 0, size)
        rows = {t.id: t for t in page.tickets}
        if page.total > limit:  # the department searches read the rest
            return list(rows.values()), page.total, False
        # Paging re-reads OVERLAP rows, so the bound leaves room for them and for a list that grows meanwhile.
        for _ in range(2 * math.ceil(limit / max(1, size - OVERLAP)) + 2):
            if page.reaches_end or not page.tickets:
                break
            page = ctx.reads.page(params, next_start(page, OVERLAP), size)
            rows.update((t.id, t) for t in page.tickets)
        complete = page.reaches_end and page.total <= limit
        return list(rows.values()), max(page.total, len(rows)) if complete else page.total, complete

    def _waits(self, ctx: PollContext, rows: list[TicketRow], labels: dict[int, str],
               first: frozenset[int]) -> list[Wait]:
        other = ctx.parts.get("first_response")
        replied_elsewhere = getattr(other, "staff_replied", frozenset())
        budget = max(0, ctx.installation.max_ticket_fetches_per_poll - ctx.reads.ticket_calls)
        waits, due = [], []
        for row in rows:
            known = self.known.get(row.id)
            if known is not None:
                known.seen = ctx.now
            replied = self._staff_replied(row, replied_elsewhere)
            if replied is None:
                due.append(row)
            else:
                waits.append(wait_of(row.id, _label(labels, row), row.priority, row.date, row.lastreply, replied))
        self.last_fetches = 0
        # As many as fit before the poll's deadline at the measured call latency: the rest waits for the next poll.
        # At-risk bands first (their cells are exact once classified), then the longest waits.
        due.sort(key=lambda r: (r.id not in first, r.lastreply))
        for row in due[:ctx.pace.affordable(min(budget, len(due)))]:
            found = self._fetch(ctx, row)
            if found is not None:
                replied = found.first_staff_reply is not None
                waits.append(wait_of(row.id, _label(labels, row), row.priority, row.date, row.lastreply, replied))
                if found.first_staff_reply is not None:
                    self._first_response_seen(row.id, found.first_staff_reply)
        return waits

    def _first_response_seen(self, ticket_id: int, replied: float) -> None:
        """A ticket watched waiting for its first response that is still awaiting (the customer wrote again)
        but now has a staff reply: its first-response wait ended at that reply."""
        wait = self.watched.get(ticket_id)
        if wait is not None and wait.kind == FIRST_RESPONSE and replied >= wait.start:
            self._count(wait, replied)

    def _staff_replied(self, row: TicketRow, replied_elsewhere: frozenset[int]) -> bool | None:
        """Whether the ticket has a staff reply, when known without a call; None when not."""
        if row.date is not None and row.lastreply <= row.date:
            return False  # no reply at all since the opening
        known = self.known.get(row.id)
        if row.id in replied_elsewhere or (known is not None and known.staff_replied):
            return True
        if known is not None and known.read_at >= row.lastreply:
            return known.staff_replied  # False, or None for an answer that could not be read
        return None

    def _fetch(self, ctx: PollContext, row: TicketRow) -> TicketReplies | None:
        """The ticket's replies as GetTicket tells them; None when the answer is unusable."""
        self.last_fetches += 1
        try:
            answer = ctx.reads.ticket(row.id)
        except NotFound:
            return None  # merged or deleted since the list was read
        try:
            found = parse_ticket_replies(answer, ctx.zone)
        except ValueError as exc:
            log.warning("whmcs=%s: GetTicket %d: unreadable answer (%s); left out until the ticket changes",
                        ctx.installation.name, row.id, exc)
            self.known[row.id] = _Known(row.lastreply, None, ctx.now)
            return None
        if found.id != row.id:
            return None  # answered with another ticket: this one was merged into it
        replied = found.first_staff_reply is not None
        self.known[row.id] = _Known(max(row.lastreply, found.lastreply or row.lastreply), replied, ctx.now)
        return found

    def _count_responses(self, ctx: PollContext, awaiting: set[int]) -> None:
        """Count the watched waits that ended with a staff reply since the last complete poll."""
        departed = [w for ident, w in self.watched.items() if ident not in awaiting]
        if not departed:
            return
        replies = _recent_lastreplies(ctx, min(w.lastreply for w in departed), {w.id for w in departed})
        for wait in departed:
            replied = replies.get(wait.id)
            if replied is None or replied <= wait.lastreply:
                continue  # closed, put on hold or merged without a reply: the wait ended unanswered
            self._count(wait, replied)

    def _count(self, wait: Wait, replied: float) -> None:
        result = response_result(self.sla, wait, replied)
        if result is not None:
            key = (wait.department, wait.priority, wait.kind, result)
            self.responses[key] = self.responses.get(key, 0) + 1

    def _forget(self, now: float) -> None:
        for ident in [i for i, k in self.known.items() if now - k.seen > FORGET_AFTER]:
            del self.known[ident]


def _recent_lastreplies(ctx: PollContext, since: float, wanted: set[int]) -> dict[int, float]:
    """Ticket id -> lastreply for the tickets whose lastreply moved past `since`, from the head of the
    unfiltered list (every status), until all of `wanted` are found or the list is older than `since`."""
    params = ctx.tickets_params()
    out: dict[int, float] = {}
    page: Page | None = None
    for _ in range(MAX_HEAD_CALLS):
        page = ctx.reads.page(params, next_start(page, OVERLAP) if page else 0, HEAD_PAGE)
        for row in page.tickets:
            out[row.id] = max(row.lastreply, out.get(row.id, row.lastreply))
        if page.reaches_end or not page.tickets or page.tickets[-1].lastreply <= since or wanted <= out.keys():
            break
    return out


def _label(labels: dict[int, str], row: TicketRow) -> str:
    return department_label(labels, row.deptid)
