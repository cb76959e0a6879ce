"""Backlog per support department: awaiting and active counts, and each department's longest wait.

One GetSupportDepartments call gives every department's `awaitingreply` and `opentickets`. The longest
wait is the tail of GetTickets(deptid, status="Awaiting Reply"), read with the department's own count as
the tail's position: one call per department with awaiting tickets (up to three when tickets move
between calls). Bound: 1 + 3 x min(departments with awaiting tickets, MAX_TAILS) calls; normally 1 + that
number. Departments beyond MAX_TAILS (the ones with the fewest waiting tickets) get no longest-wait series:
an installation with dozens of busy departments must not cost dozens of admin logins per poll.

Labels are department names as the admin area shows them (HTML character references decoded once, see
`fields.label_text`: WHMCS may answer a name escaped or not). WHMCS allows two departments with the same
name; the one with the lowest id keeps the plain name, every other one becomes "Name (id 7)", so no two
series collide and a label does not change while the departments stay. Departments are read afresh on
every poll, so a deleted department's series vanish with the next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.client import flag
from exporter.collectors.base import PollContext
from exporter.collectors.ticket_lists import AWAITING, age_of_tail, fetch_tail, tail_lastreply
from exporter.errors import ShapeError
from exporter.families import FROM_LAST_POLL, FamilySink
from exporter.fields import items, label_text, to_count

log = logging.getLogger(__name__)

ACTION = "GetSupportDepartments"
HELP_AWAITING = "Tickets awaiting a staff reply, per support department (WHMCS awaitingreply)." + FROM_LAST_POLL
HELP_ACTIVE = "Tickets in active statuses, per support department (WHMCS opentickets)." + FROM_LAST_POLL
HELP_OLDEST = ("Seconds since the last reply of the department's awaiting-reply ticket that has waited longest; "
               "0 when none waits." + FROM_LAST_POLL)


@dataclass(frozen=True)
class Department:
    id: int
    name: str
    awaiting: int
    active: int


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

    def families(self, out: FamilySink) -> None:
        for row in self.departments:
            labels = {"whmcs": self.whmcs, "department": row.label}
            out.gauge("whmcs_department_tickets_awaiting_reply", HELP_AWAITING, labels, row.awaiting)
            out.gauge("whmcs_department_tickets_active", HELP_ACTIVE, labels, row.active)
            if row.oldest_age is not None:
                out.gauge("whmcs_department_oldest_awaiting_reply_age_seconds", HELP_OLDEST, labels, row.oldest_age)


def parse_departments(answer: Mapping[str, Any]) -> tuple[Department, ...]:
    """GetSupportDepartments -> departments (numbers arrive as strings; no `departments` key = none)."""
    out = []
    for raw in items(answer.get("departments"), "department", "departments"):
        ident = to_count(raw.get("id"), "department id")
        out.append(Department(id=ident, name=label_text(raw.get("name", ""), "department name") or f"id {ident}",
                              awaiting=to_count(raw.get("awaitingreply"), "awaitingreply"),
                              active=to_count(raw.get("opentickets"), "opentickets")))
    return tuple(out)


def unique_labels(departments: tuple[Department, ...]) -> dict[int, str]:
    """Department id -> label; a name shared by several departments stays plain for the lowest id only."""
    labels: dict[int, str] = {}
    taken: set[str] = set()
    for dept in sorted(departments, key=lambda d: d.id):
        label = dept.name if dept.name not in taken else f"{dept.name} (id {dept.id})"
        taken.add(label)
        labels[dept.id] = label
    return labels


MAX_TAILS = 20


class DepartmentsCollector:
    name = "departments"

    def __init__(self, max_tails: int = MAX_TAILS) -> None:
        self.max_tails = max_tails
        self._told_capped = False

    def poll(self, ctx: PollContext) -> DepartmentsPart:
        ignore = flag(ctx.installation.ignore_department_assignments)
        answer = ctx.client.call(ACTION, {"ignore_dept_assignments": ignore})
        try:
            departments = parse_departments(answer)
        except ValueError as exc:
            raise ShapeError(ACTION, str(exc)) from None
        labels = unique_labels(departments)
        waiting = sorted((d for d in departments if d.awaiting > 0), key=lambda d: (-d.awaiting, d.id))
        measured = {d.id for d in waiting[:self.max_tails]}
        if len(waiting) > self.max_tails and not self._told_capped:
            log.warning("whmcs=%s: %d departments have waiting tickets; the longest wait is measured for the %d "
                        "with the most (one API call each), not for the rest", ctx.installation.name,
                        len(waiting), self.max_tails)
            self._told_capped = True
        rows = []
        for dept in departments:
            age: float | None = 0.0
            if dept.awaiting > 0 and dept.id not in measured:
                age = None
            elif dept.awaiting > 0:
                page = fetch_tail(ctx.client, ctx.zone, ctx.tickets_params(deptid=dept.id, status=AWAITING),
                                  dept.awaiting)
                # No tail although the department counts tickets: GetTickets filters by the API admin's
                # departments where GetSupportDepartments does not, or the list kept moving between calls.
                # The age is unknown, so it is absent.
                lastreply = tail_lastreply(page)
                age = age_of_tail(ctx.now, lastreply) if lastreply is not None else None
            rows.append(DepartmentRow(labels[dept.id], dept.awaiting, dept.active, age))
        return DepartmentsPart(ctx.installation.name, tuple(rows))
