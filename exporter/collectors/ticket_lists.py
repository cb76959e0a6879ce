"""Reading GetTickets, shared by every collector: pages of the `lastreply DESC` list, its tail, paging.

GetTickets has one order, `lastreply` newest first, with no tie-breaker. So
for any filter the ticket that has waited longest is the last one, and every
"waited at least X" boundary is a position in the list. These helpers read a
page or the tail and parse only the fields the collectors use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from exporter.client import ApiClient
from exporter.errors import ShapeError
from exporter.fields import items, label_text, parse_local_time, text, to_count

ACTION = "GetTickets"
AWAITING = "Awaiting Reply"
ACTIVE = "All Active Tickets"
# The largest page ever asked for. WHMCS has no cap on limitnum, but the client reads at most
# transport.MAX_ANSWER_BYTES (2 MiB) of one answer: 3,000 of the simulator's 8.x rows are 1.7 MB of JSON
# (~560 bytes a row), real WHMCS 8 rows about 600 bytes. Only a run of equal `lastreply` longer than a normal
# page, or a sample_limit above it, makes a collector ask for more than its usual size (250-1,000 rows).
MAX_PAGE_ROWS = 3000


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    tid: str
    deptid: int | None
    status: str
    priority: str
    date: float | None
    lastreply: float
    flag: int | None = 0  # the admin id the ticket is flagged to; 0 = not flagged, None = unreadable


@dataclass(frozen=True)
class Page:
    total: int
    start: int
    tickets: tuple[TicketRow, ...]
    requested: int = 0  # the limitnum asked for; a fuller answer than that shows a server that caps it

    @property
    def reaches_end(self) -> bool:
        return self.start + len(self.tickets) >= self.total


def sample_ratio(fetched: int, total: int) -> float:
    """The share of a list's `total` tickets that `fetched` rows of it cover (1 for an empty list)."""
    return 1.0 if total == 0 else min(1.0, fetched / total)


def parse_ticket(raw: Mapping[str, Any], zone: ZoneInfo) -> TicketRow:
    """One ticket of a GetTickets/GetTicket answer. `ticketnum` stands in for `tid` on gateways."""
    try:
        ident = raw.get("id", raw.get("ticketid"))
        dept = raw.get("deptid")
        opened = raw.get("date")
        return TicketRow(
            id=to_count(ident, "ticket id"),
            tid=text(raw.get("tid", raw.get("ticketnum", "")), "tid"),
            deptid=to_count(dept, "deptid") if dept not in (None, "") else None,
            status=label_text(raw.get("status", ""), "status"),
            priority=label_text(raw.get("priority", ""), "priority"),
            date=parse_local_time(opened, zone, "date") if opened not in (None, "") else None,
            lastreply=parse_local_time(raw.get("lastreply"), zone, "lastreply"),
            flag=_flag(raw.get("flag")),
        )
    except ValueError as exc:
        raise ShapeError(ACTION, f"unreadable ticket: {exc}") from None


def _flag(value: Any) -> int | None:
    """The `flag` admin id; absent or empty (gateways, older fakes) reads as not flagged. An odd value is
    None, not an error: only the staff collector reads flags, and it must not cost the others the list."""
    if value in (None, ""):
        return 0
    try:
        return to_count(value, "flag")
    except ValueError:
        return None


def parse_page(answer: Mapping[str, Any], zone: ZoneInfo, start: int, requested: int = 0) -> Page:
    try:
        total = to_count(answer.get("totalresults"), "totalresults")
        rows = items(answer.get("tickets"), "ticket", "tickets")
    except ValueError as exc:
        raise ShapeError(ACTION, str(exc)) from None
    tickets = tuple(parse_ticket(row, zone) for row in rows)
    return Page(total=total, start=start, tickets=tickets, requested=requested)


def fetch_page(client: ApiClient, zone: ZoneInfo, params: Mapping[str, Any], start: int, num: int) -> Page:
    """`num` tickets from position `start` (WHMCS turns limitnum=0 into 25, so num must be >= 1)."""
    # Above MAX_PAGE_ROWS the answer could outgrow the client's cap; fewer rows than asked read as a capped page.
    num = min(max(1, num), MAX_PAGE_ROWS)
    answer = client.call(ACTION, {**params, "limitstart": start, "limitnum": num})
    return parse_page(answer, zone, start, num)


def tail_lastreply(page: Page) -> float | None:
    """The last ticket's `lastreply` when `page` really ends the list; None when the list kept moving
    (or is empty), so that callers export nothing rather than the age of a ticket before the tail."""
    if page.tickets and page.reaches_end:
        return min(t.lastreply for t in page.tickets)
    return None


def age_of_tail(now: float, lastreply: float | None) -> float:
    """A wait never reads negative, even when WHMCS's clock runs ahead of ours."""
    return 0.0 if lastreply is None else max(0.0, now - lastreply)


def next_start(page: Page, overlap: int) -> int:
    """Where the next page of the `lastreply DESC` list starts, for pages of a fixed size.

    The list has no tie-breaker, so tickets sharing the page's last `lastreply`
    may come in another order on the next call: the next page re-reads that whole
    run, plus `overlap` rows for tickets that left the list between the calls
    (which shifts everything up). It always advances by at least one row, so a run
    longer than a page is crossed a row per call: listings use `next_page`, which
    grows the page instead.
    """
    if not page.tickets:
        return page.start
    return page.start + max(1, len(page.tickets) - trailing_run(page) - overlap)


def trailing_run(page: Page) -> int:
    """How many rows at the end of the page share its last `lastreply` (0 for an empty page)."""
    rows = page.tickets
    if not rows:
        return 0
    last, run = rows[-1].lastreply, 1
    for row in reversed(rows[:-1]):
        if row.lastreply != last:
            break
        run += 1
    return run


def next_page(page: Page, overlap: int, size: int, max_size: int = MAX_PAGE_ROWS) -> tuple[int, int]:
    """(start, limitnum) of the next page of the `lastreply DESC` list, so that a tie run is read whole.

    WHMCS may order a run of equal `lastreply` differently on every call, so a run split across two pages
    can lose or repeat tickets. The next page therefore starts `overlap` rows above the page's trailing
    run (as `next_start`) and asks for `size` rows, or for twice the run seen so far plus the overlap when
    the run is that long. When the run fills the page, the next page starts at the same row and is that
    much larger: the run is read whole in one answer and the listing then moves on by pages, not rows.
    Only a run longer than `max_size` rows (or a server that answers fewer rows than asked for) is read
    in consecutive pages of the largest size, advancing a page at a time; ties reordered between those
    calls may then be missed by this pass.
    """
    rows = page.tickets
    if not rows:
        return page.start, size
    run = trailing_run(page)
    wanted = min(max_size, max(size, 2 * run + overlap))
    start = page.start + len(rows) - run - overlap
    if start > page.start:
        return start, wanted
    can_grow = len(rows) >= page.requested and wanted > len(rows)
    if can_grow:
        return page.start, wanted
    return page.start + max(1, len(rows) - overlap), min(max_size, max(size, len(rows)))
