"""Render once, serve many: the /metrics body is rendered at most once per second, and at once after a poll."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from exporter.exposition import ExpositionCache
from exporter.snapshot import InstallationSnapshot, SnapshotStore

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class CountingCollector:
    """Exports how often it was collected: each rendering shows its own number."""

    def __init__(self) -> None:
        self.renders = 0

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        self.renders += 1
        family = GaugeMetricFamily("renders", "renderings so far")
        family.add_metric([], self.renders)
        yield family


def setup() -> tuple[ExpositionCache, CountingCollector, SnapshotStore, list[float]]:
    registry = CollectorRegistry(auto_describe=False)
    counting = CountingCollector()
    registry.register(counting)
    store, now = SnapshotStore(["a"]), [100.0]
    return ExpositionCache(registry, store, clock=lambda: now[0]), counting, store, now


def test_scrapes_within_a_second_share_one_rendering():
    cache, counting, _, now = setup()
    first, content_type = cache.body("")
    for step in (0.1, 0.5, 0.39):
        now[0] += step
        assert cache.body("") == (first, content_type)
    assert counting.renders == 1 and b"renders 1.0" in first
    now[0] += 0.02  # 1.01 s after the rendering
    assert b"renders 2.0" in cache.body("")[0] and counting.renders == 2


def test_a_published_poll_is_rendered_at_the_next_scrape():
    cache, counting, store, _ = setup()
    cache.body("")
    store.put(InstallationSnapshot(name="a", max_age=60))
    assert b"renders 2.0" in cache.body("")[0]
    assert b"renders 2.0" in cache.body("")[0] and counting.renders == 2


def test_each_format_is_rendered_for_itself():
    cache, counting, _, _ = setup()
    text, text_type = cache.body("")
    metrics, om_type = cache.body(OPENMETRICS)
    assert text_type.startswith("text/plain") and om_type.startswith("application/openmetrics-text")
    assert metrics.endswith(b"# EOF\n") and not text.endswith(b"# EOF\n")
    assert cache.body(OPENMETRICS)[0] == metrics and counting.renders == 2
