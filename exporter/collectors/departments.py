"""Backlog per support department: awaiting and active counts, and each department's longest wait.

One GetSupportDepartments call gives every department's `awaitingreply` and `opentickets`. A department's
longest wait is its last ticket in the `Awaiting Reply` list. When this poll already read the end of that
list (the whole list, or the tail the oldest_awaiting collector read), every department with a ticket in it
has its longest wait there, exactly, at no cost: the last row of a department in a run of rows that ends
the list is its last row in the whole list. Any other department with awaiting tickets costs the tail of
GetTickets(deptid, status="Awaiting Reply"), read with its own count as the tail's position: one call (up
to three when tickets move between calls). Bound: 1 + 3 x min(such departments, MAX_TAILS) calls.
Departments beyond MAX_TAILS (the ones with the fewest waiting tickets) get no longest-wait series: an
installation with dozens of busy departments must not cost dozens of admin logins per poll.

Labels are department names as the admin area shows them (HTML character references decoded once, see
`fields.label_text`), made unique by support_departments.unique_labels. Departments are read afresh on
every poll, so a deleted department's series vanish with the next poll.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from exporter.collectors.base import PollContext
from exporter.collectors.support_departments import read_departments, unique_labels
from exporter.collectors.ticket_lists import AWAITING, TicketRow, age_of_tail, tail_lastreply
from exporter.families import FROM_LAST_POLL, FamilySink

log = logging.getLogger(__name__)

HELP_AWAITING = "Tickets awaiting a staff reply, per support department (WHMCS awaitingreply)." + FROM_LAST_POLL
HELP_ACTIVE = "Tickets in active statuses, per support department (WHMCS opentickets)." + FROM_LAST_POLL
HELP_OLDEST = ("Seconds since the last reply of the department's awaiting-reply ticket that has waited longest; "
               "0 when none waits." + FROM_LAST_POLL)


@dataclass(frozen=True)
class DepartmentRow:
    label: str
    awaiting: int
    active: int
    oldest_age: float | None  # None: the list would not show the tail (see DepartmentsCollector.poll)


@dataclass(frozen=True)
class DepartmentsPart:
    whmcs: str
    departments: tuple[DepartmentRow, ...]
    labels: tuple[tuple[int, str], ...] = ()  # (department id, label): for collectors that read this part

    def families(self, out: FamilySink) -> None:
        for row in self.departments:
            labels = {"whmcs": self.whmcs, "department": row.label}
            out.gauge("whmcs_department_tickets_awaiting_reply", HELP_AWAITING, labels, row.awaiting)
            out.gauge("whmcs_department_tickets_active", HELP_ACTIVE, labels, row.active)
            if row.oldest_age is not None:
                out.gauge("whmcs_department_oldest_awaiting_reply_age_seconds", HELP_OLDEST, labels, row.oldest_age)


MAX_TAILS = 20


class DepartmentsCollector:
    name = "departments"

    def __init__(self, max_tails: int = MAX_TAILS) -> None:
        self.max_tails = max_tails
        self._told_capped = False

    def poll(self, ctx: PollContext) -> DepartmentsPart:
        departments = read_departments(ctx.client, ctx.installation.ignore_department_assignments)
        labels = unique_labels(departments)
        known = oldest_by_department(ctx.reads.suffix(ctx.tickets_params(status=AWAITING)))
        waiting = sorted((d for d in departments if d.awaiting > 0 and d.id not in known),
                         key=lambda d: (-d.awaiting, d.id))
        measured = {d.id for d in waiting[:self.max_tails]}
        if len(waiting) > self.max_tails and not self._told_capped:
            log.warning("whmcs=%s: %d departments have waiting tickets; the longest wait is measured for the %d "
                        "with the most (one API call each), not for the rest", ctx.installation.name,
                        len(waiting), self.max_tails)
            self._told_capped = True
        rows = []
        for dept in departments:
            age: float | None = 0.0
            if dept.awaiting > 0 and dept.id in known:
                age = age_of_tail(ctx.now, known[dept.id])
            elif dept.awaiting > 0 and dept.id not in measured:
                age = None
            elif dept.awaiting > 0:
                page = ctx.reads.tail(ctx.tickets_params(deptid=dept.id, status=AWAITING), dept.awaiting, rows=1)
                # No tail although the department counts tickets: GetTickets filters by the API admin's
                # departments where GetSupportDepartments does not, or the list kept moving between calls.
                # The age is unknown, so it is absent.
                lastreply = tail_lastreply(page)
                age = age_of_tail(ctx.now, lastreply) if lastreply is not None else None
            rows.append(DepartmentRow(labels[dept.id], dept.awaiting, dept.active, age))
        return DepartmentsPart(ctx.installation.name, tuple(rows), tuple(sorted(labels.items())))


def oldest_by_department(suffix: tuple[TicketRow, ...]) -> dict[int, float]:
    """Department id -> its longest wait's `lastreply`, for the departments with a row in `suffix`, a run of
    rows that ends the `Awaiting Reply` list (a department's last row there is its last in the list)."""
    oldest: dict[int, float] = {}
    for row in suffix:
        if row.deptid is not None:
            oldest[row.deptid] = min(row.lastreply, oldest.get(row.deptid, row.lastreply))
    return oldest
