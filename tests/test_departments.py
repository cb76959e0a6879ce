"""Per-department backlog: counts from GetSupportDepartments, the longest wait from one tail call each."""

from __future__ import annotations

import pytest

from exporter.client import WhmcsClient
from exporter.collectors.base import PollContext
from exporter.collectors.departments import DepartmentsCollector
from exporter.collectors.support_departments import parse_departments
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.errors import ShapeError
from exporter.simulator import Department, Simulator, World
from testkit.exposition import exposition, promtool_check
from testkit.fake_whmcs import FakeTicket, FakeTickets

NOW = 1_700_000_000
INST = InstallationConfig(name="t", url="http://whmcs.test", auth=ApiCredentials(Secret("i"), Secret("s")))


def dept(ident: int, name: str, awaiting: int, active: int) -> dict:
    return {"id": str(ident), "name": name, "awaitingreply": str(awaiting), "opentickets": str(active)}


def series(part) -> dict[tuple[str, str], float]:
    out = {}
    for line in exposition(part).decode().splitlines():
        if line.startswith("whmcs_department"):
            name, rest = line.split("{", 1)
            labels, value = rest.rsplit("} ", 1)
            department = labels.split('department="', 1)[1].split('"', 1)[0]
            out[(name, department)] = float(value)
    return out


@pytest.mark.process
def test_counts_oldest_wait_and_one_tail_call_per_waiting_department():
    fake = FakeTickets([FakeTicket(1, NOW - 60, deptid=1), FakeTicket(2, NOW - 500, deptid=1),
                        FakeTicket(3, NOW - 7200, deptid=2)],
                       string_numbers=True,
                       departments=[dept(1, "Sales", 2, 3), dept(2, "Support", 1, 1), dept(3, "Abuse", 0, 4)])
    part = DepartmentsCollector().poll(PollContext(client=fake, now=NOW, installation=INST))
    got = series(part)
    assert got[("whmcs_department_tickets_awaiting_reply", "Sales")] == 2
    assert got[("whmcs_department_tickets_active", "Abuse")] == 4
    assert got[("whmcs_department_oldest_awaiting_reply_age_seconds", "Sales")] == 500
    assert got[("whmcs_department_oldest_awaiting_reply_age_seconds", "Support")] == 7200
    assert got[("whmcs_department_oldest_awaiting_reply_age_seconds", "Abuse")] == 0
    assert [a for a, _ in fake.calls] == ["GetSupportDepartments", "GetTickets", "GetTickets"]
    assert fake.calls[0][1] == {"ignore_dept_assignments": "1"}
    assert {p["limitstart"] for a, p in fake.calls[1:]} == {1, 0}  # the hint pointed straight at the tail
    promtool_check(exposition(part))


@pytest.mark.process
def test_duplicate_names_get_the_id_and_no_departments_key_means_none():
    fake = FakeTickets([], departments=[dept(7, "Support", 0, 0), dept(3, "Support", 0, 1), dept(9, "Support", 0, 2)])
    part = DepartmentsCollector().poll(PollContext(client=fake, now=NOW, installation=INST))
    assert [r.label for r in part.departments] == ["Support (id 7)", "Support", "Support (id 9)"]
    promtool_check(exposition(part))
    empty = DepartmentsCollector().poll(PollContext(client=FakeTickets([], departments=[]), now=NOW, installation=INST))
    assert empty.departments == () and series(empty) == {}


def test_tail_hidden_by_department_filter_leaves_the_age_absent():
    fake = FakeTickets([], departments=[dept(1, "Sales", 2, 2)])  # GetTickets sees nothing
    part = DepartmentsCollector().poll(PollContext(client=fake, now=NOW, installation=INST))
    assert part.departments[0].oldest_age is None
    assert ("whmcs_department_oldest_awaiting_reply_age_seconds", "Sales") not in series(part)


def test_unreadable_answer_is_a_shape_error():
    with pytest.raises(ValueError):
        parse_departments({"departments": {"department": [{"id": "1", "name": "A", "awaitingreply": "x"}]}})
    fake = FakeTickets([], departments=[{"id": "one", "name": "A", "awaitingreply": "0", "opentickets": "0"}])
    with pytest.raises(ShapeError):
        DepartmentsCollector().poll(PollContext(client=fake, now=NOW, installation=INST))


class Clock:
    def __call__(self) -> float:
        return NOW


@pytest.mark.process
def test_simulator_every_department_matches_the_truth_and_deleted_ones_vanish():
    world = World.generate(seed=4, tickets=3000, now=NOW, clock=Clock(), tz="Europe/Berlin")
    with Simulator(world=world) as sim:
        inst = InstallationConfig(name="sim", url=sim.url,
                                  auth=ApiCredentials(Secret("sim-identifier"), Secret("sim-secret")),
                                  timezone="Europe/Berlin")
        client = WhmcsClient(inst)
        collector = DepartmentsCollector()
        part = collector.poll(PollContext(client=client, now=NOW, installation=inst))
        truth = world.truth(NOW)["departments"]
        assert {r.label for r in part.departments} == {d.name for d in world.departments}
        for row in part.departments:
            want = truth[row.label]
            assert (row.awaiting, row.active, row.oldest_age) == (want["awaiting"], want["active"],
                                                                   want["oldest_awaiting_age"])
        waiting = sum(1 for r in part.departments if r.awaiting)
        assert client.stats.totals()[0] == {"GetSupportDepartments": 1, "GetTickets": waiting}
        promtool_check(exposition(part))

        with world.lock:  # "Abuse" is deleted; a second "Sales" appears
            world.departments = [d for d in world.departments if d.name != "Abuse"] + [Department(99, "Sales")]
            world._bump()
        again = collector.poll(PollContext(client=client, now=NOW, installation=inst))
        labels = {r.label for r in again.departments}
        assert "Abuse" not in labels and {"Sales", "Sales (id 99)"} <= labels
        assert not any(k[1] == "Abuse" for k in series(again))


def test_longest_wait_is_measured_for_at_most_max_tails_departments():
    depts = [dept(i, f"D{i}", awaiting=i, active=i) for i in range(1, 8)]
    tickets = [FakeTicket(100 + i, NOW - 1000 * i, deptid=i) for i in range(1, 8) for _ in range(i)]
    fake = FakeTickets(tickets, departments=depts)
    fake.sort()
    part = DepartmentsCollector(max_tails=3).poll(PollContext(client=fake, now=NOW, installation=INST))
    ages = {row.label: row.oldest_age for row in part.departments}
    # The three departments with the most waiting tickets are measured, the others have no series.
    assert ages == {"D7": 7000.0, "D6": 6000.0, "D5": 5000.0, "D4": None, "D3": None, "D2": None, "D1": None}
    assert fake.ticket_calls() == 3
