"""Active tickets by priority, from the active list itself (WHMCS has no count per priority).

One GetTickets(status="All Active Tickets") call asking for `sample_limit` tickets (default 1000). When
the active list is no longer than that, the breakdown is complete. Beyond it, the breakdown covers the
`sample_limit` most recently replied active tickets, and `sample_ratio` (fetched / total, exported as
whmcs_exporter_sample_ratio{collector="priorities"}) says so. Bound: 1 call.

WHMCS's three priorities (Low, Medium, High) are always exported, at 0 when no ticket has them, so the
series do not come and go; any other priority text found on tickets is exported as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.collectors.base import PollContext
from exporter.collectors.ticket_labels import STANDARD_PRIORITIES as STANDARD
from exporter.collectors.ticket_labels import priority_text
from exporter.collectors.ticket_lists import ACTIVE, TicketRow, sample_ratio
from exporter.families import FROM_LAST_POLL, FamilySink

HELP_BY_PRIORITY = ("Active tickets by priority. Complete when whmcs_exporter_sample_ratio{collector=\"priorities\"} "
                    "is 1; below 1, counts among the sample_limit most recently replied active tickets only."
                    + FROM_LAST_POLL)


@dataclass(frozen=True)
class PrioritiesPart:
    whmcs: str
    by_priority: tuple[tuple[str, int], ...]
    total: int
    fetched: int

    @property
    def sample_ratio(self) -> float:
        return sample_ratio(self.fetched, self.total)

    def families(self, out: FamilySink) -> None:
        for priority, count in self.by_priority:
            labels = {"whmcs": self.whmcs, "priority": priority}
            out.gauge("whmcs_tickets_active_by_priority", HELP_BY_PRIORITY, labels, count)


def tally(tickets: Iterable[TicketRow]) -> tuple[tuple[str, int], ...]:
    """Counts per priority text, with WHMCS's standard priorities present at 0."""
    counts = Counter({p: 0 for p in STANDARD})
    counts.update(priority_text(t.priority) for t in tickets)
    return tuple(sorted(counts.items()))


class PrioritiesCollector:
    name = "priorities"

    def poll(self, ctx: PollContext) -> PrioritiesPart:
        limit = ctx.installation.sample_limit
        page = ctx.reads.page(ctx.tickets_params(status=ACTIVE), 0, limit)
        # A gateway may cap limitnum below what was asked: fetched < total then reads as a sample, truthfully.
        return PrioritiesPart(ctx.installation.name, tally(page.tickets), page.total, len(page.tickets))
