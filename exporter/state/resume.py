"""Between a poller and the state store: what a poller hands over after each poll, and takes back at start."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from exporter.backoff import MAX_RETRY_AFTER
from exporter.snapshot import InstallationSnapshot
from exporter.state.saved import SavedInstallation, StatefulCollector

if TYPE_CHECKING:
    from exporter.collectors.base import Collector
    from exporter.config import InstallationConfig

log = logging.getLogger(__name__)


def restore_collectors(collectors: Iterable[Collector], saved: SavedInstallation, name: str) -> None:
    """Hand each collector with state what it saved; one whose state does not fit starts clean."""
    for collector in collectors:
        if isinstance(collector, StatefulCollector) and collector.name in saved.collectors:
            try:
                collector.restore_state(saved.collectors[collector.name])
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("whmcs=%s collector=%s: saved state unusable (%s); it starts clean", name,
                            collector.name, exc)


def resumed_snapshot(snapshot: InstallationSnapshot, saved: SavedInstallation, installation: InstallationConfig,
                     now: float) -> InstallationSnapshot:
    """The start snapshot with the last success and, while it still runs, the saved back-off."""
    snapshot = replace(snapshot, last_success_time=saved.last_success)
    until = saved.backoff_until
    if saved.backoff_reason not in ("auth", "rate_limit") or until is None or until <= now:
        return snapshot
    # Never longer than this run's settings allow (auth_backoff may have been shortened meanwhile).
    longest = installation.auth_backoff if saved.backoff_reason == "auth" else MAX_RETRY_AFTER
    failed = "authentication failed" if saved.backoff_reason == "auth" else "WHMCS was overloaded"
    return replace(snapshot, backoff_reason=saved.backoff_reason, backoff_until=min(until, now + longest),
                   error=f"{failed} before the restart: paused until the back-off ends")


def saved_installation(snapshot: InstallationSnapshot, auth_fingerprint: str | None,
                       collectors: Iterable[Collector]) -> SavedInstallation:
    return SavedInstallation(
        last_success=snapshot.last_success_time, backoff_reason=snapshot.backoff_reason,
        backoff_until=snapshot.backoff_until,
        backoff_fingerprint=auth_fingerprint if snapshot.backoff_reason == "auth" else None,
        collectors={c.name: c.save_state() for c in collectors if isinstance(c, StatefulCollector)})
