"""Names as the admin area shows them (HTML entities decoded once) and status titles that collide in
GetTicketCounts' keys, against the simulator's switches (`World.escape_names`, non-ASCII statuses).

The collectors run in-process against the simulator's API functions (testkit.in_process.MemoryClient: the
real `classify()`, calls counted per action).
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest
import requests

from exporter.collectors.base import PollContext
from exporter.collectors.counts import CountsCollector
from exporter.collectors.departments import DepartmentsCollector
from exporter.collectors.priorities import PrioritiesCollector
from exporter.collectors.status_titles import RECHECK_TITLES, whmcs_key
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.errors import PermissionDenied
from exporter.fields import label_text
from exporter.simulator import Simulator, World, status_key
from exporter.simulator.stored_text import php_escape
from testkit.in_process import Clock, MemoryClient

NOW = 1_700_000_000


def installation(**kw: object) -> InstallationConfig:
    return InstallationConfig(name="desk", url="http://whmcs.example", auth=ApiCredentials(Secret("i"), Secret("s")),
                              timezone="America/Chicago", **kw)


@pytest.mark.parametrize(("raw", "shown"), [
    ("Sales &amp; Billing", "Sales & Billing"),
    ("Sales &amp;amp; Billing", "Sales &amp; Billing"),  # escaped twice: decoded once, as the admin area shows it
    ("Sales & Billing", "Sales & Billing"),
    ("Partner&#039;s &lt;VIP&gt; Desk", "Partner's <VIP> Desk"),
    ("Partner&#39;s &#x3C;VIP&#x3E; &quot;Desk&quot;", 'Partner\'s <VIP> "Desk"'),
    ("R&D", "R&D"),
    ("Tom&notes &amp", "Tom&notes &amp"),  # no semicolon: not a reference PHP writes, a literal `&`
    ("a &bogus; b", "a &bogus; b"),
    ("  Technical Support ", "Technical Support"),
    ("Überprüfung", "Überprüfung"),
])
def test_label_text_decodes_character_references_once(raw: str, shown: str):
    assert label_text(raw, "name") == shown


def test_simulator_escapes_like_php():
    assert php_escape("Partner's <VIP> & \"Desk\"") == "Partner&#039;s &lt;VIP&gt; &amp; &quot;Desk&quot;"
    assert php_escape("A & B", times=2) == "A &amp;amp; B"


NAMES = {"department": "Sales & Billing", "status": "Waiting on Vendor & Partner", "priority": "Partner's <VIP>"}


def named_desk(clock: Clock) -> World:
    world = World.generate(seed=2, tickets=300, now=clock.t, clock=clock,
                           departments=[NAMES["department"], "Partner's <VIP> Desk", "Technical Support"])
    world.add_status(NAMES["status"], True, True)
    world.priorities.append(NAMES["priority"])
    for i, t in enumerate(t for t in world.live_tickets() if (s := world.status(t.status)) and s.showactive):
        if i % 7 == 0:
            t.status = NAMES["status"]
        if i % 5 == 0:
            t.priority = NAMES["priority"]
    world.add_ticket(deptid=1, status=NAMES["status"], at=clock.t - 60)  # a mutation: indexes rebuild
    return world


def labels_of(world: World, clock: Clock) -> dict[str, dict[str, int]]:
    client, inst = MemoryClient(world), installation(sample_limit=5000)
    out = {}
    for name, collector in (("status", CountsCollector()), ("department", DepartmentsCollector()),
                            ("priority", PrioritiesCollector())):
        part = collector.poll(PollContext(client=client, now=clock.t, installation=inst))
        if name == "status":
            out[name] = dict(part.by_status)
        elif name == "department":
            out[name] = {row.label: row.active for row in part.departments}
        else:
            out[name] = dict(part.by_priority)
    return out


@pytest.mark.parametrize("times", [1, 2])
def test_labels_are_the_same_whether_or_not_answers_are_escaped(times: int):
    clock = Clock(NOW)
    world = named_desk(clock)
    plain = labels_of(world, clock)
    truth = world.truth(clock.t)
    assert plain["status"] == truth["status_counts"]
    assert plain["priority"] == {**{p: 0 for p in ("Low", "Medium", "High")}, **truth["priorities"]}
    assert {n: truth["departments"][n]["active"] for n in plain["department"]} == plain["department"]
    for kind, name in NAMES.items():
        assert plain[kind][name] > 0, kind
    world.escape_names = times
    escaped = labels_of(world, clock)
    if times == 1:  # escaped once (as WHMCS stores admin input): the same series, label for label
        assert escaped == plain
    else:  # saved twice: one level of escaping stays, as the admin area shows it
        for kind, name in NAMES.items():
            assert escaped[kind][php_escape(name)] == plain[kind][name]
            assert name not in escaped[kind]


def test_one_status_under_two_spellings_is_one_label():
    # The configured title was saved in the admin area (escaped); tickets set through the API carry it plain.
    # GetTicketCounts lists both (different keys); the label, and so the series, is one.
    clock = Clock(NOW)
    world = World.generate(seed=2, tickets=200, now=clock.t, clock=clock)
    world.add_status(php_escape(NAMES["status"]), True, True)
    active = [t for t in world.live_tickets() if t.status == "Open"]
    for i, t in enumerate(active[:12]):
        t.status = php_escape(NAMES["status"]) if i % 2 else NAMES["status"]
    world.add_ticket(status="Open", at=clock.t)
    client = MemoryClient(world)
    part = CountsCollector().poll(PollContext(client=client, now=clock.t, installation=installation()))
    assert dict(part.by_status)[NAMES["status"]] == 12
    assert php_escape(NAMES["status"]) not in dict(part.by_status)
    assert client.calls == Counter({"GetTicketCounts": 1})  # no collision: keys are the titles reduced


# ---- colliding status titles -----------------------------------------------------------------------------

def counts_polls(world: World, clock: Clock, polls: int, step: float = 60.0,
                 collector: CountsCollector | None = None) -> list[tuple[dict[str, int], dict[str, int]]]:
    """[(per-status counts, calls by action)] for `polls` polls `step` seconds apart."""
    collector = collector or CountsCollector()
    client, inst, out = MemoryClient(world), installation(), []
    for _ in range(polls):
        client.calls.clear()
        part = collector.poll(PollContext(client=client, now=clock.t, installation=inst))
        out.append((dict(part.by_status), dict(client.calls)))
        clock.t += step
    return out


def with_statuses(clock: Clock, titles: dict[str, tuple[bool, bool]]) -> World:
    world = World.generate(seed=6, tickets=400, now=clock.t, clock=clock)
    for title, (active, awaiting) in titles.items():
        world.add_status(title, active, awaiting)
    live = world.live_tickets()
    for i, title in enumerate(titles):
        for t in live[i * 15:(i + 1) * 15 - i]:  # different counts per title: 15, 14, 13...
            t.status = title
    world.add_ticket(status="Open", at=clock.t)
    return world


ONE_CALL = {"GetTicketCounts": 1}
TWO_CALLS = {"GetTicketCounts": 1, "GetSupportStatuses": 1}


def test_the_default_world_costs_one_call_per_poll_and_one_check_an_hour():
    clock = Clock(NOW)
    world = World.generate(seed=1, tickets=300, now=clock.t, clock=clock)
    assert len({status_key(s.title) for s in world.statuses}) == len(world.statuses)  # nothing collides
    polls = counts_polls(world, clock, polls=3)
    clock.t = NOW + RECHECK_TITLES
    polls += counts_polls(world, clock, polls=2)
    assert [calls for _, calls in polls] == [ONE_CALL] * 3 + [ONE_CALL] * 2  # a new collector: its own hour
    collector = CountsCollector()
    clock.t = NOW
    polls = counts_polls(world, clock, polls=1, collector=collector)
    clock.t = NOW + RECHECK_TITLES
    polls += counts_polls(world, clock, polls=3, collector=collector)
    assert [calls for _, calls in polls] == [ONE_CALL, TWO_CALLS, ONE_CALL, ONE_CALL]
    truth = world.truth(clock.t)["status_counts"]
    assert all(counts == truth for counts, _ in polls)


def test_non_ascii_titles_on_one_key_each_get_their_own_exact_series(caplog: pytest.LogCaptureFixture):
    clock = Clock(NOW)
    titles = {"Ожидание": (True, True), "В работе": (True, False), "待处理": (True, True)}
    world = with_statuses(clock, titles)
    assert {status_key(t) for t in titles} == {""}  # all three share the empty key: the map shows one
    with caplog.at_level(logging.WARNING):
        polls = counts_polls(world, clock, polls=3)
    truth = world.truth(clock.t)["status_counts"]
    assert [calls for _, calls in polls] == [TWO_CALLS] * 3  # GetSupportStatuses once per poll, no more
    for counts, _ in polls:
        assert counts == truth and "" not in counts
        assert [counts[t] for t in titles] == [15, 14, 13]
    assert sum("collide" in r.getMessage() for r in caplog.records) == 1  # told once, not every poll
    # Renamed apart: the next check sees no collision, and from then on the map alone is used again.
    renamed = {"В работе": "В работе 2", "待处理": "待处理 3"}
    for status in world.statuses:
        status.title = renamed.get(status.title, status.title)
    for t in world.live_tickets():
        t.status = renamed.get(t.status, t.status)
    world.add_ticket(status="Open", at=clock.t)
    polls = counts_polls(world, clock, polls=3)
    assert [calls for _, calls in polls] == [TWO_CALLS, ONE_CALL, ONE_CALL]
    truth = world.truth(clock.t)["status_counts"]
    assert polls[-1][0] == truth


def test_a_lone_non_ascii_title_is_checked_once():
    clock = Clock(NOW)
    world = with_statuses(clock, {"Ожидание": (True, True)})
    polls = counts_polls(world, clock, polls=4)
    assert [calls for _, calls in polls] == [TWO_CALLS] + [ONE_CALL] * 3
    assert all(counts == world.truth(clock.t)["status_counts"] for counts, _ in polls)


def test_a_collision_hidden_in_a_non_empty_key_is_found_within_the_hour():
    clock = Clock(NOW)
    titles = {"Ждём 1": (True, True), "Этап 1": (True, False)}
    world = with_statuses(clock, titles)
    assert {status_key(t) for t in titles} == {"1"} and whmcs_key("Этап 1") == "1"
    polls = counts_polls(world, clock, polls=2)
    # The map shows "Этап 1" alone on key "1", which looks like any other entry: one call, one status absent
    # (absent, not wrong: the counts shown are exact).
    truth = world.truth(clock.t)["status_counts"]
    assert [calls for _, calls in polls] == [ONE_CALL] * 2
    assert polls[0][0] == {t: n for t, n in truth.items() if t != "Ждём 1"}
    clock.t = NOW + RECHECK_TITLES
    collector = CountsCollector()
    counts_polls(world, Clock(NOW), polls=1, collector=collector)
    polls = counts_polls(world, clock, polls=2, collector=collector)
    assert [calls for _, calls in polls] == [TWO_CALLS] * 2
    assert all(counts == truth for counts, _ in polls)


def test_a_changed_status_map_is_checked_again():
    clock = Clock(NOW)
    world = with_statuses(clock, {"Ожидание": (True, True)})
    collector = CountsCollector()
    assert [c for _, c in counts_polls(world, clock, 2, collector=collector)] == [TWO_CALLS, ONE_CALL]
    world.add_status("Готово", False, False)  # sorts after "Ожидание": it takes the empty key
    world.add_ticket(status="Готово", at=clock.t)
    polls = counts_polls(world, clock, 2, collector=collector)
    assert [c for _, c in polls] == [TWO_CALLS, TWO_CALLS]
    assert polls[-1][0] == world.truth(clock.t)["status_counts"]


def test_a_role_without_get_support_statuses_keeps_the_map_and_waits_an_hour(caplog: pytest.LogCaptureFixture):
    clock = Clock(NOW)
    world = with_statuses(clock, {"Ожидание": (True, True), "В работе": (True, False)})
    collector = CountsCollector()
    client, inst = MemoryClient(world), installation()

    def deny(action: str, params: dict[str, str], n: int) -> None:
        if action == "GetSupportStatuses":
            raise PermissionDenied(action, 'Invalid Permissions: API action "getsupportstatuses" is not allowed',
                                   status=403)
    client.before = deny
    seen = []
    for step in (0, 60, 120, RECHECK_TITLES):
        client.calls.clear()
        part = collector.poll(PollContext(client=client, now=NOW + step, installation=inst))
        seen.append(dict(client.calls))
    assert seen == [TWO_CALLS, ONE_CALL, ONE_CALL, TWO_CALLS]
    truth = world.truth(clock.t)["status_counts"]
    # The surviving status's count is exact; the hidden one is absent, not guessed.
    assert dict(part.by_status) == {t: n for t, n in truth.items() if t != "Ожидание"}
    assert "could not check status titles" in caplog.text


def test_the_escaping_switch_over_http():
    clock = Clock(NOW)
    world = World.generate(seed=2, tickets=50, now=clock.t, clock=clock, departments=["Sales & Billing"])
    with Simulator(world=world) as sim:
        answer = sim.control("POST", "/_sim/world", {}, "", {"escape_names": 2,
                                                              "escape_actions": ["GetSupportDepartments"]})[1]
        assert answer["escape_names"] == 2 and answer["escape_actions"] == ["GetSupportDepartments"]
        form = {"action": "GetSupportDepartments", "identifier": sim.identifier, "secret": sim.secret,
                "responsetype": "json"}
        departments = requests.post(f"{sim.url}/includes/api.php", data=form, timeout=5).json()
        tickets = requests.post(f"{sim.url}/includes/api.php", data={**form, "action": "GetTickets"},
                                timeout=5).json()
    assert departments["departments"]["department"][0]["name"] == "Sales &amp;amp; Billing"
    assert {t["deptname"] for t in tickets["tickets"]["ticket"]} == {"Sales & Billing"}  # not in escape_actions
