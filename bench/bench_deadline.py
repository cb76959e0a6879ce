"""A slow WHMCS: poll duration, calls per poll and first-response catch-up at 20 ms, 0.5 s and 2 s per call.

Two measurements (docs/performance.md, "A slow WHMCS"):

- **simulated time** (`SlowDesk`, testkit/slow_whmcs.py): the real poller and collectors against the simulator's
  API functions in-process; every call advances a fake clock by the latency, so hundreds of 60-second polls run
  in seconds. Default settings (60 s interval, poll_deadline 30 s, 50 GetTicket per poll). Polls run on schedule
  until first-response coverage reaches 1 (3,000 tickets) or for a few polls (100,000 tickets).
- **real time** (`--once` of the real exporter process over HTTP against `Simulator(latency=...)`): one cold
  poll per latency, to check that the simulated figures hold with real sockets and sleeps.

    python bench/bench_deadline.py            # ~3 minutes; table on stdout, JSON in bench-results/deadline.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's directory comes first on sys.path and its name would shadow the bench package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from exporter.simulator import Simulator, World  # noqa: E402
from testkit.exporter_process import Samples, write_config  # noqa: E402
from testkit.slow_whmcs import SlowDesk  # noqa: E402

LATENCIES = (0.02, 0.5, 2.0)
INTERVAL = 60.0


def simulated(tickets: int, latency: float, max_polls: int, interval: float = INTERVAL) -> dict[str, Any]:
    """Polls every `interval` simulated seconds until first-response coverage is 1 or `max_polls` polls ran."""
    desk = SlowDesk(tickets=tickets, latency=latency, interval=interval)
    durations, calls, fetches = [], [], []
    started = time.perf_counter()
    reached = None
    for k in range(max_polls):
        start, duration = desk.poll()
        snap = desk.poller.snapshot
        durations.append(duration)
        calls.append(snap.poll_api_calls)
        fetches.append(next(c for c in desk.poller.collectors if c.name == "first_response").last_fetches)
        if snap.collectors["first_response"].sample_ratio == 1.0:
            reached = k + 1
            break
        desk.clock.t = start + interval
    return {"tickets": tickets, "latency": latency, "interval": interval, "polls": len(durations),
            "coverage_1_after_polls": reached,
            "coverage_last": desk.poller.snapshot.collectors["first_response"].sample_ratio,
            "first_poll_seconds": durations[0], "first_poll_calls": calls[0],
            "median_poll_seconds": statistics.median(durations), "max_poll_seconds": max(durations),
            "median_calls": statistics.median(calls), "max_calls": max(calls),
            "median_getticket": statistics.median(fetches), "cpu_seconds": time.perf_counter() - started}


def real_once(tickets: int, latency: float, directory: Path) -> dict[str, Any]:
    """One cold poll of the real exporter process (`--once`) against the HTTP simulator."""
    world = World.generate(seed=5, tickets=tickets, tz="UTC")
    with Simulator(world=world, latency=latency) as sim:
        config = write_config(str(directory), [{
            "name": "desk", "url": sim.url, "api_identifier": sim.identifier, "api_secret": sim.secret,
            "timezone": "UTC", "poll_interval": f"{INTERVAL:g}s", "timeout": "10s"}])
        out = subprocess.run([sys.executable, "-m", "exporter", "--config.file", config, "--once"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
    samples = Samples.parse(out.stdout)
    return {"tickets": tickets, "latency": latency,
            "poll_seconds": samples.get("whmcs_exporter_poll_duration_seconds", whmcs="desk"),
            "calls": samples.get("whmcs_exporter_poll_api_calls", whmcs="desk"),
            "first_response_coverage": samples.get("whmcs_exporter_sample_ratio", whmcs="desk",
                                                   collector="first_response")}


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| per call | interval | tickets | poll (first / median / max), simulated | "
             "calls per poll (first / median) | GetTicket per poll (median) | polls to coverage 1 | "
             "real first poll: duration, calls |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    real = {(r["tickets"], r["latency"]): r for r in results["real"]}
    for r in results["simulated"]:
        reached = r["coverage_1_after_polls"]
        polls = str(reached) if reached else f"not within {r['polls']} (coverage {r['coverage_last']:.3f})"
        once = real.get((r["tickets"], r["latency"])) if r["interval"] == INTERVAL else None
        real_text = f"{once['poll_seconds']:.1f} s, {once['calls']:.0f}" if once and once["calls"] else "-"
        lines.append(f"| {r['latency'] * 1000:g} ms | {r['interval']:g} s | {r['tickets']:,} | "
                     f"{r['first_poll_seconds']:.1f} / {r['median_poll_seconds']:.1f} / "
                     f"{r['max_poll_seconds']:.1f} s | {r['first_poll_calls']} / "
                     f"{r['median_calls']:g} | {r['median_getticket']:g} | {polls} | {real_text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "deadline.json"))
    parser.add_argument("--max-polls", type=int, default=1500)
    parser.add_argument("--no-real", action="store_true", help="skip the real-time runs (~1 minute)")
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, Any]]] = {"simulated": [], "real": []}
    for latency in LATENCIES:
        results["simulated"].append(simulated(3000, latency, args.max_polls))
        results["simulated"].append(simulated(100_000, latency, 5))
        if not args.no_real:
            work = Path(args.out).parent / f"deadline-{latency:g}"
            work.mkdir(parents=True, exist_ok=True)
            results["real"].append(real_once(3000, latency, work))
        print(f"{latency:g} s per call done", file=sys.stderr, flush=True)
    results["simulated"].append(simulated(3000, 0.6, args.max_polls, interval=10.0))  # issue 13's shared hosting
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
