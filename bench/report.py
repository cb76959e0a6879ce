"""The Markdown tables that `python bench/bench.py` prints from its JSON results."""

from __future__ import annotations

from typing import Any


def warm_report(w: dict[str, Any]) -> str:
    return "\n".join([
        f"Warm exporter process at {w['tickets']:,} tickets (first-response cache full: coverage "
        f"{w['coverage']:g}, {w['window_tickets_known']:,} tickets of the window known)",
        "| filled with | fill | RSS at coverage 1 | steady RSS (after polls with traffic) | peak (VmHWM) | "
        "CPU per steady poll | last steady poll |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {w['budget']} GetTicket per poll, 1 s interval | {w['fill_polls']} polls, {w['fill_seconds']:.0f} s | "
        f"{w['at_coverage_1']['VmRSS_mb']:.1f} MB | {w['steady']['VmRSS_mb']:.1f} MB ({w['steady']['polls']} polls, "
        f"{w['traffic_per_poll']} events each) | {w['steady']['VmHWM_mb']:.1f} MB | "
        f"{w['steady']['cpu_s_per_poll']:.3f} s | {fmt_actions(w['steady']['last_poll_actions'])} |",
    ])


def fmt_actions(actions: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in actions.items())


def report(results: dict[str, Any], latency: float, concurrency: tuple[int, ...]) -> str:
    """The tables of a run over desk sizes; `latency` per call of the latency runs, `concurrency` scraper counts."""
    lines = []
    sizes = results["sizes"]
    add = lines.append
    add(f"traffic: {results['traffic_per_poll']} events per poll interval (new tickets, staff replies, customer "
        f"replies); latency runs: {latency * 1e3:g} ms per call")
    add("")
    add("API calls per poll (every collector enabled)")
    add("| tickets | first poll | next polls (first-response catch-up) | warm steady | steady: wait_distribution "
        "| steady: other collectors | catch-up polls |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in sizes:
        c = r["calls"]
        steady = c["steady"][-1]
        wd = steady["by_collector"].get("wait_distribution", 0)
        add(f"| {r['tickets']:,} | {c['first']['total']} | {c['second']['total']} | {steady['total']} | {wd} | "
            f"{steady['total'] - wd} | {c['catch_up_polls']} |")
    add("")
    add("Warm steady poll by collector (calls)")
    collectors = list(sizes[0]["calls"]["steady"][-1]["by_collector"])
    add("| tickets | " + " | ".join(collectors) + " |")
    add("| ---: |" + " ---: |" * len(collectors))
    for r in sizes:
        steady = r["calls"]["steady"][-1]["by_collector"]
        add(f"| {r['tickets']:,} | " + " | ".join(str(steady.get(v, 0)) for v in collectors) + " |")
    add("")
    add("Warm steady poll: GetTickets calls by the list they read (each list page read once per poll, shared)")
    lists = sorted({name for r in sizes for name in r["calls"]["steady"][-1].get("by_list", {})})
    add("| tickets | " + " | ".join(lists) + " |")
    add("| ---: |" + " ---: |" * len(lists))
    for r in sizes:
        by_list = r["calls"]["steady"][-1].get("by_list", {})
        add(f"| {r['tickets']:,} | " + " | ".join(str(by_list.get(name, 0)) for name in lists) + " |")
    add("")
    add("Real process: calls by action as the simulator saw them")
    add("| tickets | first poll | next poll |")
    add("| ---: | --- | --- |")
    for r in sizes:
        p = r["process"]
        add(f"| {r['tickets']:,} | {fmt_actions(p['first_poll']['actions'])} | "
            f"{fmt_actions(p['next_polls']['actions'][-1])} |")
    add("")
    add(f"Poll wall time with {latency * 1e3:g} ms per call")
    add("| tickets | first poll (process) | next poll (process) | warm steady (in-process) "
        "| warm steady calls x 50 ms |")
    add("| ---: | ---: | ---: | ---: | ---: |")
    for r in sizes:
        lat = r.get("latency") or {}
        steady = r["calls"]["steady"][-1]
        first = lat.get("first", {})
        nxt = lat.get("next", {})
        add(f"| {r['tickets']:,} | {first.get('seconds', float('nan')):.2f} s ({first.get('calls', 0):.0f} calls) | "
            f"{nxt.get('seconds', float('nan')):.2f} s ({nxt.get('calls', 0):.0f} calls) | {steady['seconds']:.2f} s | "
            f"{steady['total'] * latency:.2f} s |")
    add("")
    add("CPU and memory of the exporter process")
    add("| tickets | first poll CPU (incl. start) | CPU per next poll | peak RSS (VmHWM) | RSS after polls | "
        "RSS after scrapes |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in sizes:
        p = r["process"]
        add(f"| {r['tickets']:,} | {p['first_poll']['cpu_s_incl_startup']:.2f} s | "
            f"{p['next_polls']['cpu_s_per_poll']:.3f} s | {p['memory']['peak_VmHWM_mb']:.1f} MB | "
            f"{p['memory']['after_polls_VmRSS_mb']:.1f} MB | {p['memory']['after_scrapes_VmRSS_mb']:.1f} MB |")
    add("")
    add("/metrics latency, exporter vs static baselines of the same size (ms). The exporter's handler disables "
        "Nagle, so the like-for-like baseline is the static server with TCP_NODELAY: ratio = exporter p99 / "
        "NODELAY p99. quiet = scrapes that did not overlap a poll (n = how many). The http.server-defaults "
        "baseline (Nagle on, ~44 ms delayed-ACK stall) is kept for reference.")
    add("| tickets | body | scrapers | exporter p50 | exporter p99 | quiet p99 (n) | NODELAY p50 | NODELAY p99 | "
        "p99 ratio | quiet p99 ratio | defaults p50 | defaults p99 |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in sizes:
        s = r["process"]["scrape"]
        for conc in concurrency:
            x = s[str(conc)]
            e, b, n = x["exporter"], x["static"], x["static_nodelay"]
            add(f"| {r['tickets']:,} | {s['body_bytes']:,} B | {conc} | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | "
                f"{e['quiet_p99_ms']:.2f} ({e['quiet_n']}) | {n['p50_ms']:.2f} | {n['p99_ms']:.2f} | "
                f"{e['p99_ms'] / n['p99_ms']:.2f} | {e['quiet_p99_ms'] / n['p99_ms']:.2f} | {b['p50_ms']:.2f} | "
                f"{b['p99_ms']:.2f} |")
    return "\n".join(lines)
