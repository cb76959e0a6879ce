"""The state store's self-metrics, rendered on every scrape from the store's counters and the file's size."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.state.store import StateStore

HELP_LAST_WRITE = "Unix time of the last successful write of the exporter's state (once per poll)."
HELP_BYTES = "Size of the exporter's state file on disk (database and write-ahead log), in bytes."
HELP_WRITE_FAILURES = ("Writes of the exporter's state that failed (read-only or full disk): it keeps running "
                       "from memory, and a restart meanwhile is a cold start.")


class StateMetrics:
    """A prometheus_client custom collector for one StateStore."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        if self.store.last_write is not None:
            yield GaugeMetricFamily("whmcs_exporter_state_last_write_timestamp_seconds", HELP_LAST_WRITE,
                                    value=self.store.last_write)
        yield GaugeMetricFamily("whmcs_exporter_state_bytes", HELP_BYTES, value=self.store.size())
        yield CounterMetricFamily("whmcs_exporter_state_write_failures", HELP_WRITE_FAILURES,
                                  value=self.store.write_failures)

    def describe(self) -> list[Metric]:
        return []
