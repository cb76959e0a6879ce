"""Many installations in one exporter: how the first polls spread, the calls of the first minute, and what
polling costs scrapes.

One simulator answers every installation (the same desk under 50 names), the real exporter process polls
them, and a scrape load runs in a process of its own (bench/bench_load.py). Three phases:
1. start: when each installation's first poll began (its first GetTicketCounts), and calls in the first 60 s;
2. polling: /metrics latency under the scrape load while the installations poll every `--interval`;
3. control: the same process, the same body, while no poll uses the CPU: every WHMCS call now hangs in
   the simulator (its `slow` fault), so the pollers wait on sockets and the parts stay (max_age 1h).
The p99 ratio polling / control is what issue 19 bounds (<= 2).

Run: python -m bench.bench_installations [--installations 50] [--tickets 1000] [--interval 15]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exporter.simulator import Simulator
from testkit.bench_world import make_world
from testkit.exporter_process import ExporterProcess, write_config
from testkit.soak_load import percentile

ROOT = Path(__file__).resolve().parent.parent


def scrape_latencies(url: str, concurrency: int, seconds: float) -> list[float]:
    done = subprocess.run([sys.executable, "-m", "bench.bench_load", url, str(concurrency), str(seconds)],
                          cwd=ROOT, capture_output=True, text=True, check=True, timeout=seconds + 120)
    return [latency for _, latency in json.loads(done.stdout)]


def summary(latencies: list[float]) -> dict[str, float]:
    return {"scrapes": len(latencies), "p50_ms": round(1000 * percentile(latencies, 0.5), 2),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 2)}


def first_minute(sim: Simulator, started: float, installations: int) -> dict[str, object]:
    calls = [c for c in sim.calls if c.time - started <= 60.0]
    firsts = sorted(c.time - started for c in calls if c.action == "GetTicketCounts")[:installations]
    return {"calls_first_minute": len(calls), "first_poll_start_s": [round(firsts[0], 2), round(firsts[-1], 2)],
            "installations_polled_in_first_2s": sum(1 for t in firsts if t - firsts[0] <= 2.0)}


def run(installations: int, tickets: int, interval: float, concurrency: int, seconds: float) -> dict[str, object]:
    world = make_world(tickets, time.time())
    with tempfile.TemporaryDirectory() as directory, Simulator(world=world, call_log_size=10**6) as sim:
        entries = [{"name": f"desk{i:02d}", "url": sim.url, "api_identifier": sim.identifier,
                    "api_secret": sim.secret, "timezone": world.tz_name, "poll_interval": f"{interval:g}s",
                    "timeout": "120s", "max_age": "1h"} for i in range(installations)]
        config = write_config(directory, entries)
        started = time.time()
        with ExporterProcess([f"--config.file={config}", "--storage.path="]) as proc:
            proc.wait_ready(timeout=interval + 120)
            time.sleep(max(0.0, started + 60.0 - time.time()))
            result: dict[str, object] = first_minute(sim, started, installations)
            url = proc.base + "/metrics"
            result["polling"] = summary(scrape_latencies(url, concurrency, seconds))
            sim.faults.set("slow", delay=600.0)  # every call hangs: the pollers wait on sockets
            time.sleep(interval + 5.0)  # polls under way finish; the next ones hang
            result["control"] = summary(scrape_latencies(url, concurrency, seconds))
            sim.faults.clear()
    polling, control = result["polling"], result["control"]
    result["p99_ratio"] = round(polling["p99_ms"] / control["p99_ms"], 2)  # type: ignore[index]
    result.update(installations=installations, tickets=tickets, interval=interval, concurrency=concurrency)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installations", type=int, default=50)
    parser.add_argument("--tickets", type=int, default=1000, help="tickets of the desk every installation reads")
    parser.add_argument("--interval", type=float, default=15.0, help="poll_interval in seconds")
    parser.add_argument("--concurrency", type=int, default=10, help="scrapers")
    parser.add_argument("--seconds", type=float, default=20.0, help="scrape load per phase")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.installations, args.tickets, args.interval, args.concurrency, args.seconds), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
