"""The flow collector: tickets opened, replies by author, ratings and staff replies, exact against the simulator.

Pure tests read GetTicket answers; the rest run the real poller, collectors and renderer in-process on a fake
clock (testkit/slow_whmcs.py's pattern) against a scripted or live simulated desk, and compare every counter
with `flow_truth`, computed straight from the world's tickets.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from exporter.collectors.base import PollContext
from exporter.collectors.flow import FORGET_AFTER, FlowCollector
from exporter.collectors.pacing import Pace
from exporter.collectors.registry import DEFAULTS
from exporter.collectors.reply_events import EVERY_REPLY, Ledger, new_events, parse_reply_events
from exporter.config import InstallationConfig, parse
from exporter.errors import ConnectionFailed, PermissionDenied
from exporter.poller import InstallationPoller
from exporter.render import SnapshotRenderer
from exporter.simulator import World
from exporter.simulator.flow_traffic import flow_truth, rate
from exporter.snapshot import SnapshotStore
from exporter.state.store import StateStore
from testkit.bench_calls import DirectClient
from testkit.exporter_process import Samples
from testkit.in_process import MemoryClient
from testkit.slow_whmcs import FakeClock, SlowDesk

UTC = ZoneInfo("UTC")
T0 = 1_760_000_000.0
DEPARTMENTS = ["Sales", "Support", "Billing"]


def stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def reply(replyid: Any, when: float, admin: str = "", rating: Any = "0") -> dict[str, Any]:
    return {"replyid": replyid, "date": stamp(when), "admin": admin, "rating": rating, "message": "..."}


def answer(replies: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"result": "success", "ticketid": "7", "replies": {"reply": replies}, **extra}


# ---- pure: which replies and ratings are new --------------------------------------------------------------

def test_opening_message_and_notes_are_not_replies_and_admin_names_are_decoded_once():
    got = parse_reply_events(answer(
        [reply("0", T0, "Alice"), reply("1", T0 + 60), {"noteid": "3", "date": stamp(T0 + 90), "admin": "Bob"},
         reply("2", T0 + 120, "Zo&amp;amp;&#235; O&#039;Brien", "5")],
        notes={"note": [{"noteid": "1", "date": stamp(T0 + 30), "admin": "Alice", "message": "internal"}]}), UTC)
    assert [(r.key, r.staff, r.admin, r.rating) for r in got] == [("1", False, "", 0),
                                                                   ("2", True, "Zo&amp;ë O'Brien", 5)]


def test_without_reply_ids_the_key_is_date_and_author_and_the_earliest_entry_is_the_opening():
    rows = [{"date": stamp(T0 + 60), "admin": ""}, {"date": stamp(T0), "admin": ""},
            {"date": stamp(T0 + 60), "admin": "Bob"}]
    got = parse_reply_events(answer(rows), UTC)
    assert [r.key for r in got] == [f"{int(T0 + 60)}:customer", f"{int(T0 + 60)}:staff"]


def test_each_reply_and_rating_counts_once_across_reads_and_same_second_replies():
    first = parse_reply_events(answer([reply("0", T0), reply("1", T0 + 60, "Alice")]), UTC)
    one = new_events(Ledger(upto=T0, start=T0), first)
    assert [r.key for r in one.replies] == ["1"] and one.ratings == () and one.last_staff == T0 + 60
    # The customer wrote in the same second as Alice's reply, after the first read; then rated Alice's reply.
    second = parse_reply_events(answer([reply("0", T0), reply("1", T0 + 60, "Alice", "4"), reply("2", T0 + 60)]),
                                UTC)
    two = new_events(one.ledger, second)
    assert [r.key for r in two.replies] == ["2"] and [(r.key, r.rating) for r in two.ratings] == [("1", 4)]
    three = new_events(two.ledger, second)
    assert three.replies == () and three.ratings == ()


def test_ratings_of_replies_from_before_the_exporter_watched_are_history():
    replies = parse_reply_events(answer([reply("0", T0), reply("1", T0 + 60, "Alice", "2"),
                                         reply("2", T0 + 900), reply("3", T0 + 960, "Bob", "5")]), UTC)
    got = new_events(Ledger(upto=T0 + 600, start=T0 + 600), replies)
    assert [r.key for r in got.replies] == ["2", "3"]
    assert [(r.key, r.rating) for r in got.ratings] == [("3", 5)]
    assert new_events(got.ledger, replies).ratings == ()


def test_a_ledger_that_takes_a_whole_second_as_history_counts_none_of_its_replies():
    replies = parse_reply_events(answer([reply("0", T0), reply("1", T0 + 60, "Alice"), reply("2", T0 + 60),
                                         reply("3", T0 + 61)]), UTC)
    got = new_events(Ledger(upto=T0 + 60, at_upto=(EVERY_REPLY,), start=T0 + 60), replies)
    assert [r.key for r in got.replies] == ["3"]
    assert new_events(Ledger(upto=T0 + 60, start=T0 + 60), replies).replies == replies  # same second: new


# ---- in-process: the real poller on a fake clock ----------------------------------------------------------

class FlakyClient(DirectClient):
    """The simulator's API in-process; `fail(action, n)` returning True (a lost connection) or an error makes the
    n-th call of an action fail."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.fail = lambda action, n: False
        self.counts: dict[str, int] = {}

    def call(self, action: str, params: Any = None) -> dict[str, Any]:
        self.counts[action] = self.counts.get(action, 0) + 1
        failure = self.fail(action, self.counts[action])
        if failure:
            raise failure if isinstance(failure, Exception) else ConnectionFailed(action, "connection reset")
        return super().call(action, params)


def installation(**config: Any) -> InstallationConfig:
    raw = {"name": "desk", "url": "http://whmcs.example", "api_identifier": "i", "api_secret": "s",
           "poll_interval": "60s", "max_age": "1h", **config}
    return parse({"installations": [raw]}).installations[0]


class Desk:
    """A scripted desk, one poller (restartable, with a state store when given) and its scrapes."""

    def __init__(self, tickets: int = 30, state_dir: str | None = None, **config: Any) -> None:
        self.clock = FakeClock(T0)
        self.world = World.generate(seed=7, tickets=tickets, now=T0, tz="UTC", clock=self.clock,
                                    departments=DEPARTMENTS)
        self.installation = installation(**{"staff_metrics": True, **config})
        self.client = FlakyClient(self.world)
        self.state_dir = state_dir
        self.start()
        self.since = self.clock.t

    def start(self) -> None:
        self.state = StateStore.open(self.state_dir) if self.state_dir else None
        self.store = SnapshotStore()
        self.poller = InstallationPoller(self.installation, self.store, client=self.client,  # type: ignore[arg-type]
                                         clock=self.clock, state=self.state)
        self.registry = CollectorRegistry()
        self.registry.register(SnapshotRenderer(self.store, lambda name: 100_000, clock=self.clock))

    def restart(self) -> None:
        if self.state is not None:
            self.state.close()
        self.start()

    @property
    def flow(self) -> FlowCollector:
        return next(c for c in self.poller.collectors if isinstance(c, FlowCollector))

    def poll(self) -> Samples:
        self.poller.poll_once()
        return Samples.parse(generate_latest(self.registry).decode())

    def truth(self) -> dict[str, dict]:
        return flow_truth(self.world, self.since, self.clock.t)


def counters(samples: Samples) -> dict[str, dict]:
    """The flow counters of a scrape, keyed like flow_truth, zeros left out."""
    def pick(name: str, *keys: str) -> dict:
        out = {}
        for labels, value in samples.select(name, whmcs="desk").items():
            found = dict(labels)
            if value:
                key = tuple(found[k] for k in keys)
                out[key[0] if len(key) == 1 else key] = int(value)
        return out
    return {"opened": pick("whmcs_tickets_opened_total", "department"),
            "replies": pick("whmcs_ticket_replies_total", "department", "author"),
            "ratings": pick("whmcs_ticket_ratings_total", "department", "rating"),
            "staff": pick("whmcs_staff_replies_total", "admin")}


def settled(desk: Desk) -> Samples:
    """A poll once every late-rating look is due (ratings lag until then), after a quiet while."""
    desk.clock.advance(desk.installation.rating_delay + 60)
    return desk.poll()


def unrated(values: dict[str, dict]) -> dict[str, dict]:
    """The counters that do not wait for late-rating looks."""
    return {k: v for k, v in values.items() if k != "ratings"}


def pending(samples: Samples) -> float | None:
    return samples.get("whmcs_exporter_pending_ticket_fetches", whmcs="desk")


def test_a_scripted_hour_counts_exactly_what_happened_late_rating_included():
    desk = Desk(rating_delay="2h")
    w = desk.world
    old = next(t for t in w.live_tickets() if any(r.admin for r in w.replies(t)[1:]))
    history = next(r for r in w.replies(old)[1:] if r.admin)
    first = desk.poll()
    # The first poll counts nothing (what exists is history), but every department and rating is there at 0.
    assert set(first.select("whmcs_tickets_opened_total")) == {(("department", d), ("whmcs", "desk"))
                                                                for d in DEPARTMENTS}
    assert len(first.select("whmcs_ticket_ratings_total")) == 15 and counters(first)["ratings"] == {}
    assert counters(first) == {"opened": {}, "replies": {}, "ratings": {}, "staff": {}}
    script = {
        2: lambda: w.add_ticket(deptid=1, at=desk.clock.t),
        5: lambda: w.customer_reply(old.id, at=desk.clock.t),
        9: lambda: w.staff_reply(w.tickets[max(w.tickets)].id, admin="Alice", at=desk.clock.t),
        14: lambda: w.add_ticket(deptid=2, at=desk.clock.t),
        20: lambda: w.staff_reply(old.id, admin="Bob", at=desk.clock.t),
        27: lambda: w.customer_reply(w.tickets[max(w.tickets)].id, at=desk.clock.t),
        33: lambda: w.staff_reply(w.tickets[max(w.tickets)].id, admin="Alice", at=desk.clock.t),
        41: lambda: rate(w, old.id, history.replyid, 3, at=desk.clock.t),  # a reply from before: history
        50: lambda: w.add_note(old.id, "internal", at=desk.clock.t),
    }
    for minute in range(1, 61):
        desk.clock.advance(60)
        if minute in script:
            script[minute]()
        samples = desk.poll()
        assert counters(samples) == desk.truth()
    newest = w.tickets[max(w.tickets)]
    alice = next(r for r in reversed(w.replies(newest)) if r.admin)
    rate(w, newest.id, alice.replyid, 5, at=desk.clock.t)  # a late rating: lastreply does not move
    bobs = next(r for r in reversed(w.replies(old)) if r.admin == "Bob")
    rate(w, old.id, bobs.replyid, 1, at=desk.clock.t)
    desk.clock.advance(60)
    samples = desk.poll()
    assert counters(samples)["ratings"] == {}  # not seen yet: nothing moved
    desk.clock.t = alice.date + 7200.0 + 60
    samples = desk.poll()
    truth = desk.truth()
    assert counters(samples) == truth
    home = _department(w, old)
    replies = Counter({("Sales", "staff"): 1, ("Support", "customer"): 1, ("Support", "staff"): 1})
    replies.update([(home, "customer"), (home, "staff")])
    ratings = Counter([("Support", "5"), (home, "1")])
    assert truth == {"opened": {"Sales": 1, "Support": 1}, "replies": dict(replies), "ratings": dict(ratings),
                     "staff": {"Alice": 2, "Bob": 1}}
    assert sum(counters(samples)["replies"].values()) == 5 and sum(counters(samples)["ratings"].values()) == 2


def _department(world: World, ticket: Any) -> str:
    return next(d.name for d in world.departments if d.id == ticket.deptid)


def test_a_burst_larger_than_the_budget_waits_in_the_queue_and_is_counted_once():
    desk = Desk(tickets=400, max_ticket_fetches_per_poll=20)
    w = desk.world
    desk.poll()
    desk.clock.advance(60)
    # first_response reads the window's tickets first: let it finish so flow's share is what is left.
    for _ in range(60):
        desk.clock.advance(60)
        desk.poll()
    burst = [t.id for t in w.live_tickets()][:150]
    for ident in burst:
        w.customer_reply(ident, at=desk.clock.t)
    seen = []
    for _ in range(40):
        desk.clock.advance(60)
        before = dict(desk.client.stats.totals()[0])
        samples = desk.poll()
        calls = {k: v - before.get(k, 0) for k, v in desk.client.stats.totals()[0].items()}
        assert calls.get("GetTicket", 0) <= 20
        now, truth = counters(samples), desk.truth()
        for key, value in now["replies"].items():
            assert value <= truth["replies"][key]  # lags, never counts twice
        seen.append(pending(samples))
    assert seen[0] > 0 and seen[-1] == 0 and seen == sorted(seen, reverse=True)
    assert counters(samples) == desk.truth()
    assert sum(counters(samples)["replies"].values()) == 150


def test_a_failed_poll_neither_resets_nor_jumps_the_counters():
    # Only flow reads GetTicket here, so the n-th GetTicket call of a poll is flow's n-th.
    desk = Desk(tickets=60, collectors={"counts": True, "departments": True, "flow": True, "first_response": False,
                                        "oldest_awaiting": False, "priorities": False, "wait_distribution": False})
    w = desk.world
    desk.poll()
    rng = random.Random(3)
    totals = []
    for minute in range(40):
        desk.clock.advance(60)
        w.step(rng, 100)
        desk.client.fail = lambda action, n: False
        if minute in (10, 20):
            for t in [t for t in w.live_tickets() if t.status == "Answered"][:3]:
                w.customer_reply(t.id, at=desk.clock.t)
        if minute == 10:  # the list fails: nothing of this poll is counted yet
            desk.client.fail = lambda action, n: action == "GetTickets"
        if minute == 20:  # the second GetTicket fails: the first ticket's replies are counted, once
            first = desk.client.counts.get("GetTicket", 0) + 1
            desk.client.fail = lambda action, n, first=first: action == "GetTicket" and n == first + 1
        samples = desk.poll()
        values, truth = counters(samples), desk.truth()
        totals.append(sum(values["replies"].values()))
        if minute in (10, 20):
            assert sum(values["replies"].values()) < sum(truth["replies"].values())
        else:
            assert unrated(values) == unrated(truth)
    assert totals == sorted(totals)  # never backwards
    assert totals[-1] == sum(desk.truth()["replies"].values()) > 0
    assert desk.flow.queue == {}
    assert counters(settled(desk)) == desk.truth()


def test_counters_continue_after_a_restart_from_the_saved_state(tmp_path):
    desk = Desk(tickets=60, state_dir=str(tmp_path))
    rng = random.Random(5)
    desk.poll()
    for _ in range(20):
        desk.clock.advance(60)
        desk.world.step(rng, 100)
        desk.poll()
    before = counters(desk.poll())
    assert unrated(before) == unrated(desk.truth()) and before["replies"]
    desk.restart()
    for _ in range(3):  # traffic while it was down
        desk.clock.advance(60)
        desk.world.step(rng, 100)
    restored = desk.flow
    assert restored.counters.replies and restored.max_id is not None
    for _ in range(20):
        desk.clock.advance(60)
        desk.world.step(rng, 100)
        assert unrated(counters(desk.poll())) == unrated(desk.truth())
    assert counters(settled(desk)) == desk.truth()


def test_staff_names_beyond_max_staff_are_other_and_off_by_default():
    desk = Desk(tickets=20, max_staff=1)
    w = desk.world
    desk.poll()
    for admin in ("Alice", "Bob", "Bob", "Alice"):
        desk.clock.advance(60)
        t = w.add_ticket(deptid=3, at=desk.clock.t - 30)
        w.staff_reply(t.id, admin=admin, at=desk.clock.t)
        samples = desk.poll()
    assert counters(samples)["staff"] == {"Alice": 2, "other": 2}
    quiet = Desk(tickets=20, staff_metrics=False)
    quiet.poll()
    quiet.clock.advance(60)
    quiet.world.staff_reply(next(iter(quiet.world.tickets)), admin="Alice", at=quiet.clock.t)
    samples = quiet.poll()
    assert "whmcs_staff_replies_total" not in samples.names()
    assert samples.select("whmcs_ticket_replies_total", author="staff")


def test_flow_labels_carry_no_customer_data():
    desk = Desk(tickets=30)
    desk.poll()
    rng = random.Random(9)
    for _ in range(30):
        desk.clock.advance(60)
        desk.world.step(rng, 60)
        samples = desk.poll()
    names = ("whmcs_tickets_opened_total", "whmcs_ticket_replies_total", "whmcs_ticket_ratings_total",
             "whmcs_staff_replies_total", "whmcs_exporter_pending_ticket_fetches")
    allowed = {"whmcs", "department", "author", "rating", "admin"}
    customers = {t.name for t in desk.world.tickets.values()} | {t.email for t in desk.world.tickets.values()}
    for name in names:
        for labels in samples.select(name):
            assert {k for k, _ in labels} <= allowed
            assert not {v for _, v in labels} & customers


@pytest.mark.parametrize("budget", [0, 5])
def test_the_getticket_budget_is_shared_by_first_response_flow_and_sla(budget):
    desk = Desk(tickets=200, max_ticket_fetches_per_poll=budget,
                sla={"targets": [{"first_response": "4h", "next_reply": "8h"}]}, rating_delay="10m")
    rng = random.Random(2)
    for _ in range(15):
        before = desk.client.stats.totals()[0].get("GetTicket", 0)
        desk.poll()
        assert desk.client.stats.totals()[0].get("GetTicket", 0) - before <= budget
        desk.clock.advance(60)
        for _ in range(5):
            desk.world.step(rng, 250)


def test_ledgers_are_forgotten_after_their_late_rating_look_and_a_ticket_changed_later_counts_once():
    desk = Desk(tickets=40, rating_delay="1h")
    w = desk.world
    desk.poll()
    for minute in range(10):
        desk.clock.advance(60)
        t = w.add_ticket(deptid=1 + minute % 3, at=desk.clock.t - 20)
        w.staff_reply(t.id, admin="Bob", at=desk.clock.t)
        desk.poll()
    assert len(desk.flow.tickets) == 10
    desk.clock.advance(FORGET_AFTER + 3600 + 60)
    desk.poll()  # the late-rating looks
    desk.clock.advance(60)
    desk.poll()
    assert desk.flow.tickets == {}  # memory follows recent changes, not the desk
    again = max(w.tickets)
    w.customer_reply(again, at=desk.clock.t)
    desk.clock.advance(60)
    assert counters(desk.poll()) == desk.truth()
    assert sum(desk.truth()["replies"].values()) == 11


def test_the_counters_go_on_with_the_last_department_labels_while_getsupportdepartments_is_denied():
    desk = Desk(tickets=30)
    w = desk.world
    desk.poll()
    denied = PermissionDenied("GetSupportDepartments", 'Invalid Permissions: API action "getsupportdepartments"')
    desk.client.fail = lambda action, n: denied if action == "GetSupportDepartments" else False
    rng = random.Random(4)
    for _ in range(10):
        desk.clock.advance(60)
        w.step(rng, 50)
        samples = desk.poll()
        assert desk.poller.snapshot.collectors["flow"].success
        assert not desk.poller.snapshot.collectors["departments"].success
        assert unrated(counters(samples)) == unrated(desk.truth())
    assert sum(counters(samples)["replies"].values()) > 0
    # Only the departments collector asked (once a poll): flow took the labels it had.
    assert desk.client.counts["GetSupportDepartments"] == 11


@pytest.mark.parametrize("latency", [0.5, 2.0])
def test_flow_with_nothing_queued_leaves_its_share_of_a_slow_poll_to_first_response(latency):
    fetched = {}
    for name, collectors in (("without flow", DEFAULTS - {"flow"}), ("with flow", DEFAULTS)):
        desk = SlowDesk(tickets=3000, latency=latency, interval=60.0, collectors=collectors)
        first_response = next(c for c in desk.poller.collectors if c.name == "first_response")
        fetched[name] = []
        for _ in range(6):
            start, duration = desk.poll()
            assert duration <= desk.installation.deadline
            fetched[name].append(first_response.last_fetches)
            desk.clock.t = start + 60.0
    # Flow's first poll takes its share (it reads the head for the first time); from then on, at 0.5 s per call
    # first_response reads as much as without flow. At 2 s per call it takes the whole poll, so flow runs every
    # other poll (its head unread, it wants its share back) and first_response reads as much in the others.
    assert fetched["with flow"][0] < fetched["without flow"][0]
    if latency == 0.5:
        assert fetched["with flow"][1:] == fetched["without flow"][1:]
    else:
        assert fetched["with flow"][3::2] == fetched["without flow"][3::2] and min(fetched["with flow"][1:]) > 0


class OutOfTime(Pace):
    """A poll whose deadline has passed as soon as anyone asks."""

    def past_deadline(self) -> bool:
        self.cut = True
        return True

    def affordable(self, budget: int) -> int:
        return 0


def test_a_head_scan_cut_by_the_deadline_loses_nothing_and_counts_nothing_twice():
    clock = FakeClock(T0)
    world = World.generate(seed=3, tickets=400, now=T0, tz="UTC", clock=clock, departments=DEPARTMENTS)
    inst = installation(rating_delay="1h")
    flow = FlowCollector(inst)
    client = MemoryClient(world)
    flow.poll(PollContext(client=client, now=clock.t, installation=inst))
    clock.advance(60)
    for t in [t for t in world.live_tickets() if t.status == "Answered"][:60]:
        world.customer_reply(t.id, at=clock.t - 30)
    for _ in range(150):  # the head now holds more changed rows than its first page
        world.add_ticket(deptid=2, at=clock.t)
    cut = flow.poll(PollContext(client=client, now=clock.t, installation=inst, pace=OutOfTime()))
    # The first page held 100 of the new tickets (counted); the rest and the replies wait for the next poll.
    assert flow.last_pages == 1 and flow.last_fetches == 0 and dict(cut.opened)["Support"] == 100
    for _ in range(5):
        clock.advance(60)
        part = flow.poll(PollContext(client=client, now=clock.t, installation=inst))
    truth = flow_truth(world, T0, clock.t)
    assert dict(part.opened)["Support"] == truth["opened"]["Support"] == 150
    assert {k: v for k, v in part.replies if v} == truth["replies"] and part.pending == 0
