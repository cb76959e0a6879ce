"""The exporter's memory: immutable per-installation snapshots, swapped whole after every poll.

Pollers write, scrapes read. A snapshot is never modified after it is
published, so a scrape sees one poll's state or the next one's, never a mix,
and never waits on WHMCS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol


class Part(Protocol):
    """What one collector learned in one poll. Renders itself into metric families."""

    def families(self, out: Any) -> None: ...


@dataclass(frozen=True)
class CollectorState:
    """A collector's last good part and what happened on its last attempt.

    Freshness is the part's own: it goes stale `max_age` after its answers arrived, whatever the rest of
    the poll did, so a long poll never makes the numbers read at its start look old on arrival.
    """

    part: Part | None = None
    updated: float | None = None  # when the part's answers arrived (its ages are counted from the poll's start)
    last_success: float | None = None  # when its last successful attempt ended
    duration: float | None = None  # seconds its last attempt took
    success: bool = False  # its last attempt did not fail (a collector the deadline deferred has not failed)
    reason: str | None = None  # failure reason of the last attempt
    error: str | None = None
    sample_ratio: float | None = None
    deferred: bool = False  # the last poll's deadline left it for the next poll; its previous part stays


@dataclass(frozen=True)
class InstallationSnapshot:
    name: str
    max_age: float
    collectors: Mapping[str, CollectorState] = field(default_factory=lambda: MappingProxyType({}))
    up: bool = False
    error: str | None = None
    polls: int = 0
    poll_failures: int = 0
    last_poll_time: float | None = None
    last_success_time: float | None = None
    poll_duration: float | None = None
    poll_api_calls: int | None = None
    backoff_reason: str | None = None
    backoff_until: float | None = None
    next_poll_time: float | None = None
    requests: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    failures: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def completed_a_poll(self) -> bool:
        """A poll ended, or a back-off saved before a restart stands for the failed poll that started it."""
        return self.polls > 0 or self.backoff_until is not None

    def fresh_parts(self, now: float) -> Iterable[tuple[str, Part]]:
        """Parts young enough to export: older data is dropped so dashboards show a gap, not frozen numbers.
        Each part's age counts from when its own answers arrived."""
        for name, state in self.collectors.items():
            if state.part is not None and state.updated is not None and now - state.updated <= self.max_age:
                yield name, state.part


class SnapshotStore:
    """The latest snapshot of every installation. Reads take no lock: a dict is replaced whole."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._snapshots: Mapping[str, InstallationSnapshot] = MappingProxyType({})
        self._order = list(names)
        self.version = 0  # grows with every put: a rendered exposition older than the last put is outdated

    def put(self, snapshot: InstallationSnapshot) -> None:
        with self._lock:
            updated = dict(self._snapshots)
            updated[snapshot.name] = snapshot
            if snapshot.name not in self._order:
                self._order.append(snapshot.name)
            self._snapshots = MappingProxyType(updated)
            self.version += 1

    def all(self) -> list[InstallationSnapshot]:
        current = self._snapshots
        return [current[name] for name in self._order if name in current]

