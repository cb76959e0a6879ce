"""Flagged tickets per staff member: exact against the simulator's flags, bounded, names at most hourly."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from exporter.collectors.base import PollContext
from exporter.collectors.priorities import PrioritiesCollector
from exporter.collectors.registry import build_collectors
from exporter.collectors.staff import StaffCollector
from exporter.collectors.staff_names import parse_admin_users, unique_names
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.errors import ShapeError
from exporter.simulator import Simulator, World
from exporter.simulator.staff import DELETED_ADMIN, flagged_truth
from testkit.exposition import exposition, promtool_check
from testkit.in_process import Clock, MemoryClient

NOW = 1_700_000_000.0
HOUR = 3600.0


def inst(**overrides: Any) -> InstallationConfig:
    values: dict[str, Any] = {"name": "desk", "url": "http://whmcs.test", "staff_metrics": True,
                              "auth": ApiCredentials(Secret("i"), Secret("s")), "timezone": "America/Chicago"}
    return InstallationConfig(**(values | overrides))


def active_tickets(world: World) -> list:
    """Active tickets in the list's order (lastreply DESC)."""
    return [t for t in world.sorted_tickets() if (s := world.status(t.status)) is not None and s.showactive]


def desk(tickets: int = 400) -> World:
    world = World.generate(seed=11, tickets=tickets, now=NOW, clock=Clock(NOW))
    active = active_tickets(world)
    # Flags beyond the generated ones: a deleted admin, a disabled one, the staff with escaped names.
    for ticket, admin in zip(active[:12], (DELETED_ADMIN, DELETED_ADMIN, 6, 4, 4, 4, 5, 5, 2, 2, 2, 2)):
        world.set_flag(ticket.id, admin)
    world.escape_names = 1  # "O'Brien" -> "O&#039;Brien", "& Co" -> "&amp; Co": decoded once
    return world


def expected(world: World) -> dict[str, int]:
    """The truth as labels: the admin's display name, "#<id>" for an id GetAdminUsers does not list, and
    every enabled staff member at 0."""
    truth = flagged_truth(world)
    out = {(world.admins[i] if i in world.admins else f"#{i}"): n for i, n in truth.items()}
    for ident, name in world.admins.items():
        if ident not in world.disabled_admins:
            out.setdefault(name, 0)
    return out


def poll(collector: StaffCollector, client: Any, now: float, **overrides: Any):
    return collector.poll(PollContext(client=client, now=now, installation=inst(**overrides)))


def test_flagged_per_staff_member_matches_the_simulator_exactly():
    world = desk()
    client = MemoryClient(world)
    part = poll(StaffCollector("desk", 50), client, NOW)
    want = expected(world)
    assert dict(part.flagged) == want
    assert want[f"#{DELETED_ADMIN}"] == 2 and want["Marta Nowak"] == 1 and want["Seán O'Brien"] == 3
    assert want["Zoë van der Berg & Co"] == 2 and part.sample_ratio == 1.0
    assert dict(client.calls) == {"GetTickets": 1, "GetAdminUsers": 1}


def test_beyond_max_staff_the_busiest_keep_their_name_and_the_rest_is_summed_under_other():
    world = desk()
    part = poll(StaffCollector("desk", 3), MemoryClient(world), NOW)
    truth = flagged_truth(world)
    # The busiest first; equal counts: the lowest admin id first (so the cut does not flap between polls).
    ranked = sorted(truth, key=lambda i: (-truth[i], i))
    assert truth[ranked[2]] == truth[ranked[3]]  # this desk has a tie right at the cut
    kept = {world.admins[i]: truth[i] for i in ranked[:3]}
    assert dict(part.flagged) == kept | {"other": sum(truth.values()) - sum(kept.values())}


def test_the_priorities_collectors_page_serves_it_without_a_call_of_its_own():
    world = desk()
    client = MemoryClient(world)
    ctx = PollContext(client=client, now=NOW, installation=inst())
    priorities = PrioritiesCollector().poll(ctx)
    part = StaffCollector("desk", 50).poll(ctx)
    assert client.calls["GetTickets"] == 1 and dict(part.flagged) == expected(world)
    assert part.sample_ratio == priorities.sample_ratio == 1.0


def test_a_sample_beyond_sample_limit_counts_the_most_recently_replied_and_says_so():
    world = desk()
    active = active_tickets(world)
    part = poll(StaffCollector("desk", 50), MemoryClient(world), NOW, sample_limit=40)
    sampled: dict[str, int] = {}
    for t in active[:40]:
        if t.flag:
            label = world.admins.get(t.flag, f"#{t.flag}")
            sampled[label] = sampled.get(label, 0) + 1
    assert {k: v for k, v in part.flagged if v} == sampled
    assert part.sample_ratio == 40 / len(active)


def test_names_are_asked_at_most_hourly_and_a_new_admin_reads_as_id_until_then():
    world = desk()
    client = MemoryClient(world)
    collector = StaffCollector("desk", 50)
    poll(collector, client, NOW)
    world.admins[7] = "Nina Kowalski"
    world.set_flag(active_tickets(world)[20].id, 7)
    for minutes in (1, 15, 30, 59):
        part = poll(collector, client, NOW + minutes * 60)
        assert dict(part.flagged)["#7"] == 1 and "Nina Kowalski" not in dict(part.flagged)
    assert client.calls["GetAdminUsers"] == 1
    part = poll(collector, client, NOW + HOUR)
    assert dict(part.flagged)["Nina Kowalski"] == 1 and "#7" not in dict(part.flagged)
    assert client.calls["GetAdminUsers"] == 2 and dict(part.flagged) == expected(world)


def test_a_desk_without_flags_never_asks_for_names():
    world = World.generate(seed=3, tickets=100, now=NOW, clock=Clock(NOW))
    for t in world.tickets.values():
        t.flag = 0
    client = MemoryClient(world)
    part = poll(StaffCollector("desk", 50), client, NOW)
    assert part.flagged == () and dict(client.calls) == {"GetTickets": 1}


def test_get_admin_users_denied_keeps_exporting_by_id_tells_once_and_asks_hourly(caplog):
    world = desk()
    world.admin_users_denied = True
    client = MemoryClient(world)
    collector = StaffCollector("desk", 50)
    with caplog.at_level(logging.WARNING, logger="exporter.collectors.staff_names"):
        parts = [poll(collector, client, NOW + minutes * 60) for minutes in (0, 10, 50, 60, 70, 120)]
    truth = flagged_truth(world)
    assert all(dict(p.flagged) == {f"#{i}": n for i, n in truth.items()} for p in parts)
    assert client.calls["GetAdminUsers"] == 3  # at 0, 60 and 120 minutes
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 1 and "allow GetAdminUsers in the API role" in told[0] and "\n" not in told[0]
    world.admin_users_denied = False
    assert dict(poll(collector, client, NOW + 3 * HOUR).flagged) == expected(world)


def test_registered_only_with_staff_metrics():
    assert "staff" in [c.name for c in build_collectors(inst())]
    assert "staff" not in [c.name for c in build_collectors(inst(staff_metrics=False))]


def test_reading_admin_users_shapes():
    answer = {"result": "success", "count": "3", "admin_users": [
        {"id": "3", "firstname": "Ann", "lastname": "Lee", "isDisabled": "0"},
        {"id": 5, "firstname": "Ann", "lastname": "Lee", "isDisabled": True},
        {"id": 8, "firstname": "", "lastname": "", "isDisabled": False},
        {"id": 9, "firstname": "other", "lastname": ""}]}
    staff = parse_admin_users(answer)
    assert [(m.id, m.name, m.disabled) for m in staff] == [
        (3, "Ann Lee", False), (5, "Ann Lee", True), (8, "", False), (9, "other", False)]
    assert unique_names(staff) == {3: "Ann Lee", 5: "Ann Lee (#5)", 8: "#8", 9: "other (#9)"}
    assert parse_admin_users({"result": "success", "count": 0}) == ()
    assert [m.id for m in parse_admin_users({"admin_users": {"admin_user": {"id": "2"}}})] == [2]
    with pytest.raises(ShapeError):
        parse_admin_users({"admin_users": [{"id": "x"}]})


@pytest.mark.process
def test_over_http_with_the_role_lacking_get_admin_users_and_promtool_reads_it():
    world = desk()
    with Simulator(world=world) as sim:
        from exporter.client import WhmcsClient

        i = inst(url=sim.url, auth=ApiCredentials(Secret("sim-identifier"), Secret("sim-secret")))
        collector = StaffCollector("desk", 50)
        named = collector.poll(PollContext(client=WhmcsClient(i), now=NOW, installation=i))
        sim.deny_actions(["GetAdminUsers"])
        denied = StaffCollector("desk", 50).poll(PollContext(client=WhmcsClient(i), now=NOW, installation=i))
    assert dict(named.flagged) == expected(world)
    assert dict(denied.flagged) == {f"#{i}": n for i, n in flagged_truth(world).items()}
    promtool_check(exposition(named))


# ---- the simulator's side: GetAdminUsers as whmcs-api.md describes it, flags that move in live mode ----------

def test_simulated_get_admin_users_shape_disabled_staff_and_the_permission_switch():
    from exporter.simulator.api import handle

    world = desk()
    status, body = handle(world, "getadminusers", {})
    assert status == 200 and body["result"] == "success" and body["count"] == len(body["admin_users"])
    assert [u["id"] for u in body["admin_users"]] == sorted(i for i in world.admins if i not in world.disabled_admins)
    user = body["admin_users"][0]
    assert {"id", "username", "firstname", "lastname", "email", "isDisabled", "supportDepartmentIds"} <= user.keys()
    assert user["supportDepartmentIds"] == ",".join(str(d.id) for d in world.departments)
    _, everyone = handle(world, "GetAdminUsers", {"include_disabled": "1"})
    assert [u["id"] for u in everyone["admin_users"]] == sorted(world.admins)
    assert [u["isDisabled"] for u in everyone["admin_users"] if u["id"] in world.disabled_admins] == [True]
    world.version = "7.10"
    assert all(isinstance(u["id"], str) for u in handle(world, "GetAdminUsers", {})[1]["admin_users"])
    world.admin_users_denied = True
    assert handle(world, "GetAdminUsers", {}) == (
        403, {"result": "error", "message": 'Invalid Permissions: API action "getadminusers" is not allowed'})


def test_live_desk_moves_flags_and_the_collector_follows_exactly():
    import random

    world = desk()
    world.clock = clock = Clock(NOW)
    client = MemoryClient(world)
    collector = StaffCollector("desk", 50)
    rng = random.Random(4)
    seen = []
    for step in range(60):
        clock.t = NOW + step * 30
        world.step(rng, max_tickets=500)
        part = poll(collector, client, clock.t)
        assert dict(part.flagged) == expected(world), step
        seen.append(flagged_truth(world))
    assert len({tuple(sorted(s.items())) for s in seen}) > 10  # the flags really moved
    assert client.calls["GetAdminUsers"] == 1  # half an hour of polls: names asked once
