"""The sla collector against the simulator's truth: business hours, a weekend, a holiday and a DST change.

The truth comes from exporter/simulator/sla_truth.py, an independent minute-by-minute oracle over the
raw tickets; the collector reads the simulator through its API functions in-process (no HTTP), so
calls can be counted (testkit.in_process.MemoryClient).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from exporter.collectors.base import PollContext
from exporter.collectors.registry import build_collectors
from exporter.collectors.sla import SlaCollector, SlaPart
from exporter.config import InstallationConfig, parse
from exporter.families import FamilySink
from exporter.simulator import World
from exporter.simulator.sla_truth import OpenMinutes, sla_truth
from exporter.state.saved import SavedInstallation
from exporter.state.store import StateStore
from testkit.in_process import MemoryClient

ZONE_NAME = "America/Chicago"
ZONE = ZoneInfo(ZONE_NAME)
# Monday 2 November 2026, 10:30 in Chicago: the clocks fell back on Sunday 1 November, Friday 30 October
# is a holiday, and most waits of the generated desk span the weekend.
NOW = datetime(2026, 11, 2, 10, 30, 17, tzinfo=ZONE).timestamp()
H = 3600
SLA = {
    "business_hours": {"mon": "09:00-18:00", "tue": "09:00-18:00", "wed": "09:00-18:00", "thu": "09:00-18:00",
                       "fri": "09:00-13:00,14:00-18:00", "sat": "10:00-12:00",
                       # a night shift across the fall-back: 00:00-03:00 lasts 4 real hours on 1 November
                       "sun": "00:00-03:00"},
    "holidays": ["2026-10-30"],
    "warn_before": "1h",
    "targets": [
        {"priority": "Urgent", "first_response": "30m", "next_reply": "1h", "hours": "calendar"},
        {"department": "Billing", "first_response": "4h", "next_reply": "8h"},
        {"department": "Sales", "first_response": "2h"},
        {"first_response": "8h", "next_reply": "24h"},
    ],
}
RULES = [
    {"priority": "Urgent", "first_response": 1800, "next_reply": 3600, "calendar": True},
    {"department": "Billing", "first_response": 4 * H, "next_reply": 8 * H},
    {"department": "Sales", "first_response": 2 * H},
    {"first_response": 8 * H, "next_reply": 24 * H},
]
WEEK = {d: [(540, 1080)] for d in range(4)} | {4: [(540, 780), (840, 1080)], 5: [(600, 720)], 6: [(0, 180)]}


def installation(sla: dict[str, Any] | None = SLA, **extra: Any) -> InstallationConfig:
    raw = {"url": "http://whmcs.example", "api_identifier": "i", "api_secret": "s", "timezone": ZONE_NAME, **extra}
    if sla is not None:
        raw["sla"] = sla
    return parse({"installations": [raw]}).installations[0]


def poll(collector: SlaCollector, client: MemoryClient, inst: InstallationConfig, now: float) -> SlaPart:
    return collector.poll(PollContext(client=client, now=now, installation=inst))


def truth(world: World, now: float):  # noqa: ANN201 - the simulator's type
    span = (NOW - 90 * 86400, now + 30 * 86400)
    business = OpenMinutes.build(ZONE, WEEK, [date(2026, 10, 30)], *span)
    calendar = OpenMinutes.build(ZONE, None, [], *span)
    return sla_truth(world, now, RULES, 3600, business, calendar)


def nonzero(cells: tuple) -> dict:
    return {cell: n for cell, n in cells if n}


@pytest.fixture(scope="module")
def desk() -> World:
    return World.generate(seed=11, tickets=600, now=NOW, tz=ZONE_NAME, clock=lambda: NOW)


def test_breached_at_risk_and_next_breach_equal_the_truth(desk: World) -> None:
    inst = installation(max_ticket_fetches_per_poll=1000)
    part = poll(SlaCollector(inst), MemoryClient(desk), inst, NOW)
    expected = truth(desk, NOW)
    assert nonzero(part.breached) == expected.breached
    assert nonzero(part.at_risk) == expected.at_risk
    assert part.next_breach == expected.next_breach
    assert part.sample_ratio == 1.0
    # The desk really exercises each case: breaches of both kinds and of calendar and business rules.
    assert {kind for _, _, kind in expected.breached} == {"first_response", "next_reply"}
    assert any(p == "Urgent" for _, p, _ in expected.breached) and sum(expected.at_risk.values()) > 0


def test_every_cell_with_a_target_is_exported_at_zero(desk: World) -> None:
    inst = installation(max_ticket_fetches_per_poll=1000)
    part = poll(SlaCollector(inst), MemoryClient(desk), inst, NOW)
    cells = {cell for cell, _ in part.breached}
    assert cells == {cell for cell, _ in part.at_risk}
    departments = {d.name for d in desk.departments}
    assert {d for d, _, _ in cells} == departments
    assert {p for _, p, _ in cells} == {"Low", "Medium", "High", "Urgent"}
    assert ("Sales", "Low", "next_reply") not in cells  # the Sales rule sets no next-reply target
    assert ("Sales", "Urgent", "next_reply") in cells  # ... but the Urgent rule comes first
    assert len(cells) == len(departments) * 4 * 2 - 3  # Sales x Low/Medium/High x next_reply left out


def test_later_polls_move_with_the_clock_and_use_the_cache(desk: World) -> None:
    inst = installation(max_ticket_fetches_per_poll=1000)
    client, collector = MemoryClient(desk), SlaCollector(inst)
    poll(collector, client, inst, NOW)
    client.calls.clear()
    later = NOW + 5 * H  # 15:30 Monday: five more business hours
    part = poll(collector, client, inst, later)
    expected = truth(desk, later)
    assert nonzero(part.breached) == expected.breached and nonzero(part.at_risk) == expected.at_risk
    assert part.next_breach == expected.next_breach
    assert client.calls == {"GetSupportDepartments": 1, "GetTickets": 1}  # replies known: no GetTicket


def test_the_get_ticket_budget_bounds_calls_and_shows_in_the_sample_ratio(desk: World) -> None:
    inst = installation(max_ticket_fetches_per_poll=5)
    client, collector = MemoryClient(desk), SlaCollector(inst)
    part = poll(collector, client, inst, NOW)
    assert client.calls["GetTicket"] == 5
    waits = truth(desk, NOW).waits
    known = sum(1 for ident in waits if desk.tickets[ident].lastreply <= desk.tickets[ident].date)
    assert part.sample_ratio == (known + 5) / len(waits)


def test_replies_to_watched_waits_are_counted_met_or_breached() -> None:
    world = World.generate(seed=5, tickets=300, now=NOW, tz=ZONE_NAME, clock=lambda: NOW)
    inst = installation(max_ticket_fetches_per_poll=1000)
    client, collector = MemoryClient(world), SlaCollector(inst)
    poll(collector, client, inst, NOW)
    before = truth(world, NOW)
    business = OpenMinutes.build(ZONE, WEEK, [date(2026, 10, 30)], NOW - 90 * 86400, NOW + 86400)
    calendar = OpenMinutes.build(ZONE, None, [], NOW - 90 * 86400, NOW + 86400)
    names = {d.id: d.name for d in world.departments}
    expected: Counter[tuple[str, str, str, str]] = Counter()
    answered = sorted(before.waits)[::7]
    for index, ident in enumerate(answered):
        t = world.tickets[ident]
        replied = NOW + 60 + index
        world.staff_reply(ident, at=replied)
        kind, start = before.waits[ident]
        dept = names[t.deptid]
        rule = next(r for r in RULES if r.get("department") in (None, dept) and r.get("priority") in (None, t.priority))
        if rule.get(kind) is None:
            continue
        hours = calendar if rule.get("calendar") else business
        expected[(dept, t.priority, kind, "met" if hours.elapsed(start, replied) <= rule[kind] else "breached")] += 1
    closed = sorted(set(before.waits) - set(answered))[0]
    world.close(closed)  # left the list without a reply: not a response
    part = poll(collector, client, inst, NOW + 600)
    assert {k: n for k, n in part.responses if n} == dict(expected)
    assert {r for (_, _, _, r), n in part.responses if n} == {"met", "breached"}
    assert client.calls["GetTickets"] == 2 + 1  # two listings and one look at the head of the list


def test_a_restart_keeps_the_counter_the_watched_waits_and_the_cache(tmp_path) -> None:
    """Saved after a poll and restored into a new collector through the SQLite store, the SLA collector counts
    the replies made while it was down exactly as one that never stopped, and reads no staff reply again."""
    world = World.generate(seed=5, tickets=300, now=NOW, tz=ZONE_NAME, clock=lambda: NOW)
    inst = installation(max_ticket_fetches_per_poll=1000)
    client, steady = MemoryClient(world), SlaCollector(inst)
    poll(steady, client, inst, NOW)
    store = StateStore.open(str(tmp_path))
    store.save("k", SavedInstallation(collectors={"sla": steady.save_state()}))
    store.close()
    for ident in sorted(truth(world, NOW).waits)[::5]:
        world.staff_reply(ident, at=NOW + 120)
    restarted = SlaCollector(inst)
    again = StateStore.open(str(tmp_path))
    restarted.restore_state(again.load("k").collectors["sla"])
    again.close()
    assert restarted.known == steady.known and restarted.watched == steady.watched
    client.calls.clear()
    after_restart = poll(restarted, client, inst, NOW + 600)
    assert client.calls["GetTicket"] == 0  # every staff-reply fact came from the store
    assert after_restart.responses == poll(steady, MemoryClient(world), inst, NOW + 600).responses
    assert sum(n for _, n in after_restart.responses) > 0


def test_other_targets_after_a_restart_drop_the_watched_waits_but_keep_the_totals() -> None:
    world = World.generate(seed=5, tickets=300, now=NOW, tz=ZONE_NAME, clock=lambda: NOW)
    inst = installation(max_ticket_fetches_per_poll=1000)
    collector = SlaCollector(inst)
    poll(collector, MemoryClient(world), inst, NOW)
    collector.responses[("Billing", "High", "first_response", "met")] = 7
    saved = collector.save_state()
    changed = installation(sla={**SLA, "warn_before": "2h"}, max_ticket_fetches_per_poll=1000)
    restarted = SlaCollector(changed)
    restarted.restore_state(saved)
    assert restarted.watched == {} and collector.watched
    assert restarted.responses == collector.responses and restarted.known == collector.known


def test_a_first_response_followed_by_a_customer_reply_within_one_poll_is_counted() -> None:
    world = World.generate(seed=5, tickets=0, departments=["Support"], now=NOW, tz=ZONE_NAME, clock=lambda: NOW)
    fast = world.add_ticket(deptid=1, priority="Low", at=NOW - 2 * H)  # opened 08:30: 1.5 business hours at 10:30
    slow = world.add_ticket(deptid=1, priority="Low", at=NOW - 5 * 86400)  # opened last Wednesday
    inst = installation(max_ticket_fetches_per_poll=10)
    client, collector = MemoryClient(world), SlaCollector(inst)
    poll(collector, client, inst, NOW)
    for ticket in (fast, slow):
        world.staff_reply(ticket.id, at=NOW + 60)
        world.customer_reply(ticket.id, at=NOW + 120)  # still awaiting when the exporter looks again
    part = poll(collector, client, inst, NOW + 180)
    assert {k: n for k, n in part.responses if n} == {("Support", "Low", "first_response", "met"): 1,
                                                     ("Support", "Low", "first_response", "breached"): 1}
    assert client.calls["GetTicket"] == 2
    part = poll(collector, client, inst, NOW + 240)  # counted once: both now wait for a next reply
    assert sum(n for _, n in part.responses) == 2


def test_without_sla_there_is_no_collector_and_no_call() -> None:
    assert "sla" not in [c.name for c in build_collectors(installation(sla=None))]
    assert "sla" in [c.name for c in build_collectors(installation())]


def test_five_thousand_awaiting_tickets_take_at_most_ten_list_calls() -> None:
    world = World.generate(seed=2, tickets=5000, now=NOW, tz=ZONE_NAME, clock=lambda: NOW,
                           mix={"Open": 1, "Customer-Reply": 1})
    inst = installation(max_ticket_fetches_per_poll=0)
    client = MemoryClient(world)
    rows, total, complete = SlaCollector(inst)._read_awaiting(PollContext(client, NOW, inst))
    assert complete and total == len(truth(world, NOW).waits) > 4800
    assert sorted(row.id for row in rows) == sorted(truth(world, NOW).waits)
    assert client.calls["GetTickets"] <= 10


def test_exposition_names_labels_and_counter() -> None:
    part = SlaPart(whmcs="desk", breached=((("Billing", "High", "first_response"), 2),),
                   at_risk=((("Billing", "High", "first_response"), 1),), next_breach=1_800_000_000.0,
                   responses=((("Billing", "High", "first_response", "met"), 3),), sample_ratio=1.0)
    sink = FamilySink(100)
    part.families(sink)
    registry = CollectorRegistry()
    registry.register(type("C", (), {"collect": lambda self: sink.families(), "describe": lambda self: []})())
    text = generate_latest(registry).decode()
    labels = 'department="Billing",priority="High",sla="first_response",whmcs="desk"'
    assert f"whmcs_sla_tickets_breached{{{labels}}} 2.0" in text
    assert f"whmcs_sla_tickets_at_risk{{{labels}}} 1.0" in text
    assert 'whmcs_sla_next_breach_timestamp_seconds{whmcs="desk"} 1.8e+09' in text
    assert ('whmcs_sla_responses_total{department="Billing",priority="High",result="met",sla="first_response",'
            'whmcs="desk"} 3.0') in text
    assert "# TYPE whmcs_sla_responses_total counter" in text
