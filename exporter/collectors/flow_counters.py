"""The ticket-flow counters (opened, replies, ratings, staff replies), their part and their saved form.

Totals only ever grow; they live as long as the installation's poller and are saved across restarts
(exporter/state). Every department known from GetSupportDepartments and every rating 1-5 start at 0 so
that `rate()` and `increase()` see the first event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporter.collectors.reply_events import RATINGS, ReplyEvent
from exporter.families import FROM_LAST_POLL, FamilySink

OTHER_STAFF = "other"
AUTHORS = ("staff", "customer")

HELP_OPENED = ("Tickets opened, by department: counted once each when the exporter first sees a ticket id above "
               "the highest it has seen (tickets opened while it was down are counted when next seen).")
HELP_REPLIES = ("Replies to tickets, by department and author (staff or customer), each counted once; the opening "
                "message and staff notes are not replies. Lags while whmcs_exporter_pending_ticket_fetches > 0.")
HELP_RATINGS = ("Customer ratings (1-5) of staff replies, by department, each counted once; late ratings are "
                "counted when the ticket is read again rating_delay after its last staff reply.")
HELP_STAFF = ("Staff replies per staff member (the reply's admin name; beyond max_staff names, admin=\"other\"). "
              "Only with staff_metrics: true.")
HELP_PENDING = ("Tickets whose replies wait for a GetTicket call that the per-poll budget "
                "(max_ticket_fetches_per_poll) has not reached yet." + FROM_LAST_POLL)


@dataclass(frozen=True)
class FlowPart:
    whmcs: str
    opened: tuple[tuple[str, int], ...]
    replies: tuple[tuple[tuple[str, str], int], ...]  # ((department, author), count)
    ratings: tuple[tuple[tuple[str, str], int], ...]  # ((department, rating), count)
    staff: tuple[tuple[str, int], ...] | None  # None: staff_metrics is off
    pending: int
    fetches: int = 0  # GetTicket calls of this poll: the per-poll budget is shared with the sla collector

    def families(self, out: FamilySink) -> None:
        whmcs = self.whmcs
        for department, n in self.opened:
            out.counter("whmcs_tickets_opened", HELP_OPENED, {"whmcs": whmcs, "department": department}, n)
        for (department, author), n in self.replies:
            labels = {"whmcs": whmcs, "department": department, "author": author}
            out.counter("whmcs_ticket_replies", HELP_REPLIES, labels, n)
        for (department, rating), n in self.ratings:
            labels = {"whmcs": whmcs, "department": department, "rating": rating}
            out.counter("whmcs_ticket_ratings", HELP_RATINGS, labels, n)
        for admin, n in self.staff or ():
            out.counter("whmcs_staff_replies", HELP_STAFF, {"whmcs": whmcs, "admin": admin}, n)
        out.gauge("whmcs_exporter_pending_ticket_fetches", HELP_PENDING, {"whmcs": whmcs}, self.pending)


@dataclass
class FlowCounters:
    """The running totals of one installation."""

    max_staff: int = 50
    opened: dict[str, int] = field(default_factory=dict)
    replies: dict[tuple[str, str], int] = field(default_factory=dict)
    ratings: dict[tuple[str, str], int] = field(default_factory=dict)
    staff: dict[str, int] = field(default_factory=dict)

    def start_departments(self, departments: list[str]) -> None:
        """Zeros for every known department, so the first event is an increase."""
        for department in departments:
            self.opened.setdefault(department, 0)
            for author in AUTHORS:
                self.replies.setdefault((department, author), 0)
            for rating in RATINGS:
                self.ratings.setdefault((department, rating), 0)

    def count_opened(self, department: str) -> None:
        self.opened[department] = self.opened.get(department, 0) + 1

    def count_reply(self, department: str, reply: ReplyEvent) -> None:
        key = (department, "staff" if reply.staff else "customer")
        self.replies[key] = self.replies.get(key, 0) + 1
        if reply.staff:
            # Names beyond max_staff share one series, so a large team cannot blow the series budget.
            named = len(self.staff) - (OTHER_STAFF in self.staff)
            admin = reply.admin if reply.admin in self.staff or named < self.max_staff else OTHER_STAFF
            self.staff[admin] = self.staff.get(admin, 0) + 1

    def count_rating(self, department: str, reply: ReplyEvent) -> None:
        key = (department, str(reply.rating))
        self.ratings[key] = self.ratings.get(key, 0) + 1

    def part(self, whmcs: str, staff_metrics: bool, pending: int, fetches: int) -> FlowPart:
        if staff_metrics:
            self.staff.setdefault(OTHER_STAFF, 0)  # the series exists before the first staff reply is read
        return FlowPart(whmcs=whmcs, opened=tuple(sorted(self.opened.items())),
                        replies=tuple(sorted(self.replies.items())), ratings=tuple(sorted(self.ratings.items())),
                        staff=tuple(sorted(self.staff.items())) if staff_metrics else None,
                        pending=pending, fetches=fetches)

    def export(self) -> dict[str, Any]:
        return {"opened": [[d, n] for d, n in self.opened.items()],
                "replies": [[d, a, n] for (d, a), n in self.replies.items()],
                "ratings": [[d, r, n] for (d, r), n in self.ratings.items()],
                "staff": [[a, n] for a, n in self.staff.items()]}

    def take(self, saved: dict[str, Any]) -> None:
        """Continue from saved totals; raises (changing nothing) when they are malformed."""
        opened = {str(d): int(n) for d, n in saved["opened"]}
        replies = {(str(d), str(a)): int(n) for d, a, n in saved["replies"]}
        ratings = {(str(d), str(r)): int(n) for d, r, n in saved["ratings"]}
        staff = {str(a): int(n) for a, n in saved["staff"]}
        self.opened, self.replies, self.ratings, self.staff = opened, replies, ratings, staff
