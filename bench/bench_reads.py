"""What the shared list reads cost WHMCS: calls per poll by collector and by list, calls per minute at a 15 s
poll, and the measured crossover between reading the awaiting list whole and reading it by position.

In-process (testkit/bench_calls.py: the real client and collectors against the simulator over HTTP, the
poller's clock moved by hand), every collector on, no SLA. "warm" = the first-response cache filled (no
HTTP) and the list positions of the last poll known, as in a process that has run for a while.

Run: python -m bench.bench_reads [--sizes 100,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from testkit.bench_calls import Bench
from testkit.bench_world import AWAITING_SHARE

INTERVAL_15S = 15.0
TRAFFIC_PER_MINUTE = 30  # new tickets, staff and customer replies


def warm(tickets: int, interval: float, traffic: int, polls: int, **settings: Any) -> list[dict[str, Any]]:
    """`polls` warm polls `interval` apart with `traffic` events before each."""
    bench = Bench.start(tickets, time.time() - 3600, **settings)
    try:
        bench.poll()
        bench.warm_first_response()
        out = []
        for _ in range(polls + 1):
            bench.now += interval
            bench.traffic(traffic)
            out.append(bench.poll().as_json())
        return out[1:]  # the first one after the warm-up still reads the lists the warm-up left new
    finally:
        bench.stop()


def per_poll(tickets: int) -> dict[str, Any]:
    quiet = warm(tickets, 60.0, 0, 2)[-1]
    busy = warm(tickets, 60.0, TRAFFIC_PER_MINUTE, 2)[-1]
    return {"tickets": tickets, "awaiting": int(tickets * AWAITING_SHARE), "quiet": quiet, "traffic_30": busy}


def per_minute(tickets: int) -> dict[str, Any]:
    polls = warm(tickets, INTERVAL_15S, round(TRAFFIC_PER_MINUTE * INTERVAL_15S / 60), 4)
    return {"tickets": tickets, "interval": INTERVAL_15S, "calls_per_minute": sum(p["total"] for p in polls),
            "per_poll": [p["total"] for p in polls]}


def crossover(tickets: int) -> dict[str, Any]:
    """The backlog collectors' calls with the awaiting list read whole vs by position (warm, no traffic)."""
    row: dict[str, Any] = {"tickets": tickets, "awaiting": int(tickets * AWAITING_SHARE)}
    for name, limit in (("whole", 10**6), ("by_position", 0)):
        poll = warm(tickets, 60.0, 0, 1, whole_list_max_tickets=limit)[-1]
        by = poll["by_collector"]
        row[name] = sum(by.get(c, 0) for c in ("oldest_awaiting", "departments", "wait_distribution"))
    return row


def report(results: dict[str, Any]) -> str:
    lines = ["Warm calls per poll, every collector on, no SLA (quiet = no traffic; busy = 30 events per poll)",
             "| tickets | awaiting | quiet | busy | by collector (busy) | GetTickets by list (busy) |",
             "| ---: | ---: | ---: | ---: | --- | --- |"]
    for r in results["per_poll"]:
        busy = r["traffic_30"]
        collectors = " ".join(f"{k}={sum(v.values())}" for k, v in busy["by_view_action"].items())
        lists = " ".join(f"{k}={v}" for k, v in busy["by_list"].items())
        lines.append(f"| {r['tickets']:,} | {r['awaiting']:,} | {r['quiet']['total']} | {busy['total']} | "
                     f"{collectors} | {lists} |")
    m = results["per_minute"]
    lines += ["", f"Calls per minute at a {m['interval']:g} s poll, {m['tickets']:,} tickets, "
              f"{TRAFFIC_PER_MINUTE} events per minute: {m['calls_per_minute']} (per poll {m['per_poll']})", "",
              "oldest_awaiting + departments + wait_distribution, warm: awaiting list whole vs by position",
              "| tickets | awaiting | whole | by position |", "| ---: | ---: | ---: | ---: |"]
    for r in results["crossover"]:
        lines.append(f"| {r['tickets']:,} | {r['awaiting']:,} | {r['whole']} | {r['by_position']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 10_000, 100_000])
    parser.add_argument("--crossover", type=lambda s: [int(x) for x in s.split(",")],
                        default=[5_000, 10_000, 25_000, 50_000, 100_000])
    parser.add_argument("--json", action="store_true", help="print the JSON results too")
    args = parser.parse_args(argv)
    results = {"per_poll": [per_poll(n) for n in args.sizes], "per_minute": per_minute(10_000),
               "crossover": [crossover(n) for n in args.crossover]}
    if args.json:
        print(json.dumps(results, indent=1))
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
