"""What the series cap and the label-length cut did, counted once per poll and logged once per poll.

Scrapes render every time, but the data only changes with a poll: counting at
every scrape would make `whmcs_exporter_series_dropped_total` grow with the
scrape rate, and logging at every scrape would flood the log. So a poll's cuts
are counted (and logged) at the first scrape that renders that poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.families import MAX_LABEL_VALUE_LENGTH, CapReport
from exporter.snapshot import InstallationSnapshot

log = logging.getLogger(__name__)

HELP_DROPPED = ("Series not exported because the installation exceeded max_series (runaway label values), summed "
                "over polls (each poll counted once).")
HELP_COLLECTOR_DROPPED = ("Series of this collector not exported at the last scrape because the installation "
                          "exceeded max_series.")
HELP_CUT = (f"Label values cut to {MAX_LABEL_VALUE_LENGTH} characters (ending in …), summed over polls "
            "(each poll counted once).")


class CutCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counted_poll: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._cut: dict[str, int] = {}

    def count(self, snap: InstallationSnapshot, report: CapReport, max_series: int) -> None:
        """Add `report` to the totals unless this poll of `snap` was already counted."""
        with self._lock:
            if self._counted_poll.get(snap.name) == snap.polls:
                return
            self._counted_poll[snap.name] = snap.polls
            self._dropped[snap.name] = self._dropped.get(snap.name, 0) + report.dropped
            self._cut[snap.name] = self._cut.get(snap.name, 0) + report.cut_label_values
        if report.dropped:
            by_collector = ", ".join(f"{name}: {n}" for name, n in sorted(report.dropped_by_collector.items()))
            log.warning("whmcs=%s: %d series over max_series=%d not exported (%s); totals and oldest ages are "
                        "kept. Raise max_series if these label values are expected", snap.name, report.dropped,
                        max_series, by_collector)

    def families(self, snapshots: list[InstallationSnapshot], reports: Mapping[str, CapReport]) -> Iterator[Metric]:
        dropped = CounterMetricFamily("whmcs_exporter_series_dropped", HELP_DROPPED, labels=["whmcs"])
        cut = CounterMetricFamily("whmcs_exporter_label_values_cut", HELP_CUT, labels=["whmcs"])
        by_collector = GaugeMetricFamily("whmcs_exporter_collector_series_dropped", HELP_COLLECTOR_DROPPED,
                                         labels=["whmcs", "collector"])
        with self._lock:
            for snap in snapshots:
                dropped.add_metric([snap.name], self._dropped.get(snap.name, 0))
                cut.add_metric([snap.name], self._cut.get(snap.name, 0))
                report = reports.get(snap.name, CapReport())
                for collector in sorted(snap.collectors):
                    by_collector.add_metric([snap.name, collector], report.dropped_by_collector.get(collector, 0))
        yield from (dropped, by_collector, cut)
