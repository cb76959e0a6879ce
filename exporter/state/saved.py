"""What is kept per installation across restarts, as plain values (no secrets, no customer data).

Collectors with state implement `StatefulCollector`: `save_state()` after every poll,
`restore_state()` once at start. A collector's state is scalars (JSON-able: cursors,
watermarks, counter totals) plus items keyed by an integer id (one per ticket it
tracks: ids, times, department ids, priorities only). Items are written as a diff,
so a poll that changed ten tickets writes ten rows, whatever the window holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from exporter.config import InstallationConfig

Item = tuple[Any, ...]  # one tracked thing's numbers; compared as a whole to decide whether to rewrite it


Tracked = TypeVar("Tracked")


class ItemView(Mapping[int, Item], Generic[Tracked]):
    """A collector's live mapping seen as items, each made when read: saving a large cache builds no copy of it
    (the first-response cache's 53,000 tuples at 100,000 tickets, ~10 MB, were held twice while state was
    written). Read it in the thread that owns the mapping, before the next poll changes it."""

    def __init__(self, source: Mapping[int, Tracked], to_item: Callable[[Tracked], Item]) -> None:
        self.source = source
        self.to_item = to_item

    def __getitem__(self, ident: int) -> Item:
        return self.to_item(self.source[ident])

    def __iter__(self) -> Iterator[int]:
        return iter(self.source)

    def __len__(self) -> int:
        return len(self.source)


@dataclass(frozen=True)
class SavedCollector:
    scalars: Mapping[str, Any] = field(default_factory=dict)
    items: Mapping[int, Item] = field(default_factory=dict)


@dataclass(frozen=True)
class SavedInstallation:
    last_success: float | None = None
    backoff_reason: str | None = None  # "auth" or "rate_limit"
    backoff_until: float | None = None
    # A digest of the credentials an auth back-off applies to (config.credentials_digest): a changed secret
    # ends the back-off at once, an unchanged one keeps it across restarts.
    backoff_fingerprint: str | None = None
    collectors: Mapping[str, SavedCollector] = field(default_factory=dict)


@runtime_checkable
class StatefulCollector(Protocol):
    name: str

    def save_state(self) -> SavedCollector: ...

    def restore_state(self, saved: SavedCollector) -> None:
        """Take over saved state, all or nothing: raise (ValueError, KeyError, TypeError) to start clean."""


def installation_key(installation: InstallationConfig) -> str:
    """Whose state a row is: a renamed installation or a changed URL starts clean, two never share."""
    return hashlib.sha256(f"{installation.name}\0{installation.url}".encode()).hexdigest()
