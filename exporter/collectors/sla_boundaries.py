"""Above `sla.max_tickets`: the awaiting list read per department, by boundary searches on each target.

GetTickets(deptid=D, status="Awaiting Reply") is ordered by `lastreply` newest first, so the tickets whose
time since their last reply has passed a business-time threshold are a suffix of the department's list:
`Schedule.cutoff` turns the threshold into a wall-clock age and the wait distribution's `search` finds the
position where that age is crossed, exactly, in a few windows. Per department and per next-reply target
(seconds and hours) the search finds where the at-risk band starts (elapsed >= target - warn_before); the
band is then read on until a ticket is past the target (the search's windows usually hold part of it). So
every ticket of the department that can be at risk of that target is read:

- exact: a department whose list fits its share of the row budget is read whole (every cell exact, as
  below max_tickets); in any other department whose bands were read whole, the next-reply at-risk cells
  (next-reply waits start at `lastreply`, the list's own order). Both once those tickets are classified.
- sampled: breached cells of large departments (the priority and the wait kind are in each row or behind a
  GetTicket, not in the list's order, so the suffix's split needs every row) and first-response cells (a
  first-response wait starts at `date`, which is not the sort key: a ticket the customer wrote to again
  sits near the head of the list while its wait can be breached). These count the rows read.

Bounds per poll: `distribution_max_calls` GetTickets calls with the list's first page, shared fairly between
departments; windows of at most WINDOW rows, bands in pages of BAND_PAGE; no call after the poll's deadline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from exporter.collectors.base import PollContext
from exporter.collectors.boundary_search import WINDOW, search
from exporter.collectors.sla_waits import NEXT_REPLY
from exporter.collectors.ticket_lists import AWAITING, Page, TicketRow
from exporter.config.sla import SlaConfig

SLACK = 1.0  # seconds each band is widened by: rows exactly on an edge are read, evaluate() decides them
UNNAMED = ""  # a priority no rule can name (config requires a name): stands for every priority rules leave out
NEVER = 1e10  # an age no ticket has (seconds): a band end no wait passes, or (negated) one every wait passes
OVERLAP = 20  # rows re-read above a band page: tickets answered between two calls shift the list up
BAND_PAGE = 1000  # rows a call reads of an at-risk band the search's windows did not hold


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
    rows: tuple[TicketRow, ...]  # the list's first page and every row the department searches read
    calls: int
    bands: dict[str, frozenset[int]]  # department -> its at-risk bands' tickets, where every band was read whole
    whole: dict[str, frozenset[int]]  # department -> its tickets, for departments read whole

    @property
    def band_rows(self) -> frozenset[int]:
        """The tickets whose wait kind makes cells exact: classified first."""
        return frozenset().union(*self.bands.values())

    @property
    def exact_at_risk(self) -> frozenset[str]:
        """Departments whose next-reply at-risk cells are exact (all cells, for those read whole)."""
        return frozenset(self.bands) | frozenset(self.whole)

    def classified(self, known: Collection[int]) -> SampledRead:
        """Only the departments whose rows that matter all have a known wait kind: the others' cells miss
        the tickets still to be classified (GetTicket budget), so they are not exact this poll."""
        return replace(self, bands={d: ids for d, ids in self.bands.items() if ids <= set(known)},
                       whole={d: ids for d, ids in self.whole.items() if ids <= set(known)})


def band_ages(sla: SlaConfig, department: str, now: float) -> list[tuple[float, float]]:
    """(at-risk age, breach age) in wall-clock seconds before `now` for each distinct next-reply target of
    the department: rows older than the first and at most the second can be at risk of that target."""
    # Every priority a rule names, and one no rule names (UNNAMED): any other priority gets the same rule.
    priorities = {rule.priority for rule in sla.rules if rule.priority} | {UNNAMED}
    out = set()
    for priority in sorted(priorities):
        target = sla.target(department, priority, NEXT_REPLY)
        if target is None:
            continue
        seconds, schedule = target
        # Widened by SLACK on both sides: a band read whole then holds every ticket of the edges as well. A
        # target within warn_before puts every wait not breached at risk: the band starts at the list's head
        # (-NEVER, so that a `lastreply` ahead of our clock is in it too).
        risk = schedule.cutoff(now, seconds - sla.warn_before - SLACK) if seconds - sla.warn_before > SLACK else None
        breach = schedule.cutoff(now, seconds)
        risk_age = -NEVER if seconds - sla.warn_before <= SLACK else NEVER if risk is None else now - risk
        out.add((risk_age, NEVER if breach is None else now - breach + SLACK))
    return sorted(out)


def read_by_department(ctx: PollContext, sla: SlaConfig, labels: dict[int, str], head: Sequence[TicketRow],
                       starts: dict[tuple[int, int], int] | None = None) -> SampledRead:
    """Every department's boundary search within the poll's budgets, departments in id order. `head` is the
    list's first page, read already (one call of the `distribution_max_calls`). `starts` (kept by the caller
    across polls, updated here) holds where each band started last poll: the search looks there first."""
    starts = {} if starts is None else starts
    max_calls, max_rows = ctx.installation.distribution_max_calls - 1, sla.max_tickets
    calls, departments = 0, []
    window = max(10, min(WINDOW, max_rows // 20))
    for index, (deptid, label) in enumerate(sorted(labels.items())):
        if calls >= max_calls or ctx.pace.past_deadline():
            break
        # Each department gets its share of the rows (to be read whole) and of the calls left, so that a
        # department searched first cannot leave none to the last; what one does not use, the next may.
        left = len(labels) - index
        share = max(window, (max_rows - sum(len(d.by_position) for d in departments)) // left)
        dept, used = _search(ctx, deptid, DepartmentRows(label), band_ages(sla, label, ctx.now),
                             share, math.ceil((max_calls - calls) / left), window, starts)
        departments.append(dept)
        calls += used
    rows = {row.id: row for row in head} | {row.id: row for d in departments for row in d.by_position.values()}
    return SampledRead(rows=tuple(rows.values()), calls=calls,
                       bands={d.label: frozenset(d.band_ids) for d in departments if d.bands_read and not d.whole},
                       whole={d.label: frozenset(r.id for r in d.by_position.values()) for d in departments
                              if d.whole})


def _search(ctx: PollContext, deptid: int, dept: DepartmentRows, ages: list[tuple[float, float]], share: int,
            max_calls: int, window: int, memory: dict[tuple[int, int], int]) -> tuple[DepartmentRows, int]:
    """One department: the boundary search for where each at-risk band starts, then each band read on until
    a row is past the breach (the search's windows usually hold part of it)."""
    params = ctx.tickets_params(status=AWAITING, deptid=deptid)
    fetch = _recording(lambda start, num: ctx.reads.page(params, start, num), dept)
    starts = sorted({risk for risk, _ in ages})
    # The ages move with the clock, so last poll's counts are keyed by the band's rank in the department.
    previous = {age: memory[deptid, rank] for rank, age in enumerate(starts) if (deptid, rank) in memory}
    found = search(fetch, ctx.now, starts, total_hint=None, full_limit=share, max_calls=max_calls, window=window,
                   stop=ctx.pace.past_deadline, previous=previous)
    memory.update(((deptid, rank), n) for rank, n in enumerate((found.counts or ())[:len(starts)]) if n is not None)
    dept.total, calls = found.total, found.calls
    dept.whole = found.fetched >= found.total and len({r.id for r in dept.by_position.values()}) >= found.total
    if dept.whole or found.counts is None:
        return dept, calls
    count = dict(zip(starts, found.counts))
    covered = True
    for risk, breach in ages:
        lo = count.get(risk)
        held, used = (False, 0) if lo is None else _read_band(ctx, fetch, dept, lo, breach, max_calls - calls)
        covered, calls = covered and held, calls + used
    dept.bands_read = covered
    return dept, calls


def _read_band(ctx: PollContext, fetch: Callable[[int, int], Page], dept: DepartmentRows, lo: int, breach: float,
               calls_left: int) -> tuple[bool, int]:
    """Read positions lo.. until a ticket's age passes `breach` (or the list ends): (read whole, calls)."""
    calls = 0
    while True:
        end = lo
        while end in dept.by_position and ctx.now - dept.by_position[end].lastreply <= breach:
            end += 1
        if end in dept.by_position or end >= dept.total:
            return _distinct_band(dept, lo, end), calls
        if calls >= calls_left or ctx.pace.past_deadline():
            return False, calls
        # From above the run of equal lastreply that ends what is held: WHMCS may order a tie run differently
        # in this call, and a run read whole in one answer cannot show a ticket twice.
        start = end
        while start > lo and dept.by_position[start - 1].lastreply == dept.by_position[end - 1].lastreply:
            start -= 1
        fetch(max(0, start - OVERLAP), BAND_PAGE)
        calls += 1


def _distinct_band(dept: DepartmentRows, lo: int, end: int) -> bool:
    """Whether positions lo..end-1 hold distinct tickets (rows of two calls can show a tie run's ticket twice
    and hide another); their ids join the band either way."""
    rows = [dept.by_position[pos] for pos in range(lo, end)]
    dept.band_ids.update(row.id for row in rows)
    return len({row.id for row in rows}) == end - lo


def _recording(fetch: Callable[[int, int], Page], dept: DepartmentRows) -> Callable[[int, int], Page]:
    """`fetch` that also keeps every row it returns by its list position."""

    def take(start: int, num: int) -> Page:
        page = fetch(start, num)
        for offset, row in enumerate(page.tickets):
            dept.by_position[start + offset] = row
        return page

    return take
