"""Closed-loop scrape load: N threads, each with its own keep-alive requests.Session, for D seconds.

Run as `python -m bench.bench_load URL CONCURRENCY SECONDS` in its own process (so it shares no
interpreter lock with the simulator); prints JSON: a list of [start unix time, latency seconds].
"""

from __future__ import annotations

import json
import sys
import threading
import time

import requests


def run(url: str, concurrency: int, seconds: float) -> list[tuple[float, float]]:
    results: list[tuple[float, float]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency)
    stop_at: list[float] = []

    def worker() -> None:
        session = requests.Session()
        _ = session.get(url, timeout=30).content  # connect and warm up outside the measurement
        mine: list[tuple[float, float]] = []
        barrier.wait()
        if not stop_at:
            stop_at.append(time.monotonic() + seconds)
        while time.monotonic() < stop_at[0]:
            wall, started = time.time(), time.perf_counter()
            response = session.get(url, timeout=30)
            response.content  # noqa: B018 - read the whole body
            mine.append((wall, time.perf_counter() - started))
            if response.status_code != 200:
                raise SystemExit(f"HTTP {response.status_code} from {url}")
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    url, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    json.dump(run(url, concurrency, seconds), sys.stdout)


if __name__ == "__main__":
    main()
