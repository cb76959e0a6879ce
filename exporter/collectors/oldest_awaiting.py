"""The longest current wait: the last ticket of the `Awaiting Reply` list.

The list is read whole when it is short (`whole_list_max_tickets`), and then
serves the departments, wait_distribution and sla collectors too. A longer
one costs one GetTickets call for its tail when the counts collector already
knows how many tickets await a reply (the tail's position), two otherwise, at
most three when tickets move between calls; the tail page (TAIL_ROWS) is the
one the wait distribution and the departments read next.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.collectors.base import PollContext
from exporter.collectors.ticket_lists import AWAITING, age_of_tail, tail_lastreply
from exporter.errors import ShapeError
from exporter.families import FROM_LAST_POLL, FamilySink

HELP_OLDEST = ("Seconds since the last reply of the awaiting-reply ticket that has waited longest; 0 when none waits."
        + FROM_LAST_POLL)


@dataclass(frozen=True)
class OldestAwaitingPart:
    whmcs: str
    age: float

    def families(self, out: FamilySink) -> None:
        out.gauge("whmcs_ticket_oldest_awaiting_reply_age_seconds", HELP_OLDEST, {"whmcs": self.whmcs}, self.age)


class OldestAwaitingCollector:
    name = "oldest_awaiting"

    def poll(self, ctx: PollContext) -> OldestAwaitingPart:
        hint = ctx.awaiting_hint
        params = ctx.tickets_params(status=AWAITING)
        page = ctx.reads.whole(params, hint) or ctx.reads.tail(params, hint)
        if page.total == 0:
            if hint and not ctx.installation.ignore_department_assignments:
                # WHMCS counts awaiting tickets but lists none: an API admin without support departments sees
                # no tickets unless assignments are ignored. "0 s" would be a lie.
                raise ShapeError("GetTickets", f"GetTicketCounts counts {hint} awaiting tickets but GetTickets "
                                 "lists none: set ignore_department_assignments: true")
            return OldestAwaitingPart(ctx.installation.name, 0.0)
        lastreply = tail_lastreply(page)
        if lastreply is None:
            raise ShapeError("GetTickets", "the awaiting list kept changing between calls; the longest wait is "
                             "left out this poll")
        return OldestAwaitingPart(ctx.installation.name, age_of_tail(ctx.now, lastreply))
