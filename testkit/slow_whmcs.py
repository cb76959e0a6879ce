"""A slow WHMCS in-process, on a fake clock: the simulator's API functions behind a client whose every call
advances the clock by the world's latency, and scrapes rendered at any simulated moment.

Used by the deadline tests and the deadline benchmark: a poll at 2 s per call takes 30 simulated seconds and a
fraction of a real one, so hundreds of polls of a 100,000-ticket desk fit in a test.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.poller import InstallationPoller
from exporter.render import SnapshotRenderer
from exporter.simulator import World
from exporter.snapshot import SnapshotStore
from testkit.bench_calls import DirectClient
from testkit.exporter_process import Samples
from testkit.in_process import Clock

START = 1_760_000_000.0


class FakeClock(Clock):
    """The settable clock, also the world's `sleep`: a call's latency moves it on."""

    def __init__(self, t: float = START) -> None:
        super().__init__(t)

    def advance(self, seconds: float) -> None:
        self.t += seconds


class SlowDesk:
    """A simulated desk of `tickets` tickets answering every call in `latency` simulated seconds, one poller."""

    def __init__(self, tickets: int, latency: float, interval: float, seed: int = 5, **config: Any) -> None:
        self.clock = FakeClock()
        self.world = World.generate(seed=seed, tickets=tickets, now=self.clock.t, tz="UTC", clock=self.clock)
        self.world.latency, self.world.sleep = latency, self.clock.advance
        self.installation = InstallationConfig(
            name="desk", url="http://whmcs.example", auth=ApiCredentials(Secret("i"), Secret("s")),
            poll_interval=interval, max_age=3 * interval, **config)
        self.store = SnapshotStore()
        self.poller = InstallationPoller(self.installation, self.store, client=DirectClient(self.world),
                                         clock=self.clock)
        self.registry = CollectorRegistry()
        self.registry.register(SnapshotRenderer(self.store, lambda name: 100_000, clock=self.clock))

    def poll(self) -> tuple[float, float]:
        """One poll at the current simulated time: (its start, its simulated duration)."""
        start = self.clock.t
        self.poller.poll_once()
        return start, self.clock.t - start

    def scrape(self) -> Samples:
        return Samples.parse(generate_latest(self.registry).decode())


def core_mismatches(samples: Samples, world: World, whmcs: str = "desk") -> list[str]:
    """What differs between the core series of a scrape and the simulator's truth at the scrape's reference
    time (the start of the poll it shows); empty when every core series is present and exact."""
    reference = samples.get("whmcs_exporter_last_poll_timestamp_seconds", whmcs=whmcs)
    if reference is None:
        return ["no poll yet"]
    truth = world.truth(reference)
    got = {
        "status_counts": {dict(lab)["status"]: v for lab, v in samples.select("whmcs_tickets", whmcs=whmcs).items()},
        "active": samples.get("whmcs_tickets_active", whmcs=whmcs),
        "awaiting": samples.get("whmcs_tickets_awaiting_reply", whmcs=whmcs),
        "flagged": samples.get("whmcs_tickets_flagged", whmcs=whmcs),
        "oldest_awaiting_age": samples.get("whmcs_ticket_oldest_awaiting_reply_age_seconds", whmcs=whmcs),
    }
    problems = [f"{key}: {value!r} != {truth[key]!r}" for key, value in got.items()
                if value is None or (value != truth[key] if key != "oldest_awaiting_age"
                                     else abs(value - truth[key]) > 1e-3)]
    for name, dept in truth["departments"].items():
        for metric, key in (("whmcs_department_tickets_awaiting_reply", "awaiting"),
                            ("whmcs_department_tickets_active", "active"),
                            ("whmcs_department_oldest_awaiting_reply_age_seconds", "oldest_awaiting_age")):
            value = samples.get(metric, whmcs=whmcs, department=name)
            if value is None or abs(value - dept[key]) > 1e-3:
                problems.append(f"{metric}{{department={name!r}}}: {value!r} != {dept[key]!r}")
    return problems
