"""State across restarts, measured: the first poll after a restart against a cold start, the state file's
size, and the time of the once-per-poll write. Figures go to docs/state.md.

    python -m bench.bench_state [--tickets 1000 100000]

In-process, like bench_calls: the real poller, collectors and client against the simulator over
HTTP, a clock the bench moves, a StateStore in a temporary directory. The first-response cache is
warmed straight from the world (no budget, no HTTP) so that the steady state is
reached without hundreds of polls.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

from exporter.collectors.base import PollContext
from exporter.collectors.registry import build_collectors
from exporter.poller import InstallationPoller
from exporter.snapshot import SnapshotStore
from exporter.state.store import StateStore
from testkit.bench_calls import Bench, DirectClient

NOW = 1_780_000_000.0
INTERVAL = 60.0


class TimedStore(StateStore):
    """A StateStore that remembers how long each write took."""

    write_seconds: list[float]

    def save(self, key: str, saved: Any) -> bool:  # type: ignore[override]
        started = time.perf_counter()
        try:
            return super().save(key, saved)
        finally:
            self.__dict__.setdefault("write_seconds", []).append(time.perf_counter() - started)


def poller(bench: Bench, store: StateStore) -> tuple[InstallationPoller, float]:
    """A poller as a (re)started exporter builds it; returns it and the seconds its state took to load."""
    started = time.perf_counter()
    collectors = build_collectors(bench.inst)
    made = InstallationPoller(bench.inst, SnapshotStore([bench.inst.name]), client=bench.client,  # type: ignore[arg-type]
                              collectors=collectors, clock=lambda: bench.now, state=store)
    bench.collectors = collectors
    return made, time.perf_counter() - started


def warm(bench: Bench) -> None:
    """Read every ticket of the window at once, straight from the world (no budget, no HTTP)."""
    fr = bench.first_response()
    budget, pages = fr.budget, fr.listing.max_pages
    fr.budget, fr.listing.max_pages = 10**9, 10**6
    try:
        fr.poll(PollContext(client=DirectClient(bench.sim.world), now=bench.now, installation=bench.inst))
    finally:
        fr.budget, fr.listing.max_pages = budget, pages


def poll(bench: Bench, p: InstallationPoller) -> dict[str, Any]:
    bench.poller = p
    return bench.poll().as_json()


def measure(tickets: int, downtime_traffic: int = 30) -> dict[str, Any]:
    directory = tempfile.mkdtemp(prefix="bench-state-")
    bench = Bench.start(tickets, NOW)
    try:
        store = TimedStore.open(directory)
        first, _ = poller(bench, store)
        cold = poll(bench, first)
        warm(bench)
        bench.now += INTERVAL
        poll(bench, first)  # the first write after warming writes every ticket once
        full_write = store.write_seconds[-1]
        steady = []
        for _ in range(3):
            bench.now += INTERVAL
            steady.append(poll(bench, first))
        steady_writes = store.write_seconds[-3:]
        size = store.size()
        store.close()

        # Restart: a new store and new collectors read the file; the desk did not change meanwhile.
        store = TimedStore.open(directory)
        second, load_seconds = poller(bench, store)
        bench.now += INTERVAL
        restart = poll(bench, second)
        store.close()

        # Restart after 10 minutes down, with `downtime_traffic` events meanwhile.
        store = TimedStore.open(directory)
        third, _ = poller(bench, store)
        bench.now += 10 * INTERVAL
        bench.traffic(downtime_traffic)
        after_downtime = poll(bench, third)
        store.close()
        return {"tickets": tickets, "cold_first_poll": cold, "steady": steady, "restart_first_poll": restart,
                "restart_after_downtime": after_downtime, "downtime_traffic": downtime_traffic,
                "load_seconds": load_seconds, "state_bytes": size, "full_write_seconds": full_write,
                "steady_write_seconds": steady_writes, "window_tickets": len(bench.first_response().tickets)}
    finally:
        bench.stop()


def report(r: dict[str, Any]) -> str:
    def calls(p: dict[str, Any]) -> str:
        return f"{p['total']} calls ({p['by_action'].get('GetTicket', 0)} GetTicket), {p['seconds']:.2f} s"

    return "\n".join([
        f"{r['tickets']:,} tickets ({r['window_tickets']:,} in the response window):",
        f"  cold start, first poll:          {calls(r['cold_first_poll'])}",
        f"  steady poll:                     {calls(r['steady'][-1])}",
        f"  restart, first poll:             {calls(r['restart_first_poll'])} + {r['load_seconds']:.2f} s loading",
        f"  restart after 10 min down ({r['downtime_traffic']} events): {calls(r['restart_after_downtime'])}",
        f"  state file: {r['state_bytes'] / 1024:,.0f} KiB; write per steady poll: "
        f"{', '.join(f'{s * 1000:.1f}' for s in r['steady_write_seconds'])} ms; "
        f"first full write: {r['full_write_seconds'] * 1000:.0f} ms",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for tickets in args.tickets:
        result = measure(tickets)
        print(json.dumps(result) if args.json else report(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
