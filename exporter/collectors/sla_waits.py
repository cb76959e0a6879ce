"""Service-level arithmetic on awaiting tickets: pure functions from tickets and targets to the exported numbers.

Nothing here calls WHMCS. A `Wait` is one awaiting ticket whose wait kind (first response or next
reply) is known; `evaluate` turns the waits of one poll into the breached / at-risk grid and the next
breach; `response_result` says whether a reply that ended a watched wait met its target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from exporter.business_hours import Schedule
from exporter.config.sla import KINDS, SlaConfig

FIRST_RESPONSE, NEXT_REPLY = KINDS
# WHMCS's three priorities are always part of the grid, so their series do not come and go.
BASE_PRIORITIES = ("Low", "Medium", "High")

Cell = tuple[str, str, str]  # (department label, priority, sla kind)


@dataclass(frozen=True, slots=True)
class Wait:
    """One awaiting ticket as the SLA sees it."""

    id: int
    department: str
    priority: str
    kind: str  # first_response or next_reply
    start: float  # when the wait started: the ticket's `date` (first response) or `lastreply` (next reply)
    lastreply: float


@dataclass(frozen=True)
class Evaluation:
    breached: dict[Cell, int]
    at_risk: dict[Cell, int]
    next_breach: float | None  # the earliest breach among waits not breached yet; None when none can breach


def wait_of(ticket_id: int, department: str, priority: str, opened: float | None, lastreply: float,
            staff_replied: bool) -> Wait:
    """A ticket without a staff reply waits for its first response since its opening, any other since its
    last reply (which, in an awaiting status, is the customer's)."""
    if staff_replied:
        return Wait(ticket_id, department, priority, NEXT_REPLY, lastreply, lastreply)
    start = opened if opened is not None else lastreply
    return Wait(ticket_id, department, priority, FIRST_RESPONSE, start, lastreply)


def grid(sla: SlaConfig, departments: Iterable[str], priorities: Iterable[str]) -> list[Cell]:
    """Every department x priority x kind that has a target: the series exported even at 0."""
    prios = list(dict.fromkeys([*BASE_PRIORITIES, *(r.priority for r in sla.rules if r.priority), *priorities]))
    return [(dept, prio, kind) for dept in dict.fromkeys(departments) for prio in prios for kind in KINDS
            if sla.target(dept, prio, kind) is not None]


def evaluate(sla: SlaConfig, waits: Iterable[Wait], now: float, cells: Iterable[Cell]) -> Evaluation:
    """Breached: elapsed (business) time above the target. At risk: not breached, and the remaining
    time is at most `warn_before`, counted in the rule's own hours."""
    breached = dict.fromkeys(cells, 0)
    at_risk = dict.fromkeys(breached, 0)
    next_breach: float | None = None
    for wait in waits:
        target = sla.target(wait.department, wait.priority, wait.kind)
        if target is None:
            continue
        seconds, schedule = target
        cell = (wait.department, wait.priority, wait.kind)
        elapsed = schedule.elapsed(wait.start, now)
        if elapsed > seconds:
            breached[cell] = breached.get(cell, 0) + 1
            continue
        at_risk.setdefault(cell, 0)
        breached.setdefault(cell, 0)
        if seconds - elapsed <= sla.warn_before:
            at_risk[cell] += 1
        due = _breach_time(schedule, wait.start, seconds, now)
        if due is not None and (next_breach is None or due < next_breach):
            next_breach = due
    for cell in breached:
        at_risk.setdefault(cell, 0)
    return Evaluation(breached=breached, at_risk=at_risk, next_breach=next_breach)


def _breach_time(schedule: Schedule, start: float, seconds: float, now: float) -> float | None:
    """When the wait's elapsed time reaches the target, from `now` on (elapsed up to now is known)."""
    return schedule.reached(now, seconds - schedule.elapsed(start, now))


def response_result(sla: SlaConfig, wait: Wait, replied: float) -> str | None:
    """`met` or `breached` for a staff reply at `replied` that ended `wait`; None when no target applies."""
    target = sla.target(wait.department, wait.priority, wait.kind)
    if target is None:
        return None
    seconds, schedule = target
    return "met" if schedule.elapsed(wait.start, replied) <= seconds else "breached"
