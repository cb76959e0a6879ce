"""Shared set-up of the reliability tests: a simulator in this process, the real exporter as a child.

Polls are fast (0.5 s) and timeouts short so each fault shows within a second or two.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from exporter.simulator import Simulator
from testkit.exporter_process import ExporterProcess, Samples, write_config

NAME = "w"
# A deadline far beyond the interval: these tests count calls per poll, which a deadline hit under load would vary.
FAST = {"poll_interval": "0.5s", "poll_deadline": "10s", "timeout": "0.3s", "max_age": "2s"}


def installation(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    """A config entry for `sim` with API credentials and fast polling; `overrides` replace any key."""
    entry: dict[str, Any] = {"name": NAME, "url": sim.url, "api_identifier": sim.identifier,
                             "api_secret": sim.secret, "timezone": sim.world.tz_name, **FAST}
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def start(directory: str, installations: list[dict[str, Any]], args: Iterable[str] = (),
          ready: bool = True, **kwargs: Any) -> ExporterProcess:
    path = write_config(directory, installations)
    proc = ExporterProcess([f"--config.file={path}", *args], **kwargs)
    if ready:
        try:
            proc.wait_ready()
        except BaseException:
            proc.stop()
            raise
    return proc


def write_secret(directory: str, name: str, value: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return path


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    return samples.get(metric, whmcs=NAME, **labels)


def up(samples: Samples) -> float | None:
    return value(samples, "whmcs_up")


def polls(samples: Samples) -> float:
    return value(samples, "whmcs_exporter_polls_total") or 0.0


def failures(samples: Samples, reason: str, action: str | None = None) -> float:
    """Sum of api_request_failures_total for `reason` (and `action`)."""
    labels = {"reason": reason, **({"action": action} if action else {})}
    return sum(samples.select("whmcs_exporter_api_request_failures_total", whmcs=NAME, **labels).values())


def has_tickets(samples: Samples) -> bool:
    return value(samples, "whmcs_tickets_active") is not None


def after_polls(proc: ExporterProcess, n: int, condition: Callable[[Samples], bool] = lambda s: True,
                timeout: float = 20.0) -> Samples:
    """Wait until `n` more polls have completed (and `condition` holds)."""
    start_polls = polls(proc.scrape())
    return proc.wait_for(lambda s: polls(s) >= start_polls + n and condition(s), timeout=timeout)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met after {timeout}s")
        time.sleep(0.05)
