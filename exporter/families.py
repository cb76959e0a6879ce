"""Building metric families for one scrape: one family per name across all installations.

Views render their parts into a `FamilySink`; the sink merges samples of the
same metric from many installations into one family (Prometheus wants each
name once) and enforces the per-installation series cap, counting what it
dropped instead of letting a runaway label set blow up the scrape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric

FROM_LAST_POLL = " Value from the exporter's last successful poll of WHMCS."


_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def label_value(value: str) -> str:
    """Label values pass through as text; NUL (which breaks some parsers downstream) and lone surrogates
    (which JSON's \\uXXXX escapes can carry but UTF-8 cannot encode: one would fail every scrape) become U+FFFD."""
    return _UNSAFE.sub("\ufffd", value)


class FamilySink:
    def __init__(self, max_series: int | None = None) -> None:
        self._families: dict[str, Metric] = {}
        self._max_series = max_series
        self._series = 0
        self.dropped = 0

    def start_installation(self, max_series: int) -> None:
        """Series from here on belong to the next installation and count against its cap."""
        self._max_series = max_series
        self._series = 0
        self.dropped = 0

    def _admit(self, count: int = 1) -> bool:
        if self._max_series is not None and self._series + count > self._max_series:
            self.dropped += count
            return False
        self._series += count
        return True

    def gauge(self, name: str, documentation: str, labels: dict[str, str], value: float) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        self._sample(GaugeMetricFamily, name, documentation, labels, value)

    def counter(self, name: str, documentation: str, labels: dict[str, str], value: float) -> None:
        """A counter kept by a collector across polls; `name` without `_total` (the exposition adds it)."""
        self._sample(CounterMetricFamily, name, documentation, labels, value)

    def _sample(self, kind: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str, documentation: str,
                labels: dict[str, str], value: float) -> None:
        family = self._families.get(name)
        if family is None:
            family = kind(name, documentation, labels=list(labels))
            self._families[name] = family
        if self._admit():
            family.add_metric([label_value(v) for v in labels.values()], value)

    def gauge_histogram(self, name: str, documentation: str, labels: dict[str, str],
                        buckets: Sequence[tuple[float, int]], gsum: float | None) -> None:
        """`buckets` are (upper bound, cumulative count) with +Inf last."""
        family = self._families.get(name)
        if family is None:
            family = GaugeHistogramMetricFamily(name, documentation, labels=list(labels))
            self._families[name] = family
        if self._admit(len(buckets) + 2):
            family.add_metric([label_value(v) for v in labels.values()],
                              [(_le(bound), count) for bound, count in buckets], gsum)

    def add(self, family: Metric) -> None:
        """A family built elsewhere (exporter-level metrics not subject to the cap)."""
        self._families[family.name] = family

    def families(self) -> Iterable[Metric]:
        return self._families.values()


def _le(bound: float) -> str:
    if math.isinf(bound):
        return "+Inf"
    return f"{bound:g}" if bound != int(bound) else str(int(bound))
