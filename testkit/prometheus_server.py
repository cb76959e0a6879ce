"""A real Prometheus server for integration tests of the deployment kit.

`PrometheusServer` runs Debian's /usr/bin/prometheus as a child process on a free loopback port with a
throw-away TSDB, waits for /-/ready by polling, and answers PromQL through the HTTP API. `tuned_rules()`
copies the shipped alert rules with shorter `for:` durations and thresholds changed only through the
`whmcs:threshold:*` recording rules (the one place the kit keeps them); every alert expression stays
byte-for-byte what ships.

A missing prometheus FAILS the test under CI and skips it locally (testkit.tools).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

from testkit.exporter_process import free_port, stop_process
from testkit.tools import require_tool

T = TypeVar("T")


# ---- configuration -------------------------------------------------------------------------------


def scrape_job(job: str, targets: Iterable[str], interval: str = "1s") -> dict:
    return {"job_name": job, "scrape_interval": interval, "scrape_timeout": interval, "metrics_path": "/metrics",
            "static_configs": [{"targets": list(targets)}]}


def write_config(path: Path, scrape_configs: list[dict], rule_files: Iterable[Path] = (),
                 interval: str = "1s") -> Path:
    document = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": scrape_configs,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


THRESHOLD_PREFIX = "whmcs:threshold:"


def tuned_rules(source: Path, dest: Path, *, for_duration: str = "2s",
                thresholds: dict[str, float] | None = None) -> Path:
    """Copy `source` with every alert's `for:` set to `for_duration` and some thresholds changed.

    `thresholds` maps the part after `whmcs:threshold:` to a new constant; the recording rule's expr
    becomes `vector(N)` (and `le` follows the value for wait_sla_seconds). Nothing else changes: the
    copy's alert expressions are asserted identical to the shipped ones.
    """
    thresholds = dict(thresholds or {})
    shipped = yaml.safe_load(source.read_text())
    doc = copy.deepcopy(shipped)
    seen = set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                rule["for"] = for_duration
            name = rule.get("record", "")
            if name.startswith(THRESHOLD_PREFIX) and name[len(THRESHOLD_PREFIX):] in thresholds:
                key = name[len(THRESHOLD_PREFIX):]
                value = thresholds[key]
                rule["expr"] = f"vector({value:g})"
                if "le" in rule.get("labels", {}):
                    rule["labels"]["le"] = f"{value:g}"
                seen.add(key)
    unknown = set(thresholds) - seen
    assert not unknown, f"no recording rule {THRESHOLD_PREFIX}{', '.join(sorted(unknown))} in {source}"

    def exprs(d: dict) -> dict[str, str]:
        return {r["alert"]: r["expr"] for g in d["groups"] for r in g["rules"] if "alert" in r}

    assert exprs(doc) == exprs(shipped), "tuned_rules must not change alert expressions"
    dest.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return dest


# ---- the server ----------------------------------------------------------------------------------


class PrometheusServer:
    """`PrometheusServer(config).start()`; `.query(expr)`, `.wait_for(...)`, `.firing(...)`; `.stop()`."""

    def __init__(self, config: Path, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix="prometheus-tsdb-")
        self.log_file = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen | None = None
        self.session = requests.Session()

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        binary = require_tool("prometheus")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", "--log.level=warn"],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.session.get(self.base + "/-/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready after {timeout}s:\n{self.log()}")

    def api(self, path: str, **params: str) -> Any:
        response = self.session.get(f"{self.base}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body.get("status") == "success", \
            f"GET /api/v1/{path} {params}: HTTP {response.status_code}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant vector query at now: [{'metric': {...}, 'value': [ts, 'v']}, ...]."""
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return result

    def firing(self, alertname: str, **labels: str) -> list[dict[str, str]]:
        """Label sets of the firing `ALERTS` series of `alertname` whose labels include `labels`."""
        matchers = [f'alertname="{alertname}"', 'alertstate="firing"']
        matchers += [f'{k}="{v}"' for k, v in labels.items()]
        return [r["metric"] for r in self.query("ALERTS{" + ", ".join(matchers) + "}")]

    def active_alerts(self) -> list[dict]:
        """/api/v1/alerts: pending and firing alerts with their annotations."""
        return self.api("alerts")["alerts"]

    def rules(self) -> list[dict]:
        return [r for g in self.api("rules")["groups"] for r in g["rules"]]

    def targets(self) -> list[dict]:
        return self.api("targets")["activeTargets"]

    def wait_for(self, check: Callable[[], T], timeout: float, what: str, interval: float = 0.25,
                 describe: Callable[[], str] | None = None) -> T:
        """Poll `check()` until it returns something truthy; fail with `what` (and `describe()`) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                detail = describe() if describe else ""
                raise AssertionError(f"after {timeout:g}s: {what}\n{detail}")
            time.sleep(interval)

    def log(self) -> str:
        with open(self.log_file.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout)
        self.session.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_file.close()
        os.unlink(self.log_file.name)
