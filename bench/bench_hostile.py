"""Benchmark: the real exporter against hostile answers and a connection flood (issue 14's figures).

    python bench/bench_hostile.py [--out bench-results/hostile.json]

- peak RSS (VmHWM) of a fresh exporter through four polls of each hostile answer, and its RSS 5 s after the
  attack ends: a 200 MB body, a gzip bomb inflating to 1 GB, the largest valid answer (JSON just under the
  cap, shaped for the worst expansion into Python objects), a trickle of one byte per 0.2 s;
- poll duration under that trickle with `timeout: 5s` (before the fix: 30-90 s);
- /metrics latency over fresh connections, with and without 1,100 slow connections, the exporter started
  under `prlimit --nofile=1024`, and its CPU use during the flood.
Prints a table in the shape of docs/reliability.md and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:
    # Run by path, sys.path starts at bench/ and the repository's testkit is out of reach: run again as the
    # package's module from the repository root (as bench/bench.py does).
    os.chdir(Path(__file__).resolve().parent.parent)
    os.execv(sys.executable, [sys.executable, "-m", "bench.bench_hostile", *sys.argv[1:]])

from exporter.simulator import Simulator
from exporter.transport import MAX_ANSWER_BYTES
from testkit.bench_proc import cpu_seconds, memory_mb
from testkit.hostile_whmcs import HostileWhmcs, bomb
from testkit.reliability import installation, polls, start, up, value
from testkit.slow_clients import SlowClients, scrape_latencies

ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "200 MB body": ("huge", {"size": 200 * 1024 * 1024}),
    "gzip bomb (1 MB -> 1 GB)": ("gzip_bomb", {"size": 1024 * 1024 * 1024}),
    "largest valid answer": ("body", {"body": b'{"result":"success","x":[' + b"[]," * ((MAX_ANSWER_BYTES - 40) // 3)
                                      + b"[]]}", "content_type": "application/json"}),
    "trickle, 1 byte / 0.2 s": ("trickle", {"interval": 0.2}),
}


def hostile_answer(name: str, kind: str, options: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory, Simulator(tickets=1000) as sim, HostileWhmcs(sim.url) as evil:
        with start(directory, [installation(sim, url=evil.url, timeout="5s", poll_interval="1s",
                                            max_age="60s")]) as proc:
            proc.wait_for(lambda s: up(s) == 1.0, timeout=60)
            before = memory_mb(proc.proc.pid)
            if kind == "gzip_bomb":
                bomb(options["size"])  # made before the attack, not while the exporter waits for it
            evil.attack(kind, **options)
            first = polls(proc.scrape())
            samples = proc.wait_for(lambda s: polls(s) >= first + 4, timeout=120)
            durations = value(samples, "whmcs_exporter_poll_duration_seconds")
            peak = memory_mb(proc.proc.pid)["VmHWM"]
            evil.calm()
            proc.wait_for(lambda s: up(s) == 1.0, timeout=60)
            time.sleep(5)
            after = memory_mb(proc.proc.pid)["VmRSS"]
    return {"answer": name, "rss_before_mb": round(before["VmRSS"], 1), "peak_rss_mb": round(peak, 1),
            "rss_after_mb": round(after, 1), "last_poll_duration_s": round(durations or 0.0, 2)}


def flood(connections: int = 1100, scrapes: int = 50) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory, Simulator(tickets=1000) as sim:
        with start(directory, [installation(sim, poll_interval="15s")], wrapper=["prlimit", "--nofile=1024"]) as proc:
            quiet = scrape_latencies(proc.base + "/metrics", scrapes, pause=0.1)
            with SlowClients(proc.port, connections, interval=1.0) as slow:
                time.sleep(5)
                cpu0, t0 = cpu_seconds(proc.proc.pid), time.monotonic()
                loud = scrape_latencies(proc.base + "/metrics", scrapes, pause=0.1)
                cpu = (cpu_seconds(proc.proc.pid) - cpu0) / (time.monotonic() - t0)
                cut = slow.closed_by_server
    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
                "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 1),
                "max_ms": round(ordered[-1] * 1000, 1)}
    return {"connections": connections, "quiet": summary(quiet), "flood": summary(loud),
            "cpu_share_during_flood": round(cpu, 2), "slow_connections_cut": cut}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-results/hostile.json")
    args = parser.parse_args()
    answers = [hostile_answer(name, kind, options) for name, (kind, options) in ATTACKS.items()]
    print("| hostile answer | RSS before | peak RSS | RSS 5 s after | last poll |")
    print("|---|---|---|---|---|")
    for row in answers:
        print(f"| {row['answer']} | {row['rss_before_mb']} MB | {row['peak_rss_mb']} MB | {row['rss_after_mb']} MB "
              f"| {row['last_poll_duration_s']} s |")
    result = flood()
    print(f"\n/metrics over fresh connections, exporter under prlimit --nofile=1024 ({result['connections']} slow "
          "connections):")
    for label in ("quiet", "flood"):
        print(f"  {label}: p50 {result[label]['p50_ms']} ms, p90 {result[label]['p90_ms']} ms, "
              f"max {result[label]['max_ms']} ms")
    print(f"  CPU during the flood: {result['cpu_share_during_flood']:.0%} of a core; "
          f"slow connections cut: {result['slow_connections_cut']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"answers": answers, "flood": result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
