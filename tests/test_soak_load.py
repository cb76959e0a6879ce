"""Load and soak of the real exporter process (the code of testkit/soak_load.py, slightly smaller runs).

Load: 50 concurrent scrapers; every scrape answers 200 and the exporter's p99
stays within 3x of a static server of the same body size measured in the same
run. Soak: 2,000 polls at a 10 ms interval with every collector enabled; after
warm-up resident memory grows by less than 5 MB and threads and file
descriptors do not grow at all. `python bench/soak_load.py` runs the full
size (30 s, 5,000 polls) and prints the table.
"""

from __future__ import annotations

import pytest

from testkit.soak_load import run_load, run_soak

pytestmark = [pytest.mark.slow, pytest.mark.process]


def test_fifty_concurrent_scrapers():
    exporter, static = run_load(duration=15.0, concurrency=50)
    print(f"\nexporter p50 {exporter.p50 * 1000:.1f} ms p99 {exporter.p99 * 1000:.1f} ms "
          f"({exporter.requests} scrapes); static p50 {static.p50 * 1000:.1f} ms p99 {static.p99 * 1000:.1f} ms")
    assert exporter.errors == 0 and exporter.statuses == {200}
    assert static.errors == 0 and static.statuses == {200}
    assert exporter.requests >= 50 * 10  # every scraper got many answers, none starved
    assert exporter.p99 <= 3 * static.p99, (exporter.p99, static.p99)


def test_soak_memory_threads_and_fds_stay_flat():
    soak = run_soak(polls=2000, interval="10ms", warmup=400)
    print(f"\nsoak {soak.polls} polls, {soak.failed_polls} failed, RSS growth {soak.rss_growth_kb} kB, "
          f"threads {soak.warm['threads']}->{soak.end['threads']}, fds {soak.warm['fds']}->{soak.end['fds']}")
    assert soak.polls >= 2000
    assert soak.failed_polls == 0
    assert soak.rss_growth_kb < 5 * 1024
    assert soak.end["threads"] <= soak.warm["threads"]
    assert soak.end["fds"] <= soak.warm["fds"]
    # Not just the ends: no reading after warm-up had more threads or fds than the warm-up reading.
    assert max(st["threads"] for _, st in soak.samples) <= soak.warm["threads"]
    assert max(st["fds"] for _, st in soak.samples) <= soak.warm["fds"]
