"""API calls per poll of the flow collector: at a steady 30 changes per poll, and in a burst of 1,000.

    python -m bench.bench_flow

The real poller and every default collector run in-process against the simulator's API code (no HTTP) on a
fixed clock moved 60 s per poll, with a call counter per collector. Before measuring, the first-response cache
is filled in one go (as `bench/bench.py` does), so the GetTicket budget (50 per poll, shared by first_response,
flow and sla) is what a warm exporter has. Steady: 30 traffic events (new tickets, staff and customer replies,
testkit/bench_world.py) before each of 20 polls. Burst: 1,000 events at once, then the same steady traffic until
the queue is empty. After each phase the counters are compared with the simulator's truth (`flow_truth`).
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from typing import Any

from exporter.collectors.base import PollContext
from exporter.collectors.registry import build_collectors
from exporter.config import parse
from exporter.poller import InstallationPoller
from exporter.simulator.flow_traffic import flow_truth
from exporter.snapshot import SnapshotStore
from testkit.bench_calls import DirectClient, TaggedCollector, TaggingClient
from testkit.bench_world import TZ, apply_traffic, make_world
from testkit.in_process import Clock

NOW = 1_750_000_000.0
STEADY = 30
BURST = 1000


class Desk:
    def __init__(self, tickets: int) -> None:
        self.clock = Clock(NOW)
        self.world = make_world(tickets, NOW)
        self.world.clock = self.clock
        self.inst = parse({"installations": [{"name": "bench", "url": "http://whmcs.example", "api_identifier": "i",
                                              "api_secret": "s", "timezone": TZ}]}).installations[0]
        self.client = TaggingClient(DirectClient(self.world))  # type: ignore[arg-type]
        self.collectors = build_collectors(self.inst)
        tagged = [TaggedCollector(c, self.client) for c in self.collectors]
        self.poller = InstallationPoller(self.inst, SnapshotStore(["bench"]), client=self.client,  # type: ignore[arg-type]
                                         collectors=tagged, clock=self.clock)  # type: ignore[arg-type]
        self.rng = random.Random(11)
        self.since = NOW

    def collector(self, name: str) -> Any:
        return next(c for c in self.collectors if c.name == name)

    def poll(self) -> dict[str, Any]:
        self.client.calls.clear()
        self.poller.poll_once()
        flow = Counter({action: n for (who, action), n in self.client.calls.items() if who == "flow"})
        return {"flow_GetTickets": flow["GetTickets"], "flow_GetTicket": flow["GetTicket"],
                "flow": sum(flow.values()), "all": sum(self.client.calls.values()),
                "all_GetTicket": sum(n for (_, action), n in self.client.calls.items() if action == "GetTicket"),
                "pending": len(self.collector("flow").queue)}

    def next_minute(self, events: int) -> None:
        self.clock.t += 60.0
        apply_traffic(self.world, self.rng, events, self.clock.t)

    def warm_first_response(self) -> None:
        fr = self.collector("first_response")
        fr.budget, fr.listing.max_pages = 10**9, 10**6
        try:
            fr.poll(PollContext(client=DirectClient(self.world), now=self.clock.t, installation=self.inst))
        finally:
            fr.budget, fr.listing.max_pages = self.inst.max_ticket_fetches_per_poll, 8

    def exact(self) -> bool:
        """Whether opened, replies and staff replies equal the truth (ratings: none in this traffic)."""
        counters = self.collector("flow").counters
        truth = flow_truth(self.world, self.since, self.clock.t)
        return (truth["opened"] == {k: v for k, v in counters.opened.items() if v}
                and truth["replies"] == {k: v for k, v in counters.replies.items() if v})


def spread(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"{min(values)}-{max(values)}" if min(values) != max(values) else str(values[0])


def measure(tickets: int) -> dict[str, Any]:
    desk = Desk(tickets)
    desk.poll()  # the first poll: flow starts watching, counts nothing
    desk.warm_first_response()
    steady = []
    for _ in range(20):
        desk.next_minute(STEADY)
        steady.append(desk.poll())
    steady_exact = desk.exact()
    desk.next_minute(BURST)
    burst = [desk.poll()]
    while burst[-1]["pending"] and len(burst) < 200:
        desk.next_minute(STEADY)
        burst.append(desk.poll())
    return {"tickets": tickets, "steady": steady, "steady_exact": steady_exact, "burst": burst,
            "burst_exact": desk.exact()}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 10_000]
    results = [measure(n) for n in sizes]
    print("| tickets | phase | flow GetTickets | flow GetTicket | all calls | GetTicket (all) | pending | polls "
          "| exact |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        for phase in ("steady", "burst"):
            rows = r[phase]
            print(f"| {r['tickets']:,} | {phase} | {spread(rows, 'flow_GetTickets')} "
                  f"| {spread(rows, 'flow_GetTicket')} "
                  f"| {spread(rows, 'all')} | {spread(rows, 'all_GetTicket')} | {spread(rows, 'pending')} "
                  f"| {len(rows)} | {r[phase + '_exact']} |")
    print(json.dumps([{**r, "burst": [b["pending"] for b in r["burst"]]} for r in results]))


if __name__ == "__main__":
    main()
