"""The first-response collector: pure reply parsing, the cache and its call costs, and exactness against the simulator.

Cost tests call the simulator's API functions in-process through the real `classify()`, so they count
calls without HTTP; the week-of-traffic test goes over HTTP with the real `WhmcsClient`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import subprocess
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from exporter.client import WhmcsClient
from exporter.collectors.base import PollContext
from exporter.collectors.first_response import FirstResponseCollector, FirstResponsePart
from exporter.collectors.ticket_lists import Page, TicketRow, next_start
from exporter.collectors.ticket_replies import first_staff_reply, parse_ticket_replies, summarise
from exporter.collectors.window_listing import FULL_PASS_INTERVAL, MAX_LIST_PAGES_PER_POLL, PAGE_SIZE, Tracked
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.errors import ConnectionFailed, WhmcsError
from exporter.families import FamilySink
from exporter.simulator import Simulator, World
from testkit.in_process import Clock as SetClock
from testkit.in_process import MemoryClient

NOW = 1_700_000_000  # 2023-11-14: no DST change within a week either side in Chicago
ZONE_NAME = "America/Chicago"
ZONE = ZoneInfo(ZONE_NAME)
DAY = 86400.0


def local(epoch: float, zone: ZoneInfo = ZONE) -> str:
    return dt.datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M:%S")


def reply(replyid: Any, when: float, admin: Any = "") -> dict[str, Any]:
    return {"replyid": replyid, "date": local(when), "admin": admin, "message": "..."}


# ---- pure: reading GetTicket ------------------------------------------------------------------------

def answer(replies: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"result": "success", "ticketid": "7", "tid": "123456", "date": local(NOW), "lastreply": local(NOW),
            "replies": {"reply": replies}, **extra}


def test_staff_opened_ticket_is_not_a_response():
    got = parse_ticket_replies(answer([reply("0", NOW, "Alice"), reply("1", NOW + 60), reply("2", NOW + 600, "Bob")]),
                               ZONE)
    assert got.first_staff_reply == NOW + 600
    only_opening = parse_ticket_replies(answer([reply("0", NOW, "Alice"), reply("1", NOW + 60)]), ZONE)
    assert only_opening.first_staff_reply is None


def test_notes_are_never_responses():
    got = parse_ticket_replies(answer([reply("0", NOW), reply("1", NOW + 60)],
                                      notes={"note": [{"noteid": "1", "date": local(NOW + 30),
                                                       "message": "internal", "admin": "Alice"}]}), ZONE)
    assert got.first_staff_reply is None
    # A gateway that mixed notes into replies still does not turn them into responses.
    mixed = parse_ticket_replies(answer([reply("0", NOW), {"noteid": "1", "date": local(NOW + 30), "admin": "A"},
                                         reply("1", NOW + 90, "Bob")]), ZONE)
    assert mixed.first_staff_reply == NOW + 90


def test_descending_and_shuffled_replies_are_sorted():
    replies = [reply("3", NOW + 900, "Bob"), reply("2", NOW + 300, "Alice"), reply("1", NOW + 100), reply("0", NOW)]
    assert parse_ticket_replies(answer(replies), ZONE).first_staff_reply == NOW + 300
    random.Random(4).shuffle(replies)
    assert parse_ticket_replies(answer(replies), ZONE).first_staff_reply == NOW + 300


def test_same_second_replies_use_replyid():
    replies = [reply(2, NOW + 5, "Bob"), reply(1, NOW + 5), reply(0, NOW + 5)]
    assert parse_ticket_replies(answer(replies), ZONE).first_staff_reply == NOW + 5
    assert first_staff_reply([]) is None


def test_no_staff_reply_and_blank_admin():
    got = parse_ticket_replies(answer([reply("0", NOW), reply("1", NOW + 60, "  "), reply("2", NOW + 70, None)]),
                               ZONE)
    assert got.first_staff_reply is None


def test_ints_strings_and_ticketnum():
    raw = {"result": "success", "ticketid": 42, "ticketnum": 654321, "date": local(NOW),
           "lastreply": local(NOW + 100), "replies": {"reply": [reply(0, NOW), reply(1, NOW + 100, "Alice")]}}
    got = parse_ticket_replies(raw, ZONE)
    assert (got.id, got.tid, got.opened, got.lastreply, got.first_staff_reply) == \
        (42, "654321", NOW, NOW + 100, NOW + 100)
    # A single reply object instead of a list (XML converters) and a missing replyid.
    single = parse_ticket_replies({"ticketid": "9", "replies": {"reply": {"date": local(NOW), "admin": ""}}}, ZONE)
    assert single.first_staff_reply is None and single.opened is None


def test_unreadable_answers_raise_value_error():
    with pytest.raises(ValueError):
        parse_ticket_replies(answer([{"replyid": "0", "date": "yesterday"}]), ZONE)
    with pytest.raises(ValueError):
        parse_ticket_replies({"ticketid": "x"}, ZONE)


def test_local_time_in_a_non_utc_zone():
    kolkata = ZoneInfo("Asia/Kolkata")
    raw = {"ticketid": "1", "date": local(NOW, kolkata),
           "replies": {"reply": [reply(0, NOW) | {"date": local(NOW, kolkata)},
                                 reply(1, NOW) | {"date": local(NOW + 1800, kolkata), "admin": "A"}]}}
    got = parse_ticket_replies(raw, kolkata)
    assert got.first_staff_reply - got.opened == 1800 and got.opened == NOW


def test_summarise_cumulative_buckets_and_coverage():
    s = summarise([(0, True, 100), (0, True, 5000), (10, True, None), (50, True, None), (0, False, None)],
                  now=1000, bounds=(900, 3600))
    assert s.buckets == ((900, 1), (3600, 1), (math.inf, 2))
    assert (s.total_seconds, s.without_staff_reply, s.oldest_without_staff_reply_age, s.coverage) == \
        (5100, 2, 990, 0.8)
    empty = summarise([], now=1000, bounds=(900,))
    assert empty.coverage == 1.0 and empty.oldest_without_staff_reply_age == 0 and empty.buckets[-1][1] == 0


def test_next_start_rereads_the_last_tie_run():
    def row(i: int, last: float) -> TicketRow:
        return TicketRow(i, str(i), 1, "Open", "Low", last, last)
    page = Page(total=100, start=10, tickets=tuple(row(i, t) for i, t in enumerate([9, 8, 7, 5, 5, 5])))
    assert next_start(page, overlap=0) == 13  # the run of three 5s starts at position 13
    assert next_start(page, overlap=2) == 11
    ties = Page(total=100, start=0, tickets=tuple(row(i, 5) for i in range(4)))
    assert next_start(ties, overlap=2) == 1  # never stalls


# ---- the collector against an in-memory WHMCS ------------------------------------------------------------

class Clock(SetClock):
    """The testkit clock, starting at NOW unless told otherwise."""

    def __init__(self, t: float = NOW) -> None:
        super().__init__(t)


def installation(**kw: Any) -> InstallationConfig:
    return InstallationConfig(name="desk", url="http://whmcs.example", auth=ApiCredentials(Secret("i"), Secret("s")),
                              timezone=ZONE_NAME, **kw)


def poll(collector: FirstResponseCollector, client: Any, inst: InstallationConfig, now: float) -> FirstResponsePart:
    return collector.poll(PollContext(client=client, now=now, installation=inst))


def assert_truth(part: FirstResponsePart, world: World, inst: InstallationConfig, now: float) -> None:
    assert part.coverage == 1.0
    truth = world.truth(now, buckets=inst.buckets, response_window=inst.response_window)["first_response"]
    assert [c for _, c in part.buckets[:-1]] == [truth["buckets"][b] for b in inst.buckets]
    assert part.buckets[-1] == (math.inf, truth["count"])
    assert part.total_seconds == truth["sum"]
    assert part.without_staff_reply == truth["without_staff_reply"]
    assert part.oldest_without_staff_reply_age == truth["oldest_without_staff_reply_age"]


def desk(clock: Clock, tickets: int = 600, seed: int = 3) -> World:
    return World.generate(seed=seed, tickets=tickets, now=clock.t, tz=ZONE_NAME, clock=clock)


def warm(collector: FirstResponseCollector, client: MemoryClient, inst: InstallationConfig, clock: Clock,
         limit: int = 50) -> FirstResponsePart:
    for _ in range(limit):
        part = poll(collector, client, inst, clock.t)
        if part.coverage == 1.0:
            return part
        clock.t += 60
    raise AssertionError("coverage never reached 1")


def test_first_poll_pages_the_window_head_only_then_one_page_per_poll():
    clock = Clock()
    world = desk(clock, tickets=1500)
    client, inst = MemoryClient(world), installation()
    collector = FirstResponseCollector(inst)
    part = poll(collector, client, inst, clock.t)
    head = sum(1 for t in world.live_tickets() if t.lastreply >= clock.t - inst.response_window)
    assert client.calls["GetTickets"] == math.ceil(head / PAGE_SIZE)  # not the 1500-ticket list
    assert client.calls["GetTicket"] == 50 and 0 < part.coverage < 1
    part = warm(collector, client, inst, clock)
    assert_truth(part, world, inst, clock.t)
    client.calls.clear()
    clock.t += 60
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert client.calls == Counter({"GetTickets": 1})  # nothing moved: one page, no GetTicket


def test_budget_limits_get_ticket_calls_oldest_first():
    clock = Clock()
    world = desk(clock)
    client, inst = MemoryClient(world), installation(max_ticket_fetches_per_poll=10)
    collector = FirstResponseCollector(inst)
    fetched: list[float] = []
    client.before = lambda a, p, n: fetched.append(world.tickets[int(p["ticketid"])].date) if a == "GetTicket" \
        else None
    coverage = []
    for _ in range(40):
        client.calls.clear()
        part = poll(collector, client, inst, clock.t)
        assert client.calls["GetTicket"] <= 10
        coverage.append(part.coverage)
        if part.coverage == 1.0:
            break
    assert coverage == sorted(coverage) and coverage[-1] == 1.0 and len(coverage) > 3
    assert fetched[:10] == sorted(fetched[:10]) and fetched[9] <= min(fetched[10:20])
    assert_truth(part, world, inst, clock.t)


def test_cache_refetches_only_unanswered_tickets_whose_lastreply_moved():
    clock = Clock()
    world = desk(clock, tickets=300)
    client, inst = MemoryClient(world, ticketnum=True), installation()
    collector = FirstResponseCollector(inst)
    warm(collector, client, inst, clock)
    answered = next(i for i, t in collector.tickets.items() if t.first_staff_reply is not None)
    clock.t += 300
    fresh = world.add_ticket(subject="new", at=clock.t)  # lastreply == date: known without a call
    world.customer_reply(answered, at=clock.t)  # its first response is cached: no call
    client.calls.clear()
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert client.calls == Counter({"GetTickets": 1})
    clock.t += 300
    world.customer_reply(fresh.id, at=clock.t)  # still unanswered and it moved: one call
    client.calls.clear()
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert client.calls["GetTicket"] == 1
    clock.t += 300
    world.staff_reply(fresh.id, at=clock.t)
    client.calls.clear()
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert client.calls["GetTicket"] == 1 and collector.tickets[fresh.id].first_staff_reply == clock.t
    clock.t += 300
    world.customer_reply(fresh.id, at=clock.t)
    client.calls.clear()
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert client.calls["GetTicket"] == 0


def test_staff_opened_ticket_waits_for_a_real_response():
    clock = Clock()
    world = World(seed=1, tz=ZONE_NAME, clock=clock)
    client, inst = MemoryClient(world), installation()
    collector = FirstResponseCollector(inst)
    t = world.add_ticket(admin="Alice", at=clock.t - 3600)
    world.customer_reply(t.id, at=clock.t - 1800)
    world.add_note(t.id, "called the customer", at=clock.t - 1700)
    part = poll(collector, client, inst, clock.t)
    assert (part.without_staff_reply, part.oldest_without_staff_reply_age, part.buckets[-1][1]) == (1, 3600, 0)
    world.staff_reply(t.id, at=clock.t + 60)
    part = poll(collector, client, inst, clock.t + 120)
    assert part.without_staff_reply == 0 and part.total_seconds == 3660


def test_ticket_gone_between_calls_is_dropped_not_an_error():
    clock = Clock()
    world = World(seed=1, tz=ZONE_NAME, clock=clock)
    client, inst = MemoryClient(world), installation()
    collector = FirstResponseCollector(inst)
    a, b = world.add_ticket(at=clock.t - 900), world.add_ticket(at=clock.t - 800)
    for t in (a, b):
        world.customer_reply(t.id, at=clock.t - 100)

    def merge_a(action: str, params: dict[str, str], n: int) -> None:
        if action == "GetTicket" and n == 1:
            world.merge(a.id, b.id)
    client.before = merge_a
    part = poll(collector, client, inst, clock.t)
    assert set(collector.tickets) == {b.id} and part.coverage == 1.0 and part.without_staff_reply == 1
    assert_truth(part, world, inst, clock.t)


def test_failure_mid_poll_keeps_what_completed():
    clock = Clock()
    world = desk(clock, tickets=300)
    client, inst = MemoryClient(world), installation()
    collector = FirstResponseCollector(inst)

    def fail_third(action: str, params: dict[str, str], n: int) -> None:
        if action == "GetTicket" and n == 3:
            raise ConnectionFailed("GetTicket", "connection reset")
    client.before = fail_third
    with pytest.raises(WhmcsError):
        poll(collector, client, inst, clock.t)
    assert sum(1 for t in collector.tickets.values() if t.read_at is not None and t.first_staff_reply is not None) >= 1
    assert sum(1 for t in collector.tickets.values() if not t.needs_fetch) >= 2  # two answers were kept
    client.before = None
    clock.t += 60
    assert_truth(warm(collector, client, inst, clock), world, inst, clock.t)
    # A head scan that fails on its first page changes nothing at all.
    before = dict(collector.tickets)
    client.before = lambda a, p, n: (_ for _ in ()).throw(ConnectionFailed(a, "down"))
    with pytest.raises(WhmcsError):
        poll(collector, client, inst, clock.t + 60)
    assert collector.tickets == before


def test_tickets_leaving_the_window_are_evicted():
    clock = Clock()
    world = desk(clock, tickets=300)
    client, inst = MemoryClient(world), installation(response_window=2 * DAY)
    collector = FirstResponseCollector(inst)
    warm(collector, client, inst, clock)
    in_window = {t.id for t in world.live_tickets() if t.date >= clock.t - 2 * DAY}
    assert set(collector.tickets) == in_window
    clock.t += DAY
    part = poll(collector, client, inst, clock.t)
    assert set(collector.tickets) == {t.id for t in world.live_tickets() if t.date >= clock.t - 2 * DAY}
    assert len(collector.tickets) < len(in_window)
    assert_truth(part, world, inst, clock.t)
    clock.t += 3 * DAY
    part = poll(collector, client, inst, clock.t)
    assert collector.tickets == {} and part.coverage == 1.0 and part.without_staff_reply == 0


def test_merge_and_delete_are_noticed_by_totalresults_or_the_full_pass():
    clock = Clock()
    world = desk(clock, tickets=600)
    client, inst = MemoryClient(world), installation()
    collector = FirstResponseCollector(inst, full_pass_interval=6 * 3600)
    warm(collector, client, inst, clock)
    # Tickets that stay in the window for the test's 6 hours and lie below the incremental first page.
    deep = sorted((t.lastreply for t in world.live_tickets()), reverse=True)[150]
    victims = [i for i, t in collector.tickets.items() if t.opened > clock.t - 5 * DAY and t.lastreply < deep]
    clock.t += 60
    world.merge(victims[0], victims[1])  # totalresults drops by one: a full pass at once
    client.calls.clear()
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert victims[0] not in collector.tickets and client.calls["GetTickets"] > 1
    # A new ticket with its new id is expected, so a deletion hidden by it still shows in totalresults.
    clock.t += 60
    world.delete(victims[1])
    world.add_ticket(at=clock.t)
    client.calls.clear()
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert victims[1] not in collector.tickets and client.calls["GetTickets"] > 1
    # A deletion offset by an old ticket coming back (un-merged) leaves totalresults alone: the timed
    # full pass finds both.
    clock.t += 60
    gone = victims[2]
    world.delete(gone)
    world.tickets[victims[0]].merged_into = None
    world._bump()
    client.calls.clear()
    poll(collector, client, inst, clock.t)
    assert gone in collector.tickets and victims[0] not in collector.tickets and client.calls["GetTickets"] == 1
    clock.t += 6 * 3600
    client.calls.clear()
    assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert gone not in collector.tickets and victims[0] in collector.tickets and client.calls["GetTickets"] > 1


# ---- the page budget: a full pass over several polls ------------------------------------------------

def true_share(collector: FirstResponseCollector, world: World, inst: InstallationConfig, now: float) -> float:
    """The real share of the window's tickets whose replies the collector knows."""
    window = sum(1 for t in world.live_tickets() if t.date >= now - inst.response_window)
    return sum(1 for t in collector.tickets.values() if t.known) / window if window else 1.0


def test_first_poll_at_a_large_desk_reads_a_bounded_number_of_pages():
    clock = Clock()
    world = desk(clock, tickets=4000)
    client, inst = MemoryClient(world), installation()
    head = sum(1 for t in world.live_tickets() if t.lastreply >= clock.t - inst.response_window)
    assert head > MAX_LIST_PAGES_PER_POLL * PAGE_SIZE  # the window head does not fit one poll's pages
    collector = FirstResponseCollector(inst)
    for i in range(3):
        client.calls.clear()
        part = poll(collector, client, inst, clock.t)
        assert client.calls["GetTickets"] <= MAX_LIST_PAGES_PER_POLL and client.calls["GetTicket"] <= 50
        assert collector.listing_complete is (i > 0)  # ~13 pages: listed by the second poll
        # Honest while the window is not listed: below 1, and never above the real share.
        assert 0 < part.coverage < 1 and part.coverage <= true_share(collector, world, inst, clock.t)
        clock.t += 60
    with pytest.raises(ValueError):
        FirstResponseCollector(inst, max_list_pages=1)


def test_a_full_pass_spanning_several_polls_ends_exact():
    clock = Clock()
    world = desk(clock, tickets=4000)
    client, inst = MemoryClient(world), installation(max_ticket_fetches_per_poll=400)
    collector = FirstResponseCollector(inst, max_list_pages=3)
    listed_after = None
    for i in range(1, 60):
        client.calls.clear()
        part = poll(collector, client, inst, clock.t)
        assert client.calls["GetTickets"] <= 3
        assert part.coverage <= true_share(collector, world, inst, clock.t) + 1e-12
        if listed_after is None and collector.listing_complete:
            listed_after = i
        if not collector.listing_complete:
            assert part.coverage < 1
        if part.coverage == 1.0:
            break
        clock.t += 60
    assert listed_after is not None and listed_after >= 4  # the head (~12 pages) took several polls
    assert_truth(part, world, inst, clock.t)
    # The next timed pass runs over several polls again, each one head page + the pass's two.
    clock.t += FULL_PASS_INTERVAL
    passes = []
    for _ in range(10):
        client.calls.clear()
        part = poll(collector, client, inst, clock.t)
        assert part.coverage == 1.0 and client.calls["GetTickets"] <= 3 and client.calls["GetTicket"] == 0
        assert_truth(part, world, inst, clock.t)
        passes.append(collector.last_full_pass)
        clock.t += 60
    assert passes[:4] == [True] * 4 and passes[-1] is False


def test_traffic_during_a_multi_poll_full_pass_is_counted():
    clock = Clock()
    world = desk(clock, tickets=4000, seed=8)
    rng = random.Random(2)
    client, inst = MemoryClient(world), installation(max_ticket_fetches_per_poll=400)
    collector = FirstResponseCollector(inst, max_list_pages=3)
    arrived = []
    for i in range(5):  # the first full pass (~16 pages, 3 per poll) is still running throughout
        poll(collector, client, inst, clock.t)
        assert not collector.listing_complete
        clock.t += 60
        arrived.append(world.add_ticket(at=clock.t - 30).id)
        world.customer_reply(arrived[-1], at=clock.t - 20)  # needs a GetTicket
        traffic(world, rng, clock.t, 20)  # replies, closures, now and then a merge or a deletion
        if i == 2:
            deep = [t for t in world.live_tickets() if t.date >= clock.t - 3 * DAY and t.lastreply < clock.t - DAY]
            world.merge(deep[0].id, deep[1].id)
            world.delete(deep[2].id)
    part = warm(collector, client, inst, clock)
    assert_truth(part, world, inst, clock.t)
    assert all(i in collector.tickets for i in arrived if world.tickets[i].merged_into is None)


def test_a_burst_over_the_head_pages_relists_the_window():
    clock = Clock()
    world = desk(clock, tickets=2000)
    client, inst = MemoryClient(world), installation(max_ticket_fetches_per_poll=1000)
    collector = FirstResponseCollector(inst, max_list_pages=3)
    warm(collector, client, inst, clock)
    clock.t += 60
    # More changed tickets than the head scan's two pages hold (e.g. the first poll after an outage).
    for k, t in enumerate(sorted(world.live_tickets(), key=lambda t: -t.lastreply)[:700]):
        world.customer_reply(t.id, at=clock.t - 30 - k)
    client.calls.clear()
    part = poll(collector, client, inst, clock.t)
    assert client.calls["GetTickets"] == 3 and part.coverage < 1 and not collector.listing_complete
    clock.t += 60
    assert_truth(warm(collector, client, inst, clock), world, inst, clock.t)


def test_cached_state_is_compact():
    assert not hasattr(Tracked(opened=1.0, lastreply=1.0), "__dict__")
    assert not hasattr(TicketRow(1, "1", 1, "Open", "Low", 1.0, 1.0), "__dict__")


# ---- a week of traffic against the simulator over HTTP ----------------------------------------------

def traffic(world: World, rng: random.Random, now: float, events: int) -> None:
    """`events` desk events between two polls: arrivals, replies both ways, closures, rare merges/deletes."""
    for _ in range(events):
        live = [t for t in world.live_tickets() if t.status != "Closed"]
        roll = rng.random()
        at = now - rng.randint(0, 200)
        if roll < 0.3 or not live:
            world.add_ticket(deptid=rng.randint(1, 5), at=at, admin="Alice" if rng.random() < 0.05 else "")
        elif roll < 0.55:
            world.customer_reply(rng.choice(live).id, at=at)
        elif roll < 0.85:
            world.staff_reply(rng.choice(live).id, admin=rng.choice(("Alice", "Bob")), at=at)
        elif roll < 0.98:
            world.close(rng.choice(live).id)
        elif roll < 0.99:
            a, b = rng.sample(live, 2) if len(live) > 1 else (live[0], live[0])
            if a is not b:
                world.merge(a.id, b.id)
        else:
            world.delete(rng.choice(live).id)


def test_a_week_of_realistic_traffic_matches_the_truth():
    clock = Clock()
    world = desk(clock, tickets=600, seed=11)
    rng = random.Random(5)
    # A poll every 30 min (real polls are more frequent: the figures per poll then only shrink), 6 desk events
    # between polls, about 3.3 of them new replies; a timed full pass every 6 polls.
    interval, events = 1800.0, 6
    with Simulator(world=world) as sim:
        inst = dataclasses.replace(installation(), url=sim.url,
                                   auth=ApiCredentials(Secret(sim.identifier), Secret(sim.secret)))
        client = WhmcsClient(inst)
        collector = FirstResponseCollector(inst, full_pass_interval=3 * 3600)
        first: tuple[int, int] | None = None
        warm_after = 0
        incremental: list[tuple[int, int]] = []
        full: list[tuple[int, int]] = []
        matched = 0
        for i in range(int(7 * DAY / interval)):
            before = client.stats.totals()[0]
            part = poll(collector, client, inst, clock.t)
            after = client.stats.totals()[0]
            cost = (after.get("GetTickets", 0) - before.get("GetTickets", 0),
                    after.get("GetTicket", 0) - before.get("GetTicket", 0))
            assert cost[1] <= inst.max_ticket_fetches_per_poll
            if first is None:
                first = cost
            if part.coverage < 1.0:
                warm_after = i + 2
            elif i:
                (full if collector.last_full_pass else incremental).append(cost)
            if part.coverage == 1.0 and i % 12 == 0:
                assert_truth(part, world, inst, clock.t)
                matched += 1
            clock.t += interval
            traffic(world, rng, clock.t, events)
        assert_truth(poll(collector, client, inst, clock.t), world, inst, clock.t)
    assert matched >= 25 and first is not None

    def mean(costs: list[tuple[int, int]], k: int) -> float:
        return sum(c[k] for c in costs) / len(costs)
    print(f"\nfirst poll: {first[0]} GetTickets + {first[1]} GetTicket (window of {len(collector.tickets)} tickets), "
          f"coverage 1 from poll {warm_after}; "
          f"{events} events per poll: incremental polls ({len(incremental)}) {mean(incremental, 0):.2f} GetTickets + "
          f"{mean(incremental, 1):.2f} GetTicket, full-pass polls ({len(full)}) {mean(full, 0):.2f} GetTickets + "
          f"{mean(full, 1):.2f} GetTicket")
    assert mean(incremental, 0) == 1 and mean(incremental, 1) <= events / 2
    assert max(c[1] for c in incremental + full) < inst.max_ticket_fetches_per_poll


# ---- exposition ------------------------------------------------------------------------------------

@pytest.mark.process
def test_promtool_accepts_the_families(promtool):
    clock = Clock()
    world = desk(clock, tickets=300)
    client, inst = MemoryClient(world), installation()
    part = warm(FirstResponseCollector(inst), client, inst, clock)
    sink = FamilySink(max_series=1000)
    part.families(sink)

    class Families:
        def collect(self):  # noqa: ANN202 - prometheus_client's collector protocol
            return sink.families()

    registry = CollectorRegistry()
    registry.register(Families())
    text = generate_latest(registry)
    bucket = b'whmcs_ticket_first_response_seconds_bucket{department="Sales",le="+Inf",priority="High",whmcs="desk"}'
    assert bucket in text
    assert b"whmcs_exporter_response_coverage_ratio" not in text  # exported as the sample ratio instead
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
