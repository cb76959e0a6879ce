"""The sla collector above `sla.max_tickets`: per-department boundary searches against the simulator's truth.

`max_tickets` is set low (50) so that the boundary path runs on a desk small enough for the truth oracle:
business hours, a weekend, a holiday (Friday 30 October) and the DST change of 1 November (tests/test_sla.py).
What must be exact is exact (departments read whole: every cell; the others: next-reply at-risk cells);
what is sampled counts only tickets that really are in that state, and sample_ratio is the share read.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from exporter.collectors.base import PollContext
from exporter.collectors.pacing import Pace
from exporter.collectors.sla import SlaCollector
from exporter.collectors.sla_boundaries import NEVER, band_ages
from exporter.config.durations import parse_duration
from exporter.simulator import World
from exporter.simulator.sla_truth import OpenMinutes, sla_truth
from testkit.in_process import Clock, MemoryClient
from tests.test_sla import NOW, RULES, SLA, WEEK, ZONE, ZONE_NAME, installation, nonzero, poll, truth

LOW_LIMIT = {**SLA, "max_tickets": 50}


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=ZONE).timestamp()


@pytest.fixture(scope="module")
def big_desk() -> World:
    return World.generate(seed=11, tickets=3000, now=NOW, tz=ZONE_NAME, clock=lambda: NOW)


def read_ids(client: MemoryClient, head: int) -> set[int]:
    """The tickets the collector was given (recorded around the client, not by the collector): every row of
    the department lists, and the first `head` rows of the whole list (its first page)."""
    seen: set[int] = set()
    inner = client.call

    def call(action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = inner(action, params)
        if action == "GetTickets":
            rows = [int(t["id"]) for t in (answer.get("tickets") or {}).get("ticket", [])]
            first = int((params or {}).get("limitstart", 0))
            seen.update(rows if "deptid" in (params or {}) else rows[:max(0, head - first)])
        return answer

    client.call = call  # type: ignore[method-assign]
    return seen


def test_band_ages_are_the_business_time_targets_as_wall_clock_ages() -> None:
    sla = installation(sla=LOW_LIMIT).sla
    assert sla is not None
    # Billing's next reply (8 h business) at Monday 10:30:17: 1:30:17 on Monday, 4 real hours in Sunday's
    # 00:00-03:00 (the clocks fell back), 2 h on Saturday, none on the holiday Friday, 29:43 on Thursday.
    breach = at(2026, 10, 29, 17, 30, 17)
    # At risk from 7 h (8 h - warn_before 1 h), widened by a second: Saturday 10:30:18.
    risk = at(2026, 10, 31, 10, 30, 18)
    urgent = (-NEVER, 3601.0)  # calendar 1 h, warn_before 1 h: every next-reply wait not breached is at risk
    assert band_ages(sla, "Billing", NOW) == sorted([urgent, (NOW - risk, NOW - breach + 1)])
    assert band_ages(sla, "Sales", NOW) == [urgent]  # Sales' own rule sets no next reply
    assert band_ages(sla, "Abuse", NOW)[0] == urgent and len(band_ages(sla, "Abuse", NOW)) == 2  # catch-all 24 h


def test_next_reply_at_risk_is_exact_in_every_department_above_max_tickets(big_desk: World) -> None:
    inst = installation(sla=LOW_LIMIT, max_ticket_fetches_per_poll=100_000)
    client, collector = MemoryClient(big_desk), SlaCollector(inst)
    seen = read_ids(client, head=50)
    part = poll(collector, client, inst, NOW)
    expected = truth(big_desk, NOW)
    assert collector.last_read is not None and not collector.last_read.whole
    departments = {d.name for d in big_desk.departments}
    assert collector.last_read.exact_at_risk == departments
    next_reply = {cell: n for cell, n in nonzero(part.at_risk).items() if cell[2] == "next_reply"}
    assert next_reply == {cell: n for cell, n in expected.at_risk.items() if cell[2] == "next_reply"}
    assert sum(next_reply.values()) >= 5 and len({d for d, _, _ in next_reply}) >= 2  # the desk exercises it
    # Sampled: the share read, and every ticket counted really is breached / at risk.
    assert part.sample_ratio == len(seen) / len(expected.waits) < 0.5
    for cells, truth_cells in ((part.breached, expected.breached), (part.at_risk, expected.at_risk)):
        assert all(n <= truth_cells.get(cell, 0) for cell, n in cells)
    assert sum(n for _, n in part.breached) > 0
    assert client.calls["GetTickets"] <= inst.distribution_max_calls


def test_a_department_that_fits_its_share_is_read_whole_and_exact() -> None:
    desk = World.generate(seed=11, tickets=600, now=NOW, tz=ZONE_NAME, clock=lambda: NOW)
    inst = installation(sla=LOW_LIMIT, max_ticket_fetches_per_poll=100_000)
    collector = SlaCollector(inst)
    part = poll(collector, MemoryClient(desk), inst, NOW)
    expected = truth(desk, NOW)
    assert len(expected.waits) > 2 * 50 and part.sample_ratio < 1
    assert collector.last_read is not None
    whole = set(collector.last_read.whole)
    assert whole and whole != {d.name for d in desk.departments}
    for cells, truth_cells in ((part.breached, expected.breached), (part.at_risk, expected.at_risk)):
        mine = {cell: n for cell, n in cells if cell[0] in whole and n}
        assert mine == {cell: n for cell, n in truth_cells.items() if cell[0] in whole}
        assert mine  # the department read whole has breached and at-risk tickets


def test_the_call_cap_bounds_the_searches_and_narrows_what_is_exact(big_desk: World) -> None:
    inst = installation(sla=LOW_LIMIT, max_ticket_fetches_per_poll=100_000, distribution_max_calls=20)
    client, collector = MemoryClient(big_desk), SlaCollector(inst)
    part = poll(collector, client, inst, NOW)
    assert client.calls["GetTickets"] == 20  # 23 without the cap
    assert collector.last_read is not None
    exact = collector.last_read.exact_at_risk
    assert exact and exact != {d.name for d in big_desk.departments}
    expected = {cell: n for cell, n in truth(big_desk, NOW).at_risk.items()
                if cell[2] == "next_reply" and cell[0] in exact}
    assert expected  # a department still exact has next-reply tickets at risk
    assert expected == {cell: n for cell, n in nonzero(part.at_risk).items()
                        if cell[2] == "next_reply" and cell[0] in exact}


def test_no_search_call_after_the_poll_deadline(big_desk: World) -> None:
    inst = installation(sla=LOW_LIMIT, max_ticket_fetches_per_poll=0)
    clock = Clock(100.0)
    client = MemoryClient(big_desk)

    def late(action: str, params: dict[str, str], n: int) -> None:
        if action == "GetTickets" and n == 3:
            clock.t = 200.0  # the deadline passes during the third list call

    client.before = late
    collector = SlaCollector(inst)
    part = collector.poll(PollContext(client, NOW, inst, pace=Pace(clock=clock, deadline=150.0)))
    assert client.calls["GetTickets"] == 3
    assert 0 < part.sample_ratio < 1


@pytest.mark.parametrize("warn", ["1h", "6h"])
def test_wide_at_risk_bands_are_read_whole(big_desk: World, warn: str) -> None:
    """warn_before 6 h makes each band wider than the search's windows: it is read in a call of its own."""
    inst = installation(sla={**LOW_LIMIT, "warn_before": warn}, max_ticket_fetches_per_poll=100_000)
    collector = SlaCollector(inst)
    part = poll(collector, MemoryClient(big_desk), inst, NOW)
    span = (NOW - 90 * 86400, NOW + 30 * 86400)
    business = OpenMinutes.build(ZONE, WEEK, [date(2026, 10, 30)], *span)
    expected = sla_truth(big_desk, NOW, RULES, parse_duration(warn), business, OpenMinutes.build(ZONE, None, [], *span))
    assert collector.last_read is not None
    assert collector.last_read.exact_at_risk == {d.name for d in big_desk.departments}
    next_reply = {cell: n for cell, n in nonzero(part.at_risk).items() if cell[2] == "next_reply"}
    assert next_reply == {cell: n for cell, n in expected.at_risk.items() if cell[2] == "next_reply"}
    assert len(collector.last_read.band_rows) >= (50 if warn == "6h" else 10)


def test_a_department_is_exact_only_once_its_band_tickets_are_classified(big_desk: World) -> None:
    """GetTicket budget 32: band tickets are classified first, and a department whose band still holds an
    unclassified ticket is not claimed exact; the sample ratio counts the classified tickets only."""
    inst = installation(sla=LOW_LIMIT, max_ticket_fetches_per_poll=32)
    client, collector = MemoryClient(big_desk), SlaCollector(inst)
    asked: list[int] = []
    client.before = lambda action, params, n: asked.append(int(params["ticketid"])) if action == "GetTicket" else None
    part = poll(collector, client, inst, NOW)
    assert collector.last_read is not None and len(asked) == 32
    wide_inst = installation(sla=LOW_LIMIT, max_ticket_fetches_per_poll=100_000)
    wide = SlaCollector(wide_inst)
    poll(wide, MemoryClient(big_desk), wide_inst, NOW)
    assert wide.last_read is not None and set(asked) <= wide.last_read.band_rows  # the bands went first
    exact = collector.last_read.exact_at_risk
    assert exact < wide.last_read.exact_at_risk
    expected = {c: n for c, n in truth(big_desk, NOW).at_risk.items() if c[2] == "next_reply" and c[0] in exact}
    assert expected == {c: n for c, n in nonzero(part.at_risk).items() if c[2] == "next_reply" and c[0] in exact}
    assert expected  # some department exact already has next-reply tickets at risk
    assert part.sample_ratio < 1


def test_the_next_poll_looks_for_each_band_where_it_was_and_stays_exact(big_desk: World) -> None:
    inst = installation(sla=LOW_LIMIT, max_ticket_fetches_per_poll=100_000)
    client, collector = MemoryClient(big_desk), SlaCollector(inst)
    poll(collector, client, inst, NOW)
    first = client.calls["GetTickets"]
    client.calls.clear()
    later = NOW + 600  # ten minutes on: every band has moved
    part = poll(collector, client, inst, later)
    assert client.calls["GetTickets"] < first
    assert collector.last_read is not None
    assert collector.last_read.exact_at_risk == {d.name for d in big_desk.departments}
    expected = {c: n for c, n in truth(big_desk, later).at_risk.items() if c[2] == "next_reply"}
    assert expected == {c: n for c, n in nonzero(part.at_risk).items() if c[2] == "next_reply"}
