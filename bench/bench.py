"""Benchmark: the cost of watching WHMCS, measured against the simulator with the real exporter process.

    python bench/bench.py [--quick] [--warm-rss | --warm-rss-only] [--out bench-results/bench.json]

Per desk size (100, 1,000, 10,000, 100,000 tickets; --quick: 100 and 10,000):
- API calls per poll by action and by collector (in-process attribution, bench_calls), and by action as the
  simulator saw them from the real exporter process: the first poll, the next polls, and the warm steady
  state of the first-response collector at a stated ticket traffic;
- poll wall time with 50 ms simulated WHMCS latency per call (real process: first and next poll;
  in-process: warm steady poll);
- /metrics latency under 1, 10 and 50 concurrent keep-alive scrapers against the real process and against
  a static ThreadingHTTPServer serving a body of the same size (the baseline), in the same run;
- peak (VmHWM) and steady (VmRSS) memory and CPU seconds per poll of the real process (/proc);
- with --warm-rss: the memory of a warm process at 100,000 tickets, its first-response cache filled
  (coverage 1) fast with a large GetTicket budget and a 1 s poll interval.
Prints tables and writes everything as JSON for comparison across commits.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:
    # Run by path, sys.path starts at bench/ (where this file would shadow the bench package) and the
    # repository's testkit is out of reach: run again as the package's module from the repository root.
    os.chdir(Path(__file__).resolve().parent.parent)
    os.execv(sys.executable, [sys.executable, "-m", "bench.bench", *sys.argv[1:]])

import requests

from bench.report import report, warm_report
from exporter.simulator import Simulator
from testkit.bench_calls import measure
from testkit.bench_proc import PollWatch, cpu_seconds, memory_mb
from testkit.bench_world import ACTIVE_SHARE, AWAITING_SHARE, MIX, apply_traffic, make_world
from testkit.exporter_process import ExporterProcess, Samples, write_config
from testkit.reliability import installation
from testkit.soak_load import percentile
from testkit.static_server import start_static_server

ROOT = Path(__file__).resolve().parent.parent

SIZES = (100, 1_000, 10_000, 100_000)
QUICK_SIZES = (100, 10_000)
LATENCY = 0.05
CONCURRENCY = (1, 10, 50)


def exporter_config(directory: str, sim: Simulator, interval: str, timeout: str, **extra: Any) -> str:
    return write_config(directory, [installation(sim, name="bench", poll_interval=interval, timeout=timeout,
                                                 max_age=None, **extra)])


def load(url: str, concurrency: int, seconds: float) -> list[tuple[float, float]]:
    out = subprocess.run([sys.executable, "-m", "bench.bench_load", url, str(concurrency), str(seconds)],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return [(float(a), float(b)) for a, b in json.loads(out.stdout)]


def latency_stats(samples: list[tuple[float, float]], busy: list[tuple[float, float]] | None = None
                  ) -> dict[str, Any]:
    """p50/p99 in ms; with `busy` windows, also over scrapes that started outside every poll."""
    lat = [b for _, b in samples]
    out: dict[str, Any] = {"n": len(lat), "p50_ms": percentile(lat, 0.5) * 1e3, "p99_ms": percentile(lat, 0.99) * 1e3}
    if busy is not None:
        quiet = [b for a, b in samples if not any(lo <= a + b and a <= hi for lo, hi in busy)]
        out.update(quiet_n=len(quiet), quiet_p50_ms=percentile(quiet, 0.5) * 1e3,
                   quiet_p99_ms=percentile(quiet, 0.99) * 1e3)
    return out


def scrape_bench(url: str, body_size: int, watch: PollWatch, seconds: float) -> dict[str, Any]:
    static, static_url = start_static_server(body_size)
    fast, fast_url = start_static_server(body_size, nodelay=True)
    try:
        results: dict[str, Any] = {"body_bytes": body_size}
        for concurrency in CONCURRENCY:
            ours = load(url, concurrency, seconds)
            busy = [(lo, hi + 0.05) for lo, hi in watch.poll_windows()]
            base = load(static_url, concurrency, seconds)
            nodelay = load(fast_url, concurrency, seconds)
            mine, theirs, fastest = latency_stats(ours, busy), latency_stats(base), latency_stats(nodelay)
            results[str(concurrency)] = {
                "exporter": mine, "static": theirs, "static_nodelay": fastest,
                "p99_ratio": mine["p99_ms"] / theirs["p99_ms"],
                "quiet_p99_ratio": mine["quiet_p99_ms"] / theirs["p99_ms"],
                "nodelay_p99_ratio": mine["p99_ms"] / fastest["p99_ms"],
                "nodelay_quiet_p99_ratio": mine["quiet_p99_ms"] / fastest["p99_ms"],
            }
        return results
    finally:
        for server in (static, fast):
            server.terminate()
            server.wait()


def real_process(tickets: int, *, traffic: int, polls: int, scrape_seconds: float) -> dict[str, Any]:
    """The exporter process against an unthrottled simulator: calls, CPU, memory, scrape latency."""
    interval = 2.0 if tickets < 100_000 else 3.0
    sim = Simulator(world=make_world(tickets, time.time())).start()
    watch = PollWatch(sim)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as directory:
        config = exporter_config(directory, sim, f"{interval:g}s", f"{interval * 0.75:g}s")
        with ExporterProcess(["--config.file", config, "--log.level", "warn"]) as proc:
            pid = proc.proc.pid
            proc.wait_ready(timeout=300)
            watch.wait_polls(1, timeout=300)
            after_first = {"cpu_s": cpu_seconds(pid), **memory_mb(pid)}
            cpu0 = cpu_seconds(pid)
            steady_actions = []
            for j in range(polls):
                apply_traffic(sim.world, rng, traffic, time.time())
                watch.wait_polls(2 + j, timeout=interval * 3 + 60)
                steady_actions.append(watch.actions_of_poll(1 + j))
            cpu_per_poll = (cpu_seconds(pid) - cpu0) / polls
            mem_steady = memory_mb(pid)
            windows = watch.poll_windows()
            body = requests.get(proc.base + "/metrics", timeout=10).content
            scrapes = scrape_bench(proc.base + "/metrics", len(body), watch, scrape_seconds)
            mem_end = memory_mb(pid)
            first_actions = watch.actions_of_poll(0)
            log_tail = proc.log()[-2000:]
    sim.stop()
    return {
        "poll_interval": interval,
        "first_poll": {"actions": first_actions,
                       "cpu_s_incl_startup": after_first["cpu_s"], "VmHWM_mb": after_first["VmHWM"],
                       "VmRSS_mb": after_first["VmRSS"]},
        "next_polls": {"actions": steady_actions, "cpu_s_per_poll": cpu_per_poll,
                       "sim_seconds": [round(hi - lo, 4) for lo, hi in windows[1:1 + polls]]},
        "memory": {"after_polls_VmRSS_mb": mem_steady["VmRSS"], "peak_VmHWM_mb": mem_end["VmHWM"],
                   "after_scrapes_VmRSS_mb": mem_end["VmRSS"]},
        "scrape": scrapes,
        "log_tail": log_tail if "error" in log_tail.lower() else "",
    }


def latency_process(tickets: int) -> dict[str, Any]:
    """The exporter process against a simulator that answers every call after 50 ms: poll wall times."""
    interval = 10.0 if tickets >= 100_000 else 6.0
    sim = Simulator(world=make_world(tickets, time.time())).start()
    sim.faults.set("slow", delay=LATENCY)
    watch = PollWatch(sim)
    polls: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as directory:
        config = exporter_config(directory, sim, f"{interval:g}s", "5s")
        with ExporterProcess(["--config.file", config, "--log.level", "warn"]) as proc:
            proc.wait_ready(timeout=600)
            for count in (1, 2):
                watch.wait_polls(count, timeout=600, idle=0.5)
                samples: Samples = proc.scrape()
                polls.append({"seconds": samples.get("whmcs_exporter_poll_duration_seconds", whmcs="bench") or 0.0,
                              "calls": samples.get("whmcs_exporter_poll_api_calls", whmcs="bench") or 0.0,
                              "up": samples.get("whmcs_up", whmcs="bench") or 0.0})
    sim.stop()
    return {"poll_interval": interval, "latency_s": LATENCY, "first": polls[0], "next": polls[1]}


def warm_rss(tickets: int, *, budget: int, traffic: int, polls: int, timeout: float = 900.0) -> dict[str, Any]:
    """Memory of the real process once its first-response cache holds every ticket of the window.

    At the default budget (50 GetTicket per poll) the cache of a 100,000-ticket desk fills in ~900 polls;
    here the process runs with `max_ticket_fetches_per_poll: budget` and a 1 s poll interval against a
    static desk until whmcs_exporter_sample_ratio{collector="first_response"} is 1 (the window's listing,
    8 pages per poll, sets the pace once the budget is large).
    The cache then holds the same tickets as after a slow fill,
    so VmRSS is the warm steady state; `polls` more polls with `traffic` events each follow before the
    steady reading. VmHWM includes the fill's transient peak (2,000 GetTicket answers per poll).
    """
    sim = Simulator(world=make_world(tickets, time.time())).start()
    watch = PollWatch(sim)
    rng = random.Random(11)
    started = time.monotonic()
    trace: list[tuple[float, int, float, float]] = []  # (seconds, polls, coverage, VmRSS)
    with tempfile.TemporaryDirectory() as directory:
        config = exporter_config(directory, sim, "1s", "30s", max_ticket_fetches_per_poll=budget)
        with ExporterProcess(["--config.file", config, "--log.level", "warn"]) as proc:
            pid = proc.proc.pid
            proc.wait_ready(timeout=300)
            coverage = 0.0
            while coverage < 1.0:
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"coverage {coverage:.3f} after {timeout:g}s")
                time.sleep(2.0)
                samples = proc.scrape()
                coverage = samples.get("whmcs_exporter_sample_ratio", whmcs="bench", collector="first_response") or 0.0
                trace.append((round(time.monotonic() - started, 1), len(watch.starts()), round(coverage, 4),
                              memory_mb(pid)["VmRSS"]))
            fill_seconds = time.monotonic() - started
            fill_polls = len(watch.starts())
            watch.wait_polls(fill_polls + 1, timeout=120)
            at_coverage = memory_mb(pid)
            cpu0 = cpu_seconds(pid)
            base = len(watch.starts())
            for j in range(polls):
                apply_traffic(sim.world, rng, traffic, time.time())
                watch.wait_polls(base + 1 + j, timeout=120)
            cpu_per_poll = (cpu_seconds(pid) - cpu0) / polls
            samples = proc.scrape()
            steady_actions = watch.actions_of_poll(len(watch.starts()) - 1)
            steady = memory_mb(pid)
            known = ((samples.total("whmcs_ticket_first_response_seconds_gcount", whmcs="bench") or 0.0)
                     + (samples.get("whmcs_tickets_without_staff_reply", whmcs="bench") or 0.0))
    sim.stop()
    return {
        "tickets": tickets, "budget": budget, "poll_interval": 1.0, "traffic_per_poll": traffic,
        "fill_seconds": round(fill_seconds, 1), "fill_polls": fill_polls,
        "window_tickets_known": int(known),
        "coverage": samples.get("whmcs_exporter_sample_ratio", whmcs="bench", collector="first_response"),
        "at_coverage_1": {"VmRSS_mb": at_coverage["VmRSS"], "VmHWM_mb": at_coverage["VmHWM"]},
        "steady": {"VmRSS_mb": steady["VmRSS"], "VmHWM_mb": steady["VmHWM"], "polls": polls,
                   "cpu_s_per_poll": cpu_per_poll, "last_poll_actions": steady_actions},
        "trace": trace,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 10,000 only")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), help="e.g. 100,1000")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "bench.json"), help="JSON results path")
    parser.add_argument("--traffic", type=int, default=30, help="traffic events per poll interval (default 30)")
    parser.add_argument("--polls", type=int, default=4, help="next polls measured per size (default 4)")
    parser.add_argument("--scrape-seconds", type=float, default=2.0, help="per concurrency level and server")
    parser.add_argument("--no-latency", action="store_true", help="skip the 50 ms latency runs")
    parser.add_argument("--warm-rss", action="store_true",
                        help="also: memory of a warm process at 100,000 tickets (cache filled fast, ~3 min)")
    parser.add_argument("--warm-rss-only", action="store_true", help="--warm-rss without the per-size runs")
    parser.add_argument("--warm-budget", type=int, default=2000, help="GetTicket per poll for --warm-rss")
    args = parser.parse_args(argv)
    sizes = () if args.warm_rss_only else args.sizes or (QUICK_SIZES if args.quick else SIZES)
    os.chdir(ROOT)
    started = time.monotonic()
    results: dict[str, Any] = {
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=ROOT).stdout.strip(),
        "dirty": bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                     text=True, cwd=ROOT).stdout.strip()),
        "python": sys.version.split()[0], "cpus": os.cpu_count(), "traffic_per_poll": args.traffic,
        "mix": MIX, "awaiting_share": AWAITING_SHARE, "active_share": ACTIVE_SHARE, "sizes": []}
    from exporter.collectors.registry import NAMES
    results["collectors"] = list(NAMES)
    for tickets in sizes:
        t0 = time.monotonic()
        print(f"== {tickets:,} tickets", file=sys.stderr, flush=True)
        entry: dict[str, Any] = {"tickets": tickets}
        entry["calls"] = measure(tickets, now=time.time(), traffic=args.traffic, steady_polls=3,
                                 steady_latency=LATENCY)
        entry["process"] = real_process(tickets, traffic=args.traffic, polls=args.polls,
                                        scrape_seconds=args.scrape_seconds)
        if not args.no_latency:
            entry["latency"] = latency_process(tickets)
        entry["seconds"] = round(time.monotonic() - t0, 1)
        results["sizes"].append(entry)
        print(f"   done in {entry['seconds']} s", file=sys.stderr, flush=True)
    if args.warm_rss or args.warm_rss_only:
        print("== warm RSS, 100,000 tickets", file=sys.stderr, flush=True)
        results["warm_rss"] = warm_rss(100_000, budget=args.warm_budget, traffic=args.traffic, polls=args.polls)
    results["seconds"] = round(time.monotonic() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=False, default=float) + "\n", encoding="utf-8")
    if sizes:
        print(report(results, LATENCY, CONCURRENCY))
    if "warm_rss" in results:
        print("\n" + warm_report(results["warm_rss"]))
    print(f"\n{len(sizes)} sizes in {results['seconds']} s; JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
