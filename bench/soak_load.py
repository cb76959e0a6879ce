"""Load and soak figures for the real exporter process against the simulator (the runs: testkit/soak_load.py).

    python bench/soak_load.py                     # 50 scrapers x 30 s, 5,000 polls at 10 ms
    python bench/soak_load.py --duration 10 --polls 1000

Load: `concurrency` threads scrape /metrics back to back for `duration`
seconds; then the same threads scrape a static Python HTTP server serving a
body of the same size, so the exporter's p99 is compared with the floor of
the same stack on the same machine in the same run.

Soak: the exporter polls the simulator every `interval` seconds until `polls`
polls are done. After a warm-up, resident memory, threads and open file
descriptors are read from /proc/PID and must not grow. tests/test_soak_load.py
runs both with the same code.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__" and not __package__:
    # Run by path, sys.path starts at bench/ (where bench.py would shadow the bench package) and the
    # repository's testkit is out of reach: run again as the package's module from the repository root.
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.execv(sys.executable, [sys.executable, "-m", "bench.soak_load", *sys.argv[1:]])

from testkit.soak_load import LoadResult, SoakResult, run_load, run_soak


def table(exporter: LoadResult, static: LoadResult, soak: SoakResult, concurrency: int, duration: float) -> str:
    lines = [f"Load: {concurrency} concurrent scrapers x {duration:g} s, keep-alive, body "
             f"{exporter.body_bytes} bytes",
             f"{'target':32} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    for r in (exporter, static):
        lines.append(f"{r.target:32} {r.requests:>9} {r.errors:>7} {r.rps:>8.0f} {r.p50 * 1000:>8.2f} "
                     f"{r.p99 * 1000:>8.2f} {r.max * 1000:>8.2f}")
    lines.append(f"p99 ratio exporter/static: {exporter.p99 / static.p99:.2f} (target <= 3); "
                 f"statuses seen: {sorted(exporter.statuses)}")
    lines.append("")
    lines.append(f"Soak: {soak.polls} polls in {soak.seconds:.0f} s ({soak.api_calls} API calls, "
                 f"{soak.failed_polls} failed polls)")
    lines.append(f"{'':12} {'RSS MB':>8} {'threads':>8} {'fds':>5}")
    for label, st in (("after warm-up", soak.warm), ("end", soak.end)):
        lines.append(f"{label:12} {st['rss_kb'] / 1024:>8.1f} {st['threads']:>8} {st['fds']:>5}")
    lines.append(f"RSS growth after warm-up: {soak.rss_growth_kb / 1024:+.2f} MB (limit 5 MB); "
                 f"peak {soak.peak_rss_kb / 1024:.1f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per target (default 30)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent scrapers (default 50)")
    parser.add_argument("--polls", type=int, default=5000, help="polls in the soak (default 5000)")
    parser.add_argument("--interval", default="10ms", help="poll_interval during the soak (default 10ms)")
    args = parser.parse_args(argv)
    exporter, static = run_load(args.duration, args.concurrency)
    soak = run_soak(args.polls, args.interval)
    print(table(exporter, static, soak, args.concurrency, args.duration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
