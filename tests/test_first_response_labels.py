"""First response per department and priority: exact against the simulator, bounded, and old state restored."""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

from exporter.collectors.base import PollContext
from exporter.collectors.departments import DepartmentsCollector
from exporter.collectors.first_response import FirstResponseCollector, FirstResponsePart
from exporter.collectors.ticket_labels import MAX_EXTRA_PRIORITIES, priority_labels
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.simulator import World
from exporter.simulator.response_truth import first_response_by_label
from exporter.state.saved import SavedCollector
from testkit.in_process import Clock, MemoryClient

NOW = 1_700_000_000.0
HOUR = 3600.0
ZONE = "America/Chicago"


def inst(**kw: Any) -> InstallationConfig:
    return InstallationConfig(name="desk", url="http://whmcs.example", auth=ApiCredentials(Secret("i"), Secret("s")),
                              timezone=ZONE, max_ticket_fetches_per_poll=1000, **kw)


def desk(tickets: int = 600) -> tuple[World, Clock]:
    clock = Clock(NOW)
    return World.generate(seed=5, tickets=tickets, now=NOW, tz=ZONE, clock=clock), clock


def poll(collector: FirstResponseCollector, client: Any, now: float, parts: dict | None = None) -> FirstResponsePart:
    return collector.poll(PollContext(client=client, now=now, installation=inst(), parts=dict(parts or {})))


def by_label(part: FirstResponsePart) -> dict[tuple[str, str], dict]:
    return {(h.department, h.priority): {"buckets": dict(h.buckets[:-1]), "count": h.buckets[-1][1],
                                         "sum": h.total_seconds} for h in part.histograms}


def assert_exact(part: FirstResponsePart, world: World, now: float = NOW) -> None:
    assert part.coverage == 1.0
    truth = first_response_by_label(world, now, inst().buckets)
    got = by_label(part)
    assert {k: v for k, v in got.items() if v["count"]} == truth
    # Every department x Low/Medium/High is there, at 0 when no ticket is in it: series do not come and go.
    assert {(d.name, p) for d in world.departments for p in ("Low", "Medium", "High")} <= got.keys()
    assert all(v == {"buckets": dict.fromkeys(inst().buckets, 0), "count": 0, "sum": 0.0}
               for k, v in got.items() if k not in truth)
    # The whole desk is the sum of the parts.
    assert part.buckets[-1] == (math.inf, sum(v["count"] for v in truth.values()))
    assert part.total_seconds == sum(v["sum"] for v in truth.values())


def test_per_department_and_priority_exact_with_the_departments_part():
    world, _ = desk()
    client = MemoryClient(world)
    departments = DepartmentsCollector().poll(PollContext(client=client, now=NOW, installation=inst()))
    before = client.calls["GetSupportDepartments"]
    part = poll(FirstResponseCollector(inst()), client, NOW, {"departments": departments})
    assert_exact(part, world)
    assert client.calls["GetSupportDepartments"] == before  # the part's labels: no call of its own


def test_without_the_departments_collector_the_names_are_asked_at_most_hourly():
    world, clock = desk()
    client = MemoryClient(world)
    collector = FirstResponseCollector(inst())
    for minutes in (0, 1, 30, 59):
        clock.t = NOW + minutes * 60
        assert_exact(poll(collector, client, clock.t), world, clock.t)
    assert client.calls["GetSupportDepartments"] == 1
    clock.t = NOW + HOUR
    assert_exact(poll(collector, client, clock.t), world, clock.t)
    assert client.calls["GetSupportDepartments"] == 2


def test_a_ticket_moved_to_another_department_or_priority_is_relabelled_when_listed_again():
    world, clock = desk(200)
    client = MemoryClient(world)
    collector = FirstResponseCollector(inst())
    opened = world.add_ticket(deptid=1, priority="High", at=NOW - HOUR)
    world.staff_reply(opened.id, at=NOW - HOUR + 600)
    replied = world.add_ticket(deptid=1, priority="High", at=NOW - HOUR)
    world.staff_reply(replied.id, at=NOW - HOUR + 900)
    assert_exact(poll(collector, client, NOW), world)
    # Moved without a reply: relisted by the head scan's page if it is near the top, else by the hourly full pass.
    world.tickets[opened.id].deptid = 2
    # Moved with a reply: at the top of the list, relabelled by the next head scan.
    world.tickets[replied.id].priority = "Low"
    world.customer_reply(replied.id, at=NOW + 60)
    clock.t = NOW + 120
    part = by_label(poll(collector, client, clock.t))
    truth = first_response_by_label(world, clock.t, inst().buckets)
    sales = world.department(1).name
    assert part[(sales, "Low")] == truth[(sales, "Low")]
    clock.t = NOW + HOUR + 120
    assert_exact(poll(collector, client, clock.t), world, clock.t)


def test_priorities_beyond_the_bound_are_summed_under_other():
    texts = ["Low"] * 3 + [f"P{i}" for i in range(MAX_EXTRA_PRIORITIES + 3) for _ in range(20 - i)] + ["", " "]
    labels = priority_labels(Counter(t.strip() or "(none)" for t in texts))
    extra = [f"P{i}" for i in range(MAX_EXTRA_PRIORITIES + 3)]
    # "(none)" (2 tickets) is the least frequent text: the 7 most frequent are P0..P6.
    assert [t for t in extra if labels[t] != "other"] == extra[:MAX_EXTRA_PRIORITIES]
    assert labels["(none)"] == "other" and labels["Low"] == "Low" and labels["Medium"] == "Medium"
    assert set(labels.values()) == {"Low", "Medium", "High", "other", *extra[:MAX_EXTRA_PRIORITIES]}


def test_many_custom_priorities_stay_bounded_and_exact_in_sum():
    world, _ = desk(300)
    for i, t in enumerate(sorted(world.tickets.values(), key=lambda t: t.id)):
        t.priority = f"Custom {i % 13}" if i % 2 else t.priority
    part = poll(FirstResponseCollector(inst()), MemoryClient(world), NOW)
    priorities = {h.priority for h in part.histograms}
    assert len(priorities - {"Low", "Medium", "High", "Urgent"}) <= MAX_EXTRA_PRIORITIES + 1
    assert "other" in priorities
    truth = first_response_by_label(world, NOW, inst().buckets)
    assert sum(h.buckets[-1][1] for h in part.histograms) == sum(v["count"] for v in truth.values())
    assert math.isclose(sum(h.total_seconds for h in part.histograms), sum(v["sum"] for v in truth.values()))


def test_state_of_the_previous_version_is_restored_and_labelled_by_the_next_poll(caplog):
    world, _ = desk()
    client = MemoryClient(world)
    collector = FirstResponseCollector(inst())
    poll(collector, client, NOW)
    saved = collector.save_state()
    assert all(len(item) == 8 for item in saved.items.values())
    old = SavedCollector(scalars=saved.scalars, items={i: item[:6] for i, item in saved.items.items()})
    restarted = FirstResponseCollector(inst())
    with caplog.at_level(logging.INFO, logger="exporter.collectors.first_response"):
        restarted.restore_state(old)
    assert len(restarted.tickets) == len(collector.tickets)  # nothing thrown away: no GetTicket calls again
    assert any("without department and priority" in r.getMessage() for r in caplog.records)
    calls_before = client.calls["GetTicket"]
    part = poll(restarted, client, NOW)
    assert client.calls["GetTicket"] == calls_before  # the replies were known: only the list is read again
    assert_exact(part, world)
    new = FirstResponseCollector(inst())
    new.restore_state(restarted.save_state())
    assert all(t.labelled for t in new.tickets.values())
