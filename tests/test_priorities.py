"""Active tickets by priority: complete up to sample_limit in one call, a labelled sample beyond."""

from __future__ import annotations

import pytest

from exporter.client import WhmcsClient
from exporter.collectors.base import PollContext
from exporter.collectors.priorities import PrioritiesCollector
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.simulator import Simulator, World
from testkit.exposition import exposition, promtool_check
from testkit.fake_whmcs import FakeTicket, FakeTickets

NOW = 1_700_000_000


def inst(limit: int = 1000, url: str = "http://whmcs.test") -> InstallationConfig:
    return InstallationConfig(name="t", url=url, auth=ApiCredentials(Secret("i"), Secret("s")), sample_limit=limit)


def fake(priorities: list[str]) -> FakeTickets:
    return FakeTickets([FakeTicket(i + 1, NOW - i, priority=p) for i, p in enumerate(priorities)],
                       string_numbers=True)


@pytest.mark.process
def test_complete_list_in_one_call_with_standard_priorities_at_zero():
    f = fake(["High", "High", "Low", "Urgent"])
    part = PrioritiesCollector().poll(PollContext(client=f, now=NOW, installation=inst()))
    assert dict(part.by_priority) == {"High": 2, "Low": 1, "Medium": 0, "Urgent": 1}
    assert part.sample_ratio == 1.0
    assert f.calls == [("GetTickets", {"ignore_dept_assignments": "1", "status": "All Active Tickets",
                                       "limitstart": 0, "limitnum": 1000})]
    promtool_check(exposition(part))


def test_beyond_sample_limit_the_newest_are_a_sample_and_say_so():
    f = fake(["High"] * 3 + ["Low"] * 7)
    part = PrioritiesCollector().poll(PollContext(client=f, now=NOW, installation=inst(limit=4)))
    assert dict(part.by_priority) == {"High": 3, "Low": 1, "Medium": 0}
    assert part.sample_ratio == 0.4 and f.ticket_calls() == 1


def test_empty_list():
    part = PrioritiesCollector().poll(PollContext(client=fake([]), now=NOW, installation=inst()))
    assert dict(part.by_priority) == {"High": 0, "Low": 0, "Medium": 0} and part.sample_ratio == 1.0


class Clock:
    def __call__(self) -> float:
        return NOW


@pytest.mark.process
def test_simulator_matches_the_truth():
    world = World.generate(seed=6, tickets=2000, now=NOW, clock=Clock())
    with Simulator(world=world) as sim:
        i = InstallationConfig(name="sim", url=sim.url,
                               auth=ApiCredentials(Secret("sim-identifier"), Secret("sim-secret")),
                               timezone=world.tz_name)
        client = WhmcsClient(i)
        part = PrioritiesCollector().poll(PollContext(client=client, now=NOW, installation=i))
    truth = world.truth(NOW)["priorities"]
    assert part.sample_ratio == 1.0 and client.stats.totals()[0] == {"GetTickets": 1}
    assert {k: v for k, v in part.by_priority if v or k in truth} == truth
    promtool_check(exposition(part))
