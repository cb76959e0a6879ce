"""API calls per poll, attributed to collectors, measured in-process (InstallationPoller + Simulator over HTTP).

The real exporter's client (`WhmcsClient`) and collectors run unchanged; a thin wrapper
notes which collector made each call. The poller's clock is fixed by the caller, so a
seeded static world gives the same counts on every run (tests/test_bench_calls.py
asserts them). The first-response collector keeps a cache across polls; `warm_first_response`
fills it in one go (straight against the world, no HTTP) so that the steady state
after its catch-up phase can be measured without hundreds of polls.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.answers import classify
from exporter.client import CallStats, WhmcsClient
from exporter.collectors.base import Collector, PollContext
from exporter.collectors.registry import build_collectors
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.errors import WhmcsError
from exporter.poller import InstallationPoller
from exporter.simulator import Simulator, World
from exporter.simulator import api as sim_api
from exporter.snapshot import Part, SnapshotStore
from testkit.bench_world import TZ, apply_traffic, make_world

NAME = "bench"


def list_name(params: Mapping[str, Any]) -> str:
    """The list a GetTickets call reads: its status filter (or every status), per department when filtered."""
    name = str(params.get("status") or "all statuses")
    return f"{name}, one department" if params.get("deptid") else name


class TaggingClient:
    """A `WhmcsClient` that counts each call under (collector, action); `collector` is set by `TaggedCollector`."""

    def __init__(self, inner: WhmcsClient) -> None:
        self.inner = inner
        self.stats = inner.stats
        self.collector = "-"
        self.calls: Counter[tuple[str, str]] = Counter()
        self.lists: Counter[str] = Counter()  # GetTickets calls by the list they read

    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.calls[(self.collector, action)] += 1
        if action == "GetTickets":
            self.lists[list_name(params or {})] += 1
        return self.inner.call(action, params)

    def credentials(self) -> dict[str, str]:
        return self.inner.credentials()


class TaggedCollector:
    """Runs a collector with the tagging client told which collector is calling."""

    def __init__(self, collector: Collector, client: TaggingClient) -> None:
        self.collector = collector
        self.name = collector.name
        self.client = client

    def poll(self, ctx: PollContext) -> Part:
        self.client.collector = self.name
        try:
            return self.collector.poll(ctx)
        finally:
            self.client.collector = "-"


class DirectClient:
    """Answers calls from the simulator's API code without HTTP (to warm caches quickly, and for polls on a
    fake clock: testkit/slow_whmcs.py); calls are counted in `stats` as the real client counts them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.stats = CallStats()

    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        form = {k: str(v) for k, v in (params or {}).items()}
        try:
            status, body = sim_api.handle(self.world, action, {"action": action, **form})
            result = classify(action, status, sim_api.to_json(body))
        except WhmcsError as exc:
            self.stats.record(action, exc.reason)
            raise
        self.stats.record(action, None)
        return result


@dataclass
class PollCalls:
    """One poll: calls by collector and action, and how long it took in this process."""

    by_collector: dict[str, dict[str, int]]
    seconds: float
    ok: bool
    first_response_due: int = 0  # tickets whose replies the first-response collector still has to read
    by_list: dict[str, int] = field(default_factory=dict)  # GetTickets calls by the list they read

    @property
    def total(self) -> int:
        return sum(sum(actions.values()) for actions in self.by_collector.values())

    def by_action(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for actions in self.by_collector.values():
            out.update(actions)
        return dict(sorted(out.items()))

    def view_totals(self) -> dict[str, int]:
        return {collector: sum(actions.values()) for collector, actions in self.by_collector.items()}

    def as_json(self) -> dict[str, Any]:
        return {"total": self.total, "by_action": self.by_action(), "by_collector": self.view_totals(),
                "by_view_action": self.by_collector, "seconds": round(self.seconds, 4), "ok": self.ok,
                "first_response_due": self.first_response_due, "by_list": self.by_list}


def installation(sim: Simulator, **extra: Any) -> InstallationConfig:
    """Every collector enabled, default limits; only the timeout is generous (the first 100k poll pages a lot)."""
    return InstallationConfig(name=NAME, url=sim.url,
                              auth=ApiCredentials(Secret(inline=sim.identifier), Secret(inline=sim.secret)),
                              timezone=TZ, timeout=30.0, **extra)


@dataclass
class Bench:
    """A simulator, a poller with every registered collector and a clock the caller moves."""

    sim: Simulator
    inst: InstallationConfig
    client: TaggingClient
    poller: InstallationPoller
    collectors: list[Collector]
    now: float
    rng: random.Random = field(default_factory=lambda: random.Random(99))

    @classmethod
    def start(cls, tickets: int, now: float, **settings: Any) -> Bench:
        sim = Simulator(world=make_world(tickets, now)).start()
        inst = installation(sim, **settings)
        client = TaggingClient(WhmcsClient(inst))
        collectors = build_collectors(inst)
        tagged: list[Collector] = [TaggedCollector(v, client) for v in collectors]
        bench = cls(sim=sim, inst=inst, client=client, poller=None, collectors=collectors, now=now)  # type: ignore[arg-type]
        bench.poller = InstallationPoller(inst, SnapshotStore([NAME]), client=client,  # type: ignore[arg-type]
                                          collectors=tagged, clock=lambda: bench.now)
        return bench

    def stop(self) -> None:
        self.sim.stop()

    def collector_names(self) -> list[str]:
        return [v.name for v in self.collectors]

    def first_response(self) -> Any:
        return next((v for v in self.collectors if v.name == "first_response"), None)

    def poll(self) -> PollCalls:
        self.client.calls.clear()
        self.client.lists.clear()
        started = time.perf_counter()
        snap = self.poller.poll_once()
        seconds = time.perf_counter() - started
        by_collector: dict[str, dict[str, int]] = {name: {} for name in self.collector_names()}
        for (collector, action), n in sorted(self.client.calls.items()):
            by_collector.setdefault(collector, {})[action] = n
        fr = self.first_response()
        due = sum(1 for t in fr.tickets.values() if t.needs_fetch) if fr is not None else 0
        return PollCalls(by_collector, seconds, snap.up and all(s.success for s in snap.collectors.values()), due,
                         dict(sorted(self.client.lists.items())))

    def traffic(self, events: int) -> None:
        if events:
            apply_traffic(self.sim.world, self.rng, events, self.now)

    def warm_first_response(self) -> int:
        """Read every due ticket's replies at once (no budget, no HTTP); returns how many were read."""
        fr = self.first_response()
        if fr is None:
            return 0
        budget, pages = fr.budget, fr.listing.max_pages
        fr.budget, fr.listing.max_pages = 10**9, 10**6  # the rest of the window's listing too, in this one poll
        try:
            fr.poll(PollContext(client=DirectClient(self.sim.world), now=self.now, installation=self.inst))
            return fr.last_fetches
        finally:
            fr.budget, fr.listing.max_pages = budget, pages


def catch_up_polls(due: int, budget: int) -> int:
    """Polls the first-response collector needs to read `due` tickets at `budget` per poll."""
    return math.ceil(due / budget) if budget else 0


def measure(tickets: int, *, now: float, interval: float = 60.0, traffic: int = 0, steady_polls: int = 3,
            steady_latency: float | None = None) -> dict[str, Any]:
    """First poll, the next (catch-up) poll, and `steady_polls` polls after warming the first-response cache.

    `traffic` events (new tickets, staff and customer replies) happen before every poll but the first.
    With `steady_latency`, every simulated call of the steady polls is delayed that long, so their
    `seconds` is the wall time of a warm poll against a WHMCS that answers in that time.
    """
    bench = Bench.start(tickets, now)
    try:
        first = bench.poll()
        bench.now += interval
        bench.traffic(traffic)
        second = bench.poll()
        budget = bench.inst.max_ticket_fetches_per_poll
        result: dict[str, Any] = {
            "tickets": tickets, "traffic_per_poll": traffic, "interval": interval, "budget": budget,
            "first": first.as_json(), "second": second.as_json(),
        }
        # Polls until the first-response cache has read every ticket of the window, at the default budget: the
        # two polls above, then the tickets still due (the warm-up lists the rest of the window and reads them
        # all; the listing itself, a few GetTickets pages per poll, ends long before the GetTicket budget does).
        result["warmed_tickets"] = bench.warm_first_response()
        result["catch_up_polls"] = 2 + catch_up_polls(result["warmed_tickets"], budget)
        if steady_latency:
            bench.sim.faults.set("slow", delay=steady_latency)
        steady = []
        for _ in range(steady_polls):
            bench.now += interval
            bench.traffic(traffic)
            steady.append(bench.poll().as_json())
        result["steady"] = steady
        result["steady_latency"] = steady_latency
        return result
    finally:
        bench.stop()
