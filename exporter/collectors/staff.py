"""Staff workload: active tickets flagged to each staff member (only with `staff_metrics: true`).

The flags come from the active-ticket list the priorities collector reads: GetTickets(status="All Active
Tickets", limitstart 0, limitnum `sample_limit`) through the poll's shared reads (poll_reads.py) with the
same parameters, so the page the priorities collector read answers it without a second call. Complete when
the active list is no longer than `sample_limit`; beyond it, the counts cover the `sample_limit` most
recently replied active tickets, and whmcs_exporter_sample_ratio{collector="staff"} says which share that
is. Names come from GetAdminUsers, at most once an hour (staff_names.py). Bound: 1 GetTickets call per poll
(0 when the priorities collector read the page), 1 GetAdminUsers call per hour, and only while some ticket
is flagged.

Series: every enabled staff member GetAdminUsers lists has one, at 0 when no ticket is flagged to them, so
series do not come and go as flags move; disabled staff members have one while tickets are flagged to them,
and so does an id GetAdminUsers does not list (a deleted admin, one added within the hour, or names not
allowed), labelled "#<id>". At most `max_staff` staff members keep a series of their own: the ones with the
most flagged tickets (ties: lowest id); the rest are summed under admin="other", exported while there is a
rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from exporter.collectors.base import PollContext
from exporter.collectors.staff_names import OTHER, StaffNames, label_of
from exporter.collectors.ticket_lists import ACTIVE, TicketRow, sample_ratio
from exporter.families import FROM_LAST_POLL, FamilySink

HELP_FLAGGED = ("Active tickets flagged to each staff member (first and last name; \"#<id>\" for an admin id "
                "GetAdminUsers does not list; \"other\" sums the staff beyond max_staff). Complete when "
                "whmcs_exporter_sample_ratio{collector=\"staff\"} is 1; below 1, counts among the sample_limit most "
                "recently replied active tickets only." + FROM_LAST_POLL)


@dataclass(frozen=True)
class StaffPart:
    whmcs: str
    flagged: tuple[tuple[str, int], ...]  # (admin label, active tickets flagged to them)
    sample_ratio: float  # share of the active list the flags were read from

    def families(self, out: FamilySink) -> None:
        for admin, count in self.flagged:
            out.gauge("whmcs_staff_tickets_flagged", HELP_FLAGGED, {"whmcs": self.whmcs, "admin": admin}, count)


def flagged_per_admin(tickets: Iterable[TicketRow]) -> Counter[int]:
    """Flagged tickets per admin id (0 = not flagged; an unreadable flag counts nowhere)."""
    return Counter(t.flag for t in tickets if t.flag)


def bounded(counts: Mapping[int, int], names: Mapping[int, str], enabled: Iterable[int],
            max_staff: int) -> tuple[tuple[str, int], ...]:
    """(label, count) per staff member: enabled staff at 0 too, the `max_staff` busiest by name, the rest
    summed under `other`."""
    ids = set(counts) | set(enabled)
    ranked = sorted(ids, key=lambda i: (-counts.get(i, 0), i))
    named = {label_of(names, i): counts.get(i, 0) for i in ranked[:max_staff]}
    rest = ranked[max_staff:]
    if rest:
        named[OTHER] = sum(counts.get(i, 0) for i in rest)
    return tuple(sorted(named.items()))


class StaffCollector:
    name = "staff"

    def __init__(self, installation_name: str, max_staff: int) -> None:
        self.max_staff = max_staff
        self.staff = StaffNames(installation_name)

    def poll(self, ctx: PollContext) -> StaffPart:
        limit = ctx.installation.sample_limit
        page = ctx.reads.page(ctx.tickets_params(status=ACTIVE), 0, limit)
        counts = flagged_per_admin(page.tickets)
        if counts:  # names matter only for flagged tickets: a desk that never flags never asks
            self.staff.refresh(ctx.client, ctx.now)
        flagged = bounded(counts, self.staff.names, self.staff.enabled, self.max_staff)
        return StaffPart(ctx.installation.name, flagged, sample_ratio(len(page.tickets), page.total))
