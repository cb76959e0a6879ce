"""Running the real exporter as a child process on loopback, and reading what it serves.

Integration tests use this to treat the exporter as a black box: start it with a
config or environment, wait until it is ready, scrape /metrics, read its log.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Samples:
    """Parsed /metrics: (name, labels) -> value."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Samples:
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return cls(values, text)

    def get(self, name: str, **labels: str) -> float | None:
        return self.values.get((name, tuple(sorted(labels.items()))))

    def select(self, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
        """All samples of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return {lab: v for (n, lab), v in self.values.items() if n == name and wanted <= set(lab)}

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of every sample of `name` whose labels include `labels` (None when there is none): a
        histogram split by department and priority, summed for the whole desk."""
        found = self.select(name, **labels)
        return sum(found.values()) if found else None

    def names(self) -> set[str]:
        return {n for n, _ in self.values}


class ExporterProcess:
    def __init__(self, args: list[str], env: Mapping[str, str] | None = None, port: int | None = None,
                 scheme: str = "http", wrapper: Sequence[str] = ()) -> None:
        """`wrapper` goes before the interpreter, e.g. `["prlimit", "--nofile=1024"]`."""
        self.port = port or free_port()
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.log_file = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        # Each process gets its own state directory unless the test names one: `data/` under the working
        # directory would be shared by every test (and locked by the first).
        self.own_storage = None
        if not any(a.startswith("--storage.path") for a in args):
            self.own_storage = tempfile.mkdtemp(prefix="exporter-state-")
            args = [*args, f"--storage.path={self.own_storage}"]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("WHMCS_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "exporter", f"--web.listen-address=127.0.0.1:{self.port}", *args],
            env=full_env, stdout=self.log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 20.0, path: str = "/readyz", **kwargs) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.base + path, timeout=2, **kwargs).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"exporter not ready after {timeout}s:\n{self.log()}")

    def scrape(self, **kwargs) -> Samples:
        response = requests.get(self.base + "/metrics", timeout=5, **kwargs)
        assert response.status_code == 200, response.text
        return Samples.parse(response.text)

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.1) -> Samples:
        """Scrape until `predicate(samples)` is true; every scrape must answer 200."""
        self.wait_ready(timeout, path="/healthz")
        deadline = time.monotonic() + timeout
        samples = self.scrape()
        while not predicate(samples):
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met after {timeout}s; last scrape:\n{samples.text}\n"
                                     f"log:\n{self.log()}")
            time.sleep(interval)
            samples = self.scrape()
        return samples

    def log(self) -> str:
        with open(self.log_file.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self, timeout: float = 10.0) -> int:
        return stop_process(self.proc, timeout)

    def __enter__(self) -> ExporterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        os.unlink(self.log_file.name)
        if self.own_storage is not None:
            shutil.rmtree(self.own_storage, ignore_errors=True)


def stop_process(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def write_config(directory: str, installations: list[dict]) -> str:
    path = os.path.join(directory, "config.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"installations": installations}, handle, allow_unicode=True)
    return path
