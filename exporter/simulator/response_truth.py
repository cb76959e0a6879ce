"""First-response truth per department and priority, straight from the raw tickets (no API code).

What an exporter should report as whmcs_ticket_first_response_seconds{department, priority}: for tickets opened
in the trailing window that got a staff reply, the seconds from opening to the first one, grouped by the
ticket's department name and priority text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .world import World


def first_response_by_label(world: World, now: float, buckets: Iterable[float],
                            response_window: float = 7 * 86400) -> dict[tuple[str, str], dict]:
    """(department name, priority) -> {"buckets": {le: count}, "count": n, "sum": seconds}."""
    bounds = tuple(buckets)
    out: dict[tuple[str, str], dict] = {}
    with world.lock:
        names = {d.id: d.name for d in world.departments}
        for t in world.live_tickets():
            if t.date < now - response_window:
                continue
            first = next((r for r in world.replies(t)[1:] if r.admin), None)
            if first is None:
                continue
            seconds = first.date - t.date
            key = (names.get(t.deptid, f"id {t.deptid}"), t.priority)
            group = out.setdefault(key, {"buckets": dict.fromkeys(bounds, 0), "count": 0, "sum": 0.0})
            group["count"] += 1
            group["sum"] += seconds
            for le in bounds:
                if seconds <= le:
                    group["buckets"][le] += 1
    return out
