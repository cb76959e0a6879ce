"""Department and priority labels of per-ticket series, kept bounded.

Department labels are the departments collector's (`support_departments.unique_labels`): taken from its part
when it ran in this poll, else from GetSupportDepartments, asked at most once per `REFRESH_INTERVAL` by a
collector that keeps a `DepartmentLabels`. A department id no answer names is labelled "id <n>"; a ticket
without `deptid` (some gateways) "".

Priorities are free text in WHMCS. Low, Medium and High (WHMCS's own) are always labels; of the other texts
found, the `MAX_EXTRA_PRIORITIES` most frequent keep theirs and the rest are summed under "other", so a desk
whose priorities are renamed or multiplied cannot multiply the series.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from exporter.collectors.base import PollContext
from exporter.collectors.support_departments import read_departments, unique_labels
from exporter.errors import WhmcsError

log = logging.getLogger(__name__)

STANDARD_PRIORITIES = ("Low", "Medium", "High")
NO_PRIORITY = "(none)"
OTHER_PRIORITY = "other"
MAX_EXTRA_PRIORITIES = 7
REFRESH_INTERVAL = 3600.0


def department_label(labels: Mapping[int, str], deptid: int | None) -> str:
    if deptid is None:
        return ""
    return labels.get(deptid, f"id {deptid}")


def priority_text(priority: str) -> str:
    """A ticket's priority as a label value before bounding (an empty one reads "(none)")."""
    return priority.strip() or NO_PRIORITY


def priority_labels(found: Mapping[str, int], max_extra: int = MAX_EXTRA_PRIORITIES) -> dict[str, str]:
    """Priority text (with its number of tickets) -> label: the standard ones and the `max_extra` most frequent
    others as they are (ties: alphabetical), every further text "other"."""
    extra = sorted((t for t in found if t not in STANDARD_PRIORITIES), key=lambda t: (-found[t], t))
    labels = {t: t for t in (*STANDARD_PRIORITIES, *extra[:max_extra])}
    labels.update({t: OTHER_PRIORITY for t in extra[max_extra:]})
    return labels


class DepartmentLabels:
    """Department id -> label for a collector that may run without the departments collector."""

    def __init__(self, interval: float = REFRESH_INTERVAL) -> None:
        self.interval = interval
        self.labels: dict[int, str] = {}
        self.read_at: float | None = None

    def current(self, ctx: PollContext) -> dict[int, str]:
        part = ctx.parts.get("departments")
        if part is not None and hasattr(part, "labels"):
            self.labels, self.read_at = dict(part.labels), ctx.now
        elif self.read_at is None or ctx.now - self.read_at >= self.interval:
            self.read_at = ctx.now  # asked at most once per interval, whatever the answer
            try:
                ignore = ctx.installation.ignore_department_assignments
                self.labels = unique_labels(read_departments(ctx.client, ignore))
            except WhmcsError as exc:
                if exc.aborts_poll:
                    raise
                log.warning("whmcs=%s: GetSupportDepartments failed (%s): departments labelled by id until it "
                            "answers (asked again within the hour)", ctx.installation.name, exc)
        return self.labels
