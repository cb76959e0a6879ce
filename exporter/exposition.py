"""Render once, serve many: the /metrics body, rendered at most once per second per format.

Every scraper within the same second gets the same bytes, so the cost of a scrape no longer grows with
the number of scrapers (and a scrape during a poll rarely renders at all). The body is rendered again
when a second has passed (ages in it move with the clock) or at once when a poll published a new
snapshot, so a scrape never shows a poll older than the last one published.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter.snapshot import SnapshotStore

MAX_RENDER_AGE = 1.0  # seconds


@dataclass(frozen=True)
class Rendered:
    body: bytes
    at: float  # monotonic time of the rendering
    version: int  # the store's version it rendered


class ExpositionCache:
    def __init__(self, registry: CollectorRegistry, store: SnapshotStore,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self._rendered: dict[str, Rendered] = {}  # by content type
        # One rendering at a time: scrapers arriving while it runs wait for it and take its result.
        self._lock = threading.Lock()

    def body(self, accept: str) -> tuple[bytes, str]:
        """(body, content type) for a scrape with this Accept header."""
        encoder, content_type = choose_encoder(accept)
        cached = self._rendered.get(content_type)
        if self._current(cached):
            return cached.body, content_type
        with self._lock:
            cached = self._rendered.get(content_type)
            if not self._current(cached):
                version = self.store.version  # read first: a put during rendering makes the next scrape render
                cached = Rendered(encoder(self.registry), self.clock(), version)
                self._rendered[content_type] = cached
        return cached.body, content_type

    def _current(self, cached: Rendered | None) -> bool:
        return cached is not None and cached.version == self.store.version \
            and self.clock() - cached.at < MAX_RENDER_AGE
