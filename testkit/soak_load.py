"""Load and soak runs of the real exporter process against the simulator (`python bench/soak_load.py` prints
their table; tests/test_soak_load.py asserts on slightly smaller runs of the same code).

Load: `concurrency` threads scrape /metrics back to back for `duration` seconds; then the same threads
scrape the static baseline server (testkit.static_server) serving a body of the same size, so the
exporter's p99 is compared with the floor of the same stack on the same machine in the same run.

Soak: the exporter polls the simulator every `interval` seconds (with every collector enabled a poll takes
longer than 10 ms, so polls run back to back and the overrun path is exercised too) until `polls` polls are
done. After a warm-up, resident memory, threads and open file descriptors are read from /proc/PID.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field

import requests

from exporter.simulator import Simulator
from testkit.bench_proc import proc_status
from testkit.exporter_process import ExporterProcess, Samples, write_config
from testkit.reliability import installation
from testkit.static_server import start_static_server

# -- load ----------------------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    target: str
    requests: int
    errors: int
    statuses: set[int]
    p50: float
    p99: float
    max: float
    rps: float
    body_bytes: int


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def hammer(url: str, duration: float, concurrency: int, target: str) -> LoadResult:
    """`concurrency` keep-alive clients scrape `url` back to back for `duration` seconds."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: set[int] = set()
    errors = [0]
    body_bytes = [0]
    barrier = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def client(mine: list[float]) -> None:
        with requests.Session() as session:
            barrier.wait()
            while time.monotonic() < stop_at[0]:
                started = time.perf_counter()
                try:
                    response = session.get(url, timeout=10)
                    mine.append(time.perf_counter() - started)
                    statuses.add(response.status_code)
                    body_bytes[0] = len(response.content)
                except requests.RequestException:
                    errors[0] += 1

    threads = [threading.Thread(target=client, args=(latencies[i],)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + duration
    barrier.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    merged = [x for per in latencies for x in per]
    return LoadResult(target=target, requests=len(merged), errors=errors[0], statuses=statuses,
                      p50=percentile(merged, 0.50), p99=percentile(merged, 0.99), max=max(merged, default=0.0),
                      rps=len(merged) / elapsed, body_bytes=body_bytes[0])


def exporter_config(directory: str, sim: Simulator, poll_interval: str, timeout: str) -> str:
    return write_config(directory, [installation(sim, name="bench", poll_interval=poll_interval, timeout=timeout,
                                                 max_age="1h")])


def run_load(duration: float = 30.0, concurrency: int = 50, tickets: int = 500) -> tuple[LoadResult, LoadResult]:
    """(exporter, static) figures for the same client load."""
    with tempfile.TemporaryDirectory() as directory, Simulator(tickets=tickets) as sim:
        config = exporter_config(directory, sim, "5s", "2s")
        with ExporterProcess([f"--config.file={config}"]) as proc:
            proc.wait_ready()
            size = len(requests.get(proc.base + "/metrics", timeout=5).content)
            exporter = hammer(proc.base + "/metrics", duration, concurrency, "exporter /metrics")
            assert proc.proc.poll() is None, proc.log()
        static_proc, url = start_static_server(size)
        try:
            static = hammer(url, duration, concurrency, "static server, same body size")
        finally:
            static_proc.terminate()
            static_proc.wait(10)
    return exporter, static


# -- soak ----------------------------------------------------------------------------------------------------

@dataclass
class SoakResult:
    polls: int
    failed_polls: int
    seconds: float
    api_calls: int
    warm: dict[str, int]
    end: dict[str, int]
    peak_rss_kb: int
    samples: list[tuple[int, dict[str, int]]] = field(default_factory=list)

    @property
    def rss_growth_kb(self) -> int:
        return self.end["rss_kb"] - self.warm["rss_kb"]


def run_soak(polls: int = 5000, interval: str = "10ms", warmup: int = 500, tickets: int = 100) -> SoakResult:
    with tempfile.TemporaryDirectory() as directory, Simulator(tickets=tickets) as sim:
        config = exporter_config(directory, sim, interval, "1s")
        with ExporterProcess([f"--config.file={config}"]) as proc:
            proc.wait_ready()
            pid = proc.proc.pid

            def count(s: Samples) -> int:
                return int(s.get("whmcs_exporter_polls_total", whmcs="bench") or 0)

            started = time.monotonic()
            s = proc.wait_for(lambda s: count(s) >= warmup, timeout=600, interval=1.0)
            # Readings are taken a second after the last scrape, when its connection's thread has ended.
            time.sleep(1.0)
            warm = proc_status(pid)
            samples = [(count(s), warm)]
            peak = warm["rss_kb"]
            while count(s) < polls:
                s = proc.scrape()  # one scrape a second, like a busy Prometheus
                time.sleep(1.0)
                status = proc_status(pid)
                peak = max(peak, status["rss_kb"])
                samples.append((count(s), status))
                assert proc.proc.poll() is None, proc.log()
            end = samples[-1][1]
            failed = int(s.get("whmcs_exporter_poll_failures_total", whmcs="bench") or 0)
            calls = int(sum(s.select("whmcs_exporter_api_requests_total", whmcs="bench").values()))
            return SoakResult(polls=count(s), failed_polls=failed, seconds=time.monotonic() - started,
                              api_calls=calls, warm=warm, end=end, peak_rss_kb=peak, samples=samples)
