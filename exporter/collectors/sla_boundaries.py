"""Above `sla.max_tickets`: the awaiting list read per department, by boundary searches on each target.

GetTickets(deptid=D, status="Awaiting Reply") is ordered by `lastreply` newest first, so the tickets whose
time since their last reply has passed a business-time target are a suffix of the department's list:
`Schedule.cutoff` turns the target into a wall-clock age and the wait distribution's `search` finds the
position where that age is crossed, exactly, in a few windows. Per department and per next-reply target
(seconds and hours) two boundaries are searched: the breach (elapsed > target) and the start of the
at-risk band (elapsed >= target - warn_before). The rows between them are every ticket of the department
that can be at risk of that target; they are read whole (one call, or the search's windows already held
them), so:

- exact: a department whose list fits its share of the row budget is read whole (every cell exact, as
  below max_tickets); in any other department whose bands were read whole, the next-reply at-risk cells
  (next-reply waits start at `lastreply`, the list's own order).
- sampled: breached cells of large departments (the priority and the wait kind are in each row or behind a
  GetTicket, not in the list's order, so the suffix's split needs every row) and first-response cells (a
  first-response wait starts at `date`, which is not the sort key: a ticket the customer wrote to again
  sits near the head of the list while its wait can be breached). These count the rows read.

Bounds: at most `max_calls` GetTickets calls (the installation's `distribution_max_calls`) and `max_rows`
rows (`sla.max_tickets`) per poll; no call after the poll's deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from exporter.collectors.base import PollContext
from exporter.collectors.sla_waits import NEXT_REPLY
from exporter.collectors.ticket_lists import AWAITING, MAX_PAGE_ROWS, Page, TicketRow, fetch_page
from exporter.collectors.wait_distribution import WINDOW, search
from exporter.config.sla import SlaConfig

SLACK = 1.0  # seconds each band is widened by: rows exactly on an edge are read, evaluate() decides them
NEVER = 1e10  # an age no ticket has: a target no wait can pass (no business time left before now)
OVERLAP = 20  # rows read either side of a band in its own call: tickets answered meanwhile shift the list


@dataclass
class DepartmentRows:
    """What one department's search read: rows by list position, and which bands are covered."""

    label: str
    total: int = 0
    by_position: dict[int, TicketRow] = field(default_factory=dict)
    whole: bool = False  # every row of the department's list read
    bands_read: bool = False  # every at-risk band read whole: its next-reply at-risk cells are exact
    band_ids: set[int] = field(default_factory=set)  # tickets inside an at-risk band


@dataclass(frozen=True)
class SampledRead:
    rows: tuple[TicketRow, ...]
    calls: int
    band_rows: frozenset[int]  # ids of rows in an at-risk band: classified first
    exact_at_risk: frozenset[str]  # departments whose next-reply at-risk cells are exact (bands or whole)
    whole: frozenset[str]  # departments read whole: every cell exact


def band_ages(sla: SlaConfig, department: str, priorities: Iterable[str], now: float) -> list[tuple[float, float]]:
    """(at-risk age, breach age) in wall-clock seconds before `now` for each distinct next-reply target of
    the department: rows older than the first and at most the second can be at risk of that target."""
    out = set()
    for priority in priorities:
        target = sla.target(department, priority, NEXT_REPLY)
        if target is None:
            continue
        seconds, schedule = target
        # Widened by SLACK on both sides: a band read whole then holds every ticket of the edges as well.
        risk = schedule.cutoff(now, seconds - sla.warn_before - SLACK) if seconds - sla.warn_before > SLACK else now
        breach = schedule.cutoff(now, seconds)
        out.add((NEVER if risk is None else now - risk, NEVER if breach is None else now - breach + SLACK))
    return sorted(out)


def read_by_department(ctx: PollContext, sla: SlaConfig, labels: dict[int, str], priorities: Iterable[str],
                       max_calls: int, max_rows: int) -> SampledRead:
    """Every department's boundary search within the poll's call and row budgets, departments in id order."""
    prios = tuple(priorities)
    calls, departments = 0, []
    window = max(10, min(WINDOW, max_rows // 20))
    for index, (deptid, label) in enumerate(sorted(labels.items())):
        if calls >= max_calls or ctx.pace.past_deadline():
            break
        rows_left = max_rows - sum(len(d.by_position) for d in departments)
        share = max(window, rows_left // (len(labels) - index))
        dept, used = _search(ctx, deptid, DepartmentRows(label), band_ages(sla, label, prios, ctx.now),
                             share, max_calls - calls, window)
        departments.append(dept)
        calls += used
    rows = {row.id: row for dept in departments for row in dept.by_position.values()}
    band = frozenset(ident for dept in departments for ident in dept.band_ids)
    return SampledRead(rows=tuple(rows.values()), calls=calls, band_rows=band,
                       exact_at_risk=frozenset(d.label for d in departments if d.bands_read or d.whole),
                       whole=frozenset(d.label for d in departments if d.whole))


def _search(ctx: PollContext, deptid: int, dept: DepartmentRows, ages: list[tuple[float, float]], share: int,
            max_calls: int, window: int) -> tuple[DepartmentRows, int]:
    """One department: the boundary search, then each at-risk band its windows did not hold whole."""
    params = ctx.tickets_params(status=AWAITING, deptid=deptid)
    fetch = _recording(lambda start, num: fetch_page(ctx.client, ctx.zone, params, start, num), dept)
    bounds = sorted({age for pair in ages for age in pair})
    found = search(fetch, ctx.now, bounds, total_hint=None, full_limit=share, max_calls=max_calls, window=window,
                   stop=ctx.pace.past_deadline)
    dept.total, calls = found.total, found.calls
    dept.whole = found.fetched >= found.total and len({r.id for r in dept.by_position.values()}) >= found.total
    if dept.whole or found.counts is None:
        return dept, calls
    count = dict(zip(bounds, found.counts))
    covered = True
    for risk, breach in ages:
        lo, hi = count.get(risk), count.get(breach)
        if lo is None or hi is None:
            covered = False
            continue
        if hi > lo and not _held(dept, lo, hi):
            if calls >= max_calls or hi - lo + 2 * OVERLAP > MAX_PAGE_ROWS or ctx.pace.past_deadline():
                covered = False
                continue
            fetch(max(0, lo - OVERLAP), hi - lo + 2 * OVERLAP)  # one call: ties in the band keep one order
            calls += 1
        dept.band_ids.update(row.id for pos in range(lo, hi) if (row := dept.by_position.get(pos)) is not None)
    dept.bands_read = covered
    return dept, calls


def _held(dept: DepartmentRows, lo: int, hi: int) -> bool:
    """Whether positions lo..hi-1 were all read and hold distinct tickets (a tie run reordered between two
    calls can show one ticket twice and hide another)."""
    rows = [dept.by_position.get(pos) for pos in range(lo, hi)]
    return None not in rows and len({row.id for row in rows if row is not None}) == hi - lo


def _recording(fetch: Callable[[int, int], Page], dept: DepartmentRows) -> Callable[[int, int], Page]:
    """`fetch` that also keeps every row it returns by its list position."""

    def take(start: int, num: int) -> Page:
        page = fetch(start, num)
        for offset, row in enumerate(page.tickets):
            dept.by_position[start + offset] = row
        return page

    return take
