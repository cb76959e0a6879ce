"""First-response time: opening to first staff reply, for tickets opened in a trailing window.

Each poll takes three steps: the window listing (`window_listing.py`) brings the
list of tickets opened in the window up to date; GetTicket reads the replies of
tickets whose first response is not known yet (oldest first, at most
`max_ticket_fetches_per_poll`, fewer when the measured call latency says they would not fit
before the poll's deadline; a first response never changes, so it is cached for
the ticket's life in the window, and a ticket whose `lastreply` equals its opening
needs no call); the known tickets are summed up, the histogram per department and
priority (ticket_labels.py: the departments collector's labels, priorities bounded;
every department x Low/Medium/High is exported, at 0 when empty, so series do not
come and go). Design, bounds and coverage: docs/first-response.md.
"""

from __future__ import annotations

import bisect
import logging
import math
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from exporter.collectors.base import PollContext
from exporter.collectors.ticket_labels import (
    STANDARD_PRIORITIES,
    DepartmentLabels,
    department_label,
    priority_labels,
    priority_text,
)
from exporter.collectors.ticket_replies import parse_ticket_replies, summarise
from exporter.collectors.window_listing import FULL_PASS_INTERVAL, MAX_LIST_PAGES_PER_POLL, Tracked, WindowListing
from exporter.errors import NotFound
from exporter.families import FROM_LAST_POLL, FamilySink
from exporter.state.saved import ItemView, SavedCollector

if TYPE_CHECKING:
    from exporter.config import InstallationConfig

log = logging.getLogger(__name__)

_SCOPE = (" Covers tickets opened in the trailing response window whose replies the exporter has read;"
          " whmcs_exporter_sample_ratio{collector=\"first_response\"} below 1 means the rest are still being"
          " fetched.")
HELP_HIST = ("Seconds from a ticket's opening to its first staff reply, over tickets opened in the window that "
             "got one, by the ticket's department and priority (sum by (le) for the whole desk)." + _SCOPE
             + FROM_LAST_POLL)
HELP_WITHOUT = "Tickets opened in the window with no staff reply yet." + _SCOPE + FROM_LAST_POLL
HELP_OLDEST = ("Seconds since the oldest ticket opened in the window with no staff reply yet was opened; 0 when "
               "none." + _SCOPE + FROM_LAST_POLL)


@dataclass(frozen=True)
class Histogram:
    department: str
    priority: str
    buckets: tuple[tuple[float, int], ...]
    total_seconds: float


@dataclass(frozen=True)
class FirstResponsePart:
    whmcs: str
    buckets: tuple[tuple[float, int], ...]  # the whole desk: the sum of `histograms`
    total_seconds: float
    without_staff_reply: int
    oldest_without_staff_reply_age: float
    coverage: float
    fetches: int = 0  # GetTicket calls of this poll: the per-poll budget is shared with the sla collector
    staff_replied: frozenset[int] = frozenset()  # tickets known to have a staff reply (a fact for their life)
    histograms: tuple[Histogram, ...] = ()  # per department and priority: what is exported

    @property
    def sample_ratio(self) -> float:
        """Share of the tickets opened in the window whose replies are known (1 when the window is empty);
        while the window is still being listed, a lower bound."""
        return self.coverage

    def families(self, out: FamilySink) -> None:
        labels = {"whmcs": self.whmcs}
        for h in self.histograms:
            out.gauge_histogram("whmcs_ticket_first_response_seconds", HELP_HIST,
                                {**labels, "department": h.department, "priority": h.priority}, h.buckets,
                                h.total_seconds)
        out.gauge("whmcs_tickets_without_staff_reply", HELP_WITHOUT, labels, self.without_staff_reply)
        out.gauge("whmcs_ticket_oldest_without_staff_reply_age_seconds", HELP_OLDEST, labels,
                  self.oldest_without_staff_reply_age)


class FirstResponseCollector:
    """Polls first-response times with a cache that lives as long as the installation's poller."""

    name = "first_response"

    def __init__(self, installation: InstallationConfig, full_pass_interval: float = FULL_PASS_INTERVAL,
                 max_list_pages: int = MAX_LIST_PAGES_PER_POLL) -> None:
        self.window = installation.response_window
        self.ignore_assignments = installation.ignore_department_assignments
        self.budget = installation.max_ticket_fetches_per_poll
        self.listing = WindowListing(full_pass_interval, max_list_pages)
        self.departments = DepartmentLabels()
        self.last_fetches = 0  # GetTicket calls of the last poll, for tests and logs
        self.last_budget = self.budget  # GetTicket calls the last poll allowed (the deadline may lower it)

    @property
    def tickets(self) -> dict[int, Tracked]:
        return self.listing.tickets

    @property
    def listing_complete(self) -> bool:
        """Whether every ticket of the window has been listed (coverage can reach 1)."""
        return self.listing.complete

    @property
    def last_full_pass(self) -> bool:
        return self.listing.last_full_pass

    def poll(self, ctx: PollContext) -> FirstResponsePart:
        self.listing.update(ctx, cutoff=ctx.now - self.window)
        self._fetch(ctx)
        # A ticket restored from state without its department and priority is not counted until listed again.
        summary = summarise(((t.opened, t.known and t.labelled, t.first_staff_reply) for t in self.tickets.values()),
                            ctx.now, ctx.installation.buckets)
        histograms = _histograms(self.tickets.values(), self.departments.current(ctx), ctx.now,
                                 ctx.installation.buckets)
        return FirstResponsePart(
            whmcs=ctx.installation.name, buckets=summary.buckets, total_seconds=summary.total_seconds,
            without_staff_reply=summary.without_staff_reply,
            oldest_without_staff_reply_age=summary.oldest_without_staff_reply_age,
            coverage=self._coverage(summary.known), fetches=self.last_fetches,
            staff_replied=frozenset(i for i, t in self.tickets.items() if t.first_staff_reply is not None),
            histograms=histograms)

    # -- state across restarts (exporter/state): a restart costs one ordinary poll, not a warm-up -------------
    def _settings(self) -> list:
        """What the saved tickets depend on: other settings list other tickets, so the state is not reused."""
        return [self.window, self.ignore_assignments]

    def save_state(self) -> SavedCollector:
        return SavedCollector(
            scalars={"settings": self._settings(), "listing": self.listing.export_state()},
            items=ItemView(self.tickets, lambda t: (t.opened, t.lastreply, t.read_at, t.first_staff_reply,
                                                     t.unreadable, t.listed, t.deptid, t.priority)))

    def restore_state(self, saved: SavedCollector) -> None:
        if list(saved.scalars["settings"]) != self._settings():
            log.info("first_response: response window or department setting changed since the state was saved: "
                     "listing the window afresh")
            return
        tickets = {int(ident): _tracked(item) for ident, item in saved.items.items()}
        self.listing.import_state(saved.scalars["listing"], tickets)
        if not all(t.labelled for t in tickets.values()):
            # Saved by a version without department and priority: the next poll lists the window for them.
            log.info("first_response: state without department and priority: listing the window again for them")
            self.listing.request_full_pass()

    def _coverage(self, known: int) -> float:
        """`known / tracked` once the window is listed; before, a lower bound of the true share (the tickets
        not listed yet lie in the rows below the pass's cursor)."""
        if not self.tickets and self.listing.complete:
            return 1.0
        # Up to `suspect` tracked tickets are merged or deleted and not dropped yet: not counted as known.
        known = max(0, known - self.listing.suspect)
        return known / (len(self.tickets) + self.listing.unread)

    def _fetch(self, ctx: PollContext) -> None:
        due = sorted((t.opened, i) for i, t in self.tickets.items() if t.needs_fetch)
        self.last_fetches = 0
        # As many as fit before the deadline at the measured latency: the rest waits for the next poll.
        self.last_budget = ctx.pace.affordable(min(self.budget, len(due)))
        for _, ident in due[:self.last_budget]:
            if ctx.pace.past_deadline():
                break  # WHMCS slowed down within the poll
            self.last_fetches += 1
            try:
                answer = ctx.reads.ticket(ident)
            except NotFound:
                self.tickets.pop(ident, None)  # merged or deleted since the list was read
                continue
            current = self.tickets[ident]
            try:
                found = parse_ticket_replies(answer, ctx.zone)
            except ValueError as exc:
                # One odd ticket must not fail the view on every poll: it is left out (coverage shows it).
                log.warning("whmcs=%s: GetTicket %d: unreadable answer (%s); left out until the ticket changes",
                            ctx.installation.name, ident, exc)
                self.tickets[ident] = replace(current, read_at=current.lastreply, unreadable=True)
                continue
            if found.id != ident:
                self.tickets.pop(ident, None)  # answered with another ticket: this one was merged into it
                continue
            last = max(current.lastreply, found.lastreply or current.lastreply)
            self.tickets[ident] = replace(current, lastreply=last, read_at=last,
                                          first_staff_reply=found.first_staff_reply, unreadable=False)


def _tracked(item: tuple) -> Tracked:
    # Six numbers from a version without labels; department and priority then stay unknown until listed.
    opened, lastreply, read_at, first_staff_reply, unreadable, listed, deptid, priority = (
        (*item, None, None) if len(item) == 6 else item)
    return Tracked(opened=float(opened), lastreply=float(lastreply),
                   read_at=None if read_at is None else float(read_at),
                   first_staff_reply=None if first_staff_reply is None else float(first_staff_reply),
                   unreadable=bool(unreadable), listed=int(listed),
                   deptid=None if deptid is None else int(deptid),
                   priority=None if priority is None else sys.intern(str(priority)))


def _histograms(tickets: Iterable[Tracked], departments: dict[int, str], now: float,
                bounds: Sequence[float]) -> tuple[Histogram, ...]:
    """One histogram per department x priority: every department with Low/Medium/High (at 0 when empty),
    other combinations where they have tickets; priorities beyond the bound summed under "other"."""
    # Grouped by the raw (deptid, priority) first: one cheap pass over a window of up to 100k tickets.
    raw: dict[tuple[int | None, str], list[float]] = {}
    for t in tickets:
        if t.first_staff_reply is not None and t.labelled and t.known:
            # WHMCS stores whole seconds in one zone, so a reply never precedes its opening; clamp odd data.
            raw.setdefault((t.deptid, priority_text(t.priority or "")), []).append(
                max(0.0, t.first_staff_reply - t.opened))
    found: Counter[str] = Counter()
    for (_, text), seconds in raw.items():
        found[text] += len(seconds)
    names = priority_labels(found)
    groups: dict[tuple[str, str], list[float]] = {
        (d, p): [] for d in set(departments.values()) for p in STANDARD_PRIORITIES}
    for (deptid, text), seconds in raw.items():
        groups.setdefault((department_label(departments, deptid), names[text]), []).extend(seconds)
    edges = (*bounds, math.inf)
    out = []
    for (department, priority), seconds in sorted(groups.items()):
        seconds.sort()
        buckets = tuple((edge, bisect.bisect_right(seconds, edge)) for edge in edges)
        out.append(Histogram(department, priority, buckets, sum(seconds)))
    return tuple(out)
