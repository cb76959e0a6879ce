"""The longest current wait: the last ticket of the `Awaiting Reply` list.

One GetTickets call when the counts view already knows how many tickets
await a reply (the tail's position), two otherwise, at most three when
tickets move between calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.families import FROM_LAST_POLL, FamilySink
from exporter.views.base import PollContext
from exporter.views.counts import CountsPart
from exporter.views.ticket_list import AWAITING, fetch_tail

HELP = ("Seconds since the last reply of the awaiting-reply ticket that has waited longest; 0 when none waits."
        + FROM_LAST_POLL)


@dataclass(frozen=True)
class OldestAwaitingPart:
    whmcs: str
    age: float

    def families(self, out: FamilySink) -> None:
        out.gauge("whmcs_ticket_oldest_awaiting_reply_age_seconds", HELP, {"whmcs": self.whmcs}, self.age)


def age_of_tail(now: float, lastreply: float | None) -> float:
    """A wait never reads negative, even when WHMCS's clock runs ahead of ours."""
    return 0.0 if lastreply is None else max(0.0, now - lastreply)


class OldestAwaitingView:
    name = "oldest_awaiting"

    def poll(self, ctx: PollContext) -> OldestAwaitingPart:
        counts = ctx.parts.get("counts")
        hint = counts.awaiting if isinstance(counts, CountsPart) and not counts.filtered_departments else None
        page = fetch_tail(ctx.client, ctx.zone, ctx.tickets_params(status=AWAITING), hint)
        lastreply = min((t.lastreply for t in page.tickets), default=None)
        return OldestAwaitingPart(ctx.installation.name, age_of_tail(ctx.now, lastreply))
