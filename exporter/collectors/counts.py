"""The backlog counts: GetTicketCounts, or a derivation when WHMCS hides them.

Normally one call. When the installation sets `disable_admin_ticket_page_counts`
(counts come back as "x") or a gateway lacks GetTicketCounts, the same numbers
are derived from GetSupportStatuses (per status) and GetTickets `totalresults`
(active, awaiting): three calls. `flaggedTickets` has no equivalent and is
then absent rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from exporter.client import flag
from exporter.collectors.base import PollContext
from exporter.collectors.status_titles import UNTITLED, StatusTitles
from exporter.collectors.ticket_lists import ACTIVE, AWAITING
from exporter.errors import ShapeError, Unsupported
from exporter.families import FROM_LAST_POLL, FamilySink
from exporter.fields import is_disabled_count, items, label_text, to_count

log = logging.getLogger(__name__)

RECHECK_UNSUPPORTED = 3600.0

HELP_TICKETS = "Tickets per status, by status title (every configured status, zeros included)." + FROM_LAST_POLL
HELP_ACTIVE = "Tickets in statuses shown as active (WHMCS allActive)." + FROM_LAST_POLL
HELP_AWAITING = "Tickets in statuses that await a staff reply (WHMCS awaitingReply)." + FROM_LAST_POLL
HELP_FLAGGED = ("Active tickets flagged to the API admin user (WHMCS flaggedTickets; absent when WHMCS hides "
                "counts)." + FROM_LAST_POLL)


@dataclass(frozen=True)
class CountsPart:
    whmcs: str
    by_status: tuple[tuple[str, int], ...]
    active: int | None
    awaiting: int | None
    flagged: int | None
    filtered_departments: tuple[int, ...]
    derived: bool = False  # True when counts came from GetSupportStatuses/GetTickets

    def families(self, out: FamilySink) -> None:
        for title, count in self.by_status:
            out.gauge("whmcs_tickets", HELP_TICKETS, {"whmcs": self.whmcs, "status": title}, count)
        labels = {"whmcs": self.whmcs}
        if self.active is not None:
            out.gauge("whmcs_tickets_active", HELP_ACTIVE, labels, self.active)
        if self.awaiting is not None:
            out.gauge("whmcs_tickets_awaiting_reply", HELP_AWAITING, labels, self.awaiting)
        if self.flagged is not None:
            out.gauge("whmcs_tickets_flagged", HELP_FLAGGED, labels, self.flagged)

    @property
    def awaiting_hint(self) -> int | None:
        """The awaiting count as a hint for where the `Awaiting Reply` list ends; None when unknown.

        Only when the count is not limited to the admin's departments: then it covers the same tickets as
        GetTickets. The list's own `totalresults` stays authoritative.
        """
        return None if self.filtered_departments else self.awaiting


def parse_status_map(raw: Any) -> tuple[tuple[str, int], ...]:
    """GetTicketCounts' `status` map -> (title, count), labelled by title: keys lose non-ASCII letters.

    Titles are decoded as the admin area shows them, so an escaped and a plain spelling are one status.
    """
    if raw in (None, [], ""):
        return ()
    if not isinstance(raw, Mapping):
        raise ValueError("status is not a map")
    counts: dict[str, int] = {}
    for key, entry in raw.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"status.{str(key)[:40]} is not an object")
        title = label_text(entry.get("title", key), "status title") or str(key) or UNTITLED
        counts[title] = counts.get(title, 0) + to_count(entry.get("count"), f"status {title[:40]} count")
    return tuple(sorted(counts.items()))


def parse_statuses(answer: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """GetSupportStatuses -> (title, count)."""
    counts: dict[str, int] = {}
    for entry in items(answer.get("statuses"), "status", "statuses"):
        title = label_text(entry.get("title"), "status title") or UNTITLED
        counts[title] = counts.get(title, 0) + to_count(entry.get("count"), f"status {title[:40]} count")
    return tuple(sorted(counts.items()))


def parse_counts(whmcs: str, answer: Mapping[str, Any]) -> CountsPart:
    """GetTicketCounts -> part. Disabled counts ("x") become None, for the caller to derive."""
    values: dict[str, int | None] = {}
    for key in ("allActive", "awaitingReply", "flaggedTickets"):
        raw = answer.get(key)
        values[key] = None if is_disabled_count(raw) else to_count(raw, key)
    filtered = answer.get("filteredDepartments") or []
    if not isinstance(filtered, list):
        raise ValueError("filteredDepartments is not a list")
    return CountsPart(
        whmcs=whmcs,
        by_status=parse_status_map(answer.get("status")),
        active=values["allActive"],
        awaiting=values["awaitingReply"],
        flagged=values["flaggedTickets"],
        filtered_departments=tuple(to_count(d, "filteredDepartments") for d in filtered),
    )


class CountsCollector:
    """Reads the backlog counts; remembers for an hour that a gateway lacks GetTicketCounts."""

    name = "counts"

    def __init__(self) -> None:
        self._told_disabled = False
        self._told_filtered: tuple[int, ...] | None = None
        # A gateway without GetTicketCounts is asked again only this often, not every poll.
        self._unsupported_until: float | None = None
        self._titles = StatusTitles()

    def poll(self, ctx: PollContext) -> CountsPart:
        inst = ctx.installation
        if self._unsupported_until is not None and ctx.now < self._unsupported_until:
            return self._derive(ctx, None, "this installation's API has no GetTicketCounts")
        try:
            answer = ctx.client.call("GetTicketCounts", {
                "ignoreDepartmentAssignments": flag(inst.ignore_department_assignments),
                "includeCountsByStatus": "1",
            })
        except Unsupported:
            self._unsupported_until = ctx.now + RECHECK_UNSUPPORTED
            return self._derive(ctx, None, "this installation's API has no GetTicketCounts")
        self._unsupported_until = None
        try:
            part = parse_counts(inst.name, answer)
        except ValueError as exc:
            raise ShapeError("GetTicketCounts", str(exc)) from None
        part = replace(part, by_status=self._by_status(ctx, answer.get("status"), part.by_status))
        self._tell_filtered(inst.name, part.filtered_departments, inst.ignore_department_assignments)
        if part.active is None or part.awaiting is None:
            return self._derive(ctx, part, "WHMCS hides ticket counts (disable_admin_ticket_page_counts is set)")
        return part

    def _by_status(self, ctx: PollContext, status_map: Any, from_map: tuple[tuple[str, int], ...]
                   ) -> tuple[tuple[str, int], ...]:
        """The map's per-status counts, or GetSupportStatuses' where titles collide in its keys."""
        return self._titles.counts(ctx.installation.name, status_map, from_map, ctx.now,
                                   lambda: ctx.client.call("GetSupportStatuses", {}))

    def _derive(self, ctx: PollContext, part: CountsPart | None, why: str) -> CountsPart:
        if not self._told_disabled:
            log.warning("%s; whmcs=%s: deriving per-status, active and awaiting counts from "
                        "GetSupportStatuses and GetTickets (2 or 3 API calls per poll); "
                        "whmcs_tickets_flagged is not exported", why, ctx.installation.name)
            self._told_disabled = True
        by_status = part.by_status if part and part.by_status else ()
        if not by_status:
            answer = ctx.client.call("GetSupportStatuses", {})
            try:
                by_status = parse_statuses(answer)
            except ValueError as exc:
                raise ShapeError("GetSupportStatuses", str(exc)) from None
        totals = {}
        for status in (ACTIVE, AWAITING):
            totals[status] = ctx.reads.page(ctx.tickets_params(status=status), 0, 1).total
        return CountsPart(whmcs=ctx.installation.name, by_status=by_status, active=totals[ACTIVE],
                          awaiting=totals[AWAITING], flagged=None,
                          filtered_departments=part.filtered_departments if part else (), derived=True)

    def _tell_filtered(self, whmcs: str, filtered: tuple[int, ...], ignored: bool) -> None:
        if filtered == self._told_filtered:
            return
        self._told_filtered = filtered
        if filtered and not ignored:
            log.warning("whmcs=%s: the API admin is limited to support departments %s and "
                        "ignore_department_assignments is false: active/awaiting counts and ticket lists only "
                        "cover those departments (per-status counts cover all). Set "
                        "ignore_department_assignments: true to count every department.",
                        whmcs, ",".join(map(str, filtered)))
