"""Building metric families for one scrape: one family per name across all installations.

Collectors render their parts into a `FamilySink`; the sink merges samples of
the same metric from many installations into one family (Prometheus wants each
name once) and enforces the per-installation series cap, reporting what it cut
instead of letting a runaway label set blow up the scrape.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric

FROM_LAST_POLL = " Value from the exporter's last successful poll of WHMCS."


_UNSAFE = re.compile("[\x00\ud800-\udfff]")
# Label values from WHMCS (status titles, department names) are cut to this many characters, the last being
# the marker: a 10 kB title would otherwise exceed a Prometheus job's label_value_length_limit and mark the
# whole target down. Documented in docs/metrics-contract.md.
MAX_LABEL_VALUE_LENGTH = 256
CUT_MARKER = "\u2026"


def label_value(value: str) -> str:
    """Label values pass through as text, cut to MAX_LABEL_VALUE_LENGTH; NUL (which breaks some parsers downstream)
    and lone surrogates (which JSON's \\uXXXX escapes can carry but UTF-8 cannot encode: one would fail every
    scrape) become U+FFFD."""
    value = _UNSAFE.sub("\ufffd", value)
    if len(value) > MAX_LABEL_VALUE_LENGTH:
        value = value[:MAX_LABEL_VALUE_LENGTH - 1] + CUT_MARKER
    return value


@dataclass
class _Series:
    family: Metric
    collector: str
    labels: tuple[str, ...]
    cost: int  # samples: 1 for a gauge, buckets + 2 for a histogram
    weight: float  # what the series counts (a histogram's total): the larger stay when a metric is cut
    value: Any
    gsum: float | None = None


@dataclass
class CapReport:
    """What the cap did to one installation's series in one render."""

    dropped: int = 0
    dropped_by_collector: Counter = field(default_factory=Counter)
    kept_by_collector: Counter = field(default_factory=Counter)  # series exported, per collector
    cut_label_values: int = 0


class FamilySink:
    """Collects one installation's series at a time, then admits them under its `max_series` cap.

    Core series (those labelled by `whmcs` alone: totals, oldest ages, the histograms) are always exported. The
    rest of the budget is shared fairly among the label-heavy metrics (water-filling: a metric needing less than
    its share leaves the remainder to the others); within a metric the series counting the most stay.
    """

    def __init__(self, max_series: int | None = None) -> None:
        self._families: dict[str, Metric] = {}
        self._max_series = max_series
        self._collector = ""
        self._pending: list[_Series] = []
        self._seen: set[tuple[str, tuple[str, ...]]] = set()
        self._report = CapReport()

    def start_installation(self, max_series: int) -> None:
        """Series from here on belong to the next installation and count against its cap."""
        self.finish_installation()
        self._max_series = max_series

    def start_part(self, collector: str) -> None:
        """Series from here on come from this collector (so a cut can be reported against it)."""
        self._collector = collector

    def finish_installation(self) -> CapReport:
        """Admit the pending series under the cap; what was cut."""
        report = self._report
        budget = None if self._max_series is None else self._max_series
        core = [series for series in self._pending if len(series.labels) <= 1]
        rest = [series for series in self._pending if len(series.labels) > 1]
        kept = core + (rest if budget is None else _fair_share(rest, budget - sum(s.cost for s in core)))
        for series in kept:
            report.kept_by_collector[series.collector] += series.cost
            if isinstance(series.value, list):
                series.family.add_metric(list(series.labels), series.value, series.gsum)
            else:
                series.family.add_metric(list(series.labels), series.value)
        kept_ids = {id(series) for series in kept}
        for series in self._pending:
            if id(series) not in kept_ids:
                report.dropped += series.cost
                report.dropped_by_collector[series.collector] += series.cost
        self._pending, self._seen, self._report = [], set(), CapReport()
        return report

    def gauge(self, name: str, documentation: str, labels: dict[str, str], value: float) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        self._sample(GaugeMetricFamily, name, documentation, labels, value)

    def counter(self, name: str, documentation: str, labels: dict[str, str], value: float) -> None:
        """A counter kept by a collector across polls; `name` without `_total` (the exposition adds it)."""
        self._sample(CounterMetricFamily, name, documentation, labels, value)

    def _sample(self, kind: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str, documentation: str,
                labels: dict[str, str], value: float) -> None:
        family = self._family(name, lambda: kind(name, documentation, labels=list(labels)))
        self._queue(family, labels, 1, float(value), value)

    def gauge_histogram(self, name: str, documentation: str, labels: dict[str, str],
                        buckets: Sequence[tuple[float, int]], gsum: float | None) -> None:
        """`buckets` are (upper bound, cumulative count) with +Inf last."""
        family = self._family(name, lambda: GaugeHistogramMetricFamily(name, documentation, labels=list(labels)))
        weight = float(buckets[-1][1]) if buckets else 0.0
        self._queue(family, labels, len(buckets) + 2, weight, [(_le(b), count) for b, count in buckets], gsum)

    def add(self, family: Metric) -> None:
        """A family built elsewhere (exporter-level metrics not subject to the cap)."""
        self._families[family.name] = family

    def families(self) -> Iterable[Metric]:
        self.finish_installation()
        return self._families.values()

    def _family(self, name: str, make: Any) -> Metric:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = make()
        return family

    def _queue(self, family: Metric, labels: dict[str, str], cost: int, weight: float, value: Any,
               gsum: float | None = None) -> None:
        values = []
        for raw in labels.values():
            if len(raw) > MAX_LABEL_VALUE_LENGTH:
                self._report.cut_label_values += 1
            values.append(label_value(raw))
        key = (family.name, tuple(values))
        if key in self._seen:  # two values cut to the same text: one series, never a duplicate sample
            self._report.dropped += cost
            self._report.dropped_by_collector[self._collector] += cost
            return
        self._seen.add(key)
        self._pending.append(_Series(family, self._collector, tuple(values), cost, weight, value, gsum))


def _fair_share(series: list[_Series], budget: int) -> list[_Series]:
    """The series to keep within `budget` samples: each metric gets an equal share, unused shares go to the others,
    and within a metric the series with the largest weight stay."""
    by_metric: dict[str, list[_Series]] = {}
    for one in series:
        by_metric.setdefault(one.family.name, []).append(one)
    needs = sorted(by_metric.items(), key=lambda item: sum(s.cost for s in item[1]))
    kept: list[_Series] = []
    budget = max(0, budget)
    for index, (_name, members) in enumerate(needs):
        share = budget // (len(needs) - index)
        used = 0
        for one in sorted(members, key=lambda s: -s.weight):
            if used + one.cost > share:
                continue
            kept.append(one)
            used += one.cost
        budget -= used
    return kept


def _le(bound: float) -> str:
    if math.isinf(bound):
        return "+Inf"
    return f"{bound:g}" if bound != int(bound) else str(int(bound))
