"""Load and soak figures for the real exporter process against the simulator.

    python bench/soak_load.py                     # 50 scrapers x 30 s, 5,000 polls at 10 ms
    python bench/soak_load.py --duration 10 --polls 1000

Load: `concurrency` threads scrape /metrics back to back for `duration`
seconds; then the same threads scrape a static Python HTTP server serving a
body of the same size, so the exporter's p99 is compared with the floor of
the same stack on the same machine in the same run.

Soak: the exporter polls the simulator every `interval` seconds (with every
collector enabled a poll takes longer than 10 ms, so polls run back to back and
the overrun path is exercised too) until `polls` polls are done. After a
warm-up, resident memory, threads and open file descriptors are read from
/proc/PID and must not grow. tests/test_soak_load.py runs both with the same
code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from exporter.simulator import Simulator  # noqa: E402
from tests.exporter_process import ExporterProcess, Samples, free_port, write_config  # noqa: E402

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


STATIC_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
body = b"x" * int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def start_static_server(size: int) -> tuple[subprocess.Popen, str]:
    """The same stdlib server stack as the exporter, serving `size` fixed bytes, in its own process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STATIC_SERVER, str(port), str(size)])
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("static server did not start")


def exporter_config(directory: str, sim: Simulator, poll_interval: str, timeout: str) -> str:
    return write_config(directory, [{
        "name": "bench", "url": sim.url, "api_identifier": sim.identifier, "api_secret": sim.secret,
        "timezone": sim.world.tz_name, "poll_interval": poll_interval, "timeout": timeout, "max_age": "1h"}])


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

def proc_status(pid: int) -> dict[str, int]:
    """RSS in kB, threads and open file descriptors of a process, from /proc."""
    rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rss_kb": rss, "threads": len(os.listdir(f"/proc/{pid}/task")),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


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


# -- report --------------------------------------------------------------------------------------------------

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
