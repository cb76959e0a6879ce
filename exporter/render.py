"""Rendering snapshots: snapshot -> metric families, fresh on every scrape.

A prometheus_client custom collector: `collect()` reads the published
snapshots (no lock, no I/O) and builds new families each time, so a scrape
never blocks on WHMCS and never shows half a poll. Ticket series older than
an installation's max age are left out; the exporter's own metrics stay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import __version__
from exporter.cuts import CutCounter
from exporter.families import CapReport, FamilySink
from exporter.snapshot import CollectorState, InstallationSnapshot, SnapshotStore

log = logging.getLogger(__name__)

HELP_UP = "1 if the exporter's last poll of this WHMCS installation succeeded, else 0."
HELP_SUCCESS = ("1 if this collector's last poll succeeded, else 0 (deferred by the poll's deadline is not failed). "
                "A failed collector's series go stale and vanish after the max age while the others stay fresh.")
HELP_LAST_SUCCESS = "Unix time of the last successful poll (the reference time of every age it exported)."
HELP_LAST_POLL = "Unix time of the last poll attempt, successful or not."
HELP_DURATION = "How long the last poll took, in seconds."
HELP_POLL_CALLS = "WHMCS API calls made by the last poll (each call is a full admin login in WHMCS)."
HELP_POLLS = "Polls attempted."
HELP_POLL_FAILURES = "Polls that failed (whmcs_up was 0 afterwards)."
HELP_REQUESTS = "WHMCS API calls made, by action."
HELP_FAILURES = ("Failed WHMCS API calls, by action and reason (auth, permission, http, timeout, connection, "
              "invalid_response, api_error, rate_limited, unsupported).")
HELP_BACKOFF = ("1 while polling is paused: reason=auth after an authentication failure (WHMCS bans an IP after 3 "
             "failed logins in 30 minutes), reason=rate_limit after 429/503 answers.")
HELP_NEXT = "Unix time of the next planned poll."
HELP_SAMPLE = ("Share of the tickets a collector read to compute its numbers (1 = complete, below 1 = sampled or "
               "still being read; first_response: the share of the response window whose replies are known).")
HELP_COLLECTOR_DURATION = "How long the collector took in the last poll, in seconds."
HELP_COLLECTOR_LAST_SUCCESS = ("Unix time at which the collector's last successful answers arrived; its series go "
                               "stale max_age after it.")
HELP_COLLECTOR_SERIES = ("Series this collector exports on this scrape; 0 when its part is missing, stale, empty or "
                         "cut by max_series (its metrics are absent although the collector is enabled).")
HELP_COLLECTOR_DEFERRED = ("1 when the last poll's deadline (poll_deadline) left this collector's work for the next "
                           "poll; its previous numbers stay until they are stale. Not a failure.")
HELP_BUILD = "Build information of whmcs-ticket-exporter; always 1."


class SnapshotRenderer:
    """A prometheus_client custom collector that renders the published snapshots on every scrape."""

    def __init__(self, store: SnapshotStore, max_series: Callable[[str], int],
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.max_series = max_series
        self.clock = clock
        self._cuts = CutCounter()

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        snapshots = self.store.all()
        sink = FamilySink()
        reports: dict[str, CapReport] = {}
        for snap in snapshots:
            sink.start_installation(self.max_series(snap.name))
            for name, part in snap.fresh_parts(now):
                sink.start_part(name)
                try:
                    part.families(sink)
                except Exception:  # a rendering bug must cost one part, never the scrape
                    log.exception("whmcs=%s: cannot render collector %s", snap.name, name)
            reports[snap.name] = report = sink.finish_installation()
            self._cuts.count(snap, report, self.max_series(snap.name))
        yield from sink.families()
        yield from self._exporter_families(snapshots, now)
        yield from self._cuts.families(snapshots, reports)
        yield from _collector_series(snapshots, reports)

    def describe(self) -> list[Metric]:
        return []  # families vary with the data: tell the registry not to call collect() at registration

    def _exporter_families(self, snapshots: list[InstallationSnapshot], now: float) -> Iterator[Metric]:
        for name, family, documentation, value in _PER_INSTALLATION:
            metric = family(name, documentation, labels=["whmcs"])
            for snap in snapshots:
                if (number := value(snap)) is not None:
                    metric.add_metric([snap.name], number)
            yield metric
        for name, documentation, value in _PER_COLLECTOR:
            metric = GaugeMetricFamily(name, documentation, labels=["whmcs", "collector"])
            for snap in snapshots:
                for collector, state in sorted(snap.collectors.items()):
                    if (number := value(state)) is not None:
                        metric.add_metric([snap.name, collector], number)
            yield metric
        yield from _call_families(snapshots, now)
        build = GaugeMetricFamily("whmcs_exporter_build_info", HELP_BUILD, labels=["version"])
        build.add_metric([__version__], 1.0)
        yield build


def _call_families(snapshots: list[InstallationSnapshot], now: float) -> Iterator[Metric]:
    """API calls by action, failures by action and reason, and the back-off in force."""
    requests = CounterMetricFamily("whmcs_exporter_api_requests", HELP_REQUESTS, labels=["whmcs", "action"])
    failures = CounterMetricFamily("whmcs_exporter_api_request_failures", HELP_FAILURES,
                                   labels=["whmcs", "action", "reason"])
    backoff = GaugeMetricFamily("whmcs_exporter_backoff", HELP_BACKOFF, labels=["whmcs", "reason"])
    for snap in snapshots:
        for action, count in sorted(snap.requests.items()):
            requests.add_metric([snap.name, action], count)
        for (action, reason), count in sorted(snap.failures.items()):
            failures.add_metric([snap.name, action, reason], count)
        paused = snap.backoff_until is not None and snap.backoff_until > now
        for reason in ("auth", "rate_limit"):
            backoff.add_metric([snap.name, reason], 1.0 if paused and snap.backoff_reason == reason else 0.0)
    yield from (requests, failures, backoff)


# (name, family, HELP, value of one installation's snapshot; None leaves its sample out)
_PER_INSTALLATION: tuple[tuple[str, type, str, Callable[[InstallationSnapshot], float | None]], ...] = (
    ("whmcs_up", GaugeMetricFamily, HELP_UP, lambda s: 1.0 if s.up else 0.0),
    ("whmcs_exporter_last_poll_success_timestamp_seconds", GaugeMetricFamily, HELP_LAST_SUCCESS,
     lambda s: s.last_success_time),
    ("whmcs_exporter_last_poll_timestamp_seconds", GaugeMetricFamily, HELP_LAST_POLL, lambda s: s.last_poll_time),
    ("whmcs_exporter_poll_duration_seconds", GaugeMetricFamily, HELP_DURATION, lambda s: s.poll_duration),
    ("whmcs_exporter_poll_api_calls", GaugeMetricFamily, HELP_POLL_CALLS, lambda s: s.poll_api_calls),
    ("whmcs_exporter_polls", CounterMetricFamily, HELP_POLLS, lambda s: s.polls),
    ("whmcs_exporter_poll_failures", CounterMetricFamily, HELP_POLL_FAILURES, lambda s: s.poll_failures),
    ("whmcs_exporter_next_poll_timestamp_seconds", GaugeMetricFamily, HELP_NEXT, lambda s: s.next_poll_time),
)

# (name, HELP, value of one collector's state; None leaves its sample out), labelled whmcs and collector
_PER_COLLECTOR: tuple[tuple[str, str, Callable[[CollectorState], float | None]], ...] = (
    ("whmcs_exporter_collector_success", HELP_SUCCESS, lambda c: 1.0 if c.success else 0.0),
    ("whmcs_exporter_sample_ratio", HELP_SAMPLE, lambda c: c.sample_ratio if c.success else None),
    ("whmcs_exporter_collector_duration_seconds", HELP_COLLECTOR_DURATION, lambda c: c.duration),
    ("whmcs_exporter_collector_last_success_timestamp_seconds", HELP_COLLECTOR_LAST_SUCCESS,
     lambda c: c.last_success),
    ("whmcs_exporter_collector_deferred", HELP_COLLECTOR_DEFERRED, lambda c: 1.0 if c.deferred else 0.0),
)


def _collector_series(snapshots: list[InstallationSnapshot], reports: dict[str, CapReport]) -> Iterator[Metric]:
    """How many series each enabled collector exports on this scrape (0: its metrics are absent)."""
    exported = GaugeMetricFamily("whmcs_exporter_collector_series", HELP_COLLECTOR_SERIES,
                                 labels=["whmcs", "collector"])
    for snap in snapshots:
        kept = reports[snap.name].kept_by_collector if snap.name in reports else {}
        for collector in sorted(snap.collectors):
            exported.add_metric([snap.name, collector], kept.get(collector, 0))
    yield exported
