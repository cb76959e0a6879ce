"""The ticket lists one poll reads, shared by every collector: each list page is asked of WHMCS once per poll.

Several collectors need the same list: the `Awaiting Reply` list gives the longest wait, every
department's longest wait, the exact wait distribution and the SLA collector's waits. Before this
module each collector read its own rows (14 GetTickets in a warm poll at 10,000 tickets); now a poll
keeps every parsed page it read, and a request that an earlier page of the same list (same filters)
already covers is answered from it, without a call. The rows are those of one moment of the poll, as
they would be had one collector made every call.

A list short enough is read whole (`whole`): pages of WHOLE_PAGE_ROWS, tie runs read whole (see
`ticket_lists.next_page`), joined into one page that answers every later request, at any position.
`whole_list_max_tickets` sets how long a list may be; longer ones are read by position (the tail,
boundary searches), each page still shared. docs/performance.md has the measured crossover.

GetTicket answers are kept for the poll too (`ticket`), so two collectors reading one ticket's replies
cost one call, and `ticket_calls` is the per-poll GetTicket budget that first_response, sla and the
flow counters share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from exporter.client import ApiClient
from exporter.collectors.ticket_lists import MAX_PAGE_ROWS, Page, TicketRow, fetch_page, next_page
from exporter.errors import WhmcsError

# Rows per page of a whole read: ~600 KB of JSON on WHMCS 8, a third of the client's 2 MiB answer cap, so an
# installation with long subjects or extra fields stays well under it.
WHOLE_PAGE_ROWS = 1000
# Rows re-read where two pages of a whole read meet, for tickets that left the list between the calls.
OVERLAP = 5
# Rows of a tail read: the longest wait is the last row, and the wait distribution's tail window (and
# any department whose tickets appear in it) is answered by the same page.
TAIL_ROWS = 250
# The fields of a GetTicket reply that the collectors read (ticket_replies.py, reply_events.py).
REPLY_KEYS = ("replyid", "date", "admin", "rating", "type", "noteid")

ListKey = tuple[tuple[str, str], ...]


def list_key(params: Mapping[str, Any]) -> ListKey:
    """The list a request reads: its filters, without the position."""
    return tuple(sorted((k, str(v)) for k, v in params.items() if k not in ("limitstart", "limitnum")))


@dataclass
class _List:
    pages: list[Page] = field(default_factory=list)
    whole: Page | None = None
    longer_than: int | None = None  # known to hold more tickets than this: not read whole this poll


class PollReads:
    """One poll's reads; make a new one per poll (PollContext does), never keep one across polls."""

    def __init__(self, client: ApiClient, zone: ZoneInfo, whole_limit: int) -> None:
        self.client = client
        self.zone = zone
        self.whole_limit = whole_limit
        self.list_calls = 0  # GetTickets calls made (not answered from a kept page)
        self.ticket_calls = 0  # GetTicket calls made: the per-poll GetTicket budget is shared
        self._lists: dict[ListKey, _List] = {}
        self._tickets: dict[tuple[str, str], dict[str, Any] | WhmcsError] = {}

    # -- list pages -----------------------------------------------------------------------------------
    def page(self, params: Mapping[str, Any], start: int, num: int) -> Page:
        """`num` tickets from position `start`, from a page read earlier this poll when one covers them."""
        num = min(max(1, num), MAX_PAGE_ROWS)
        kept = self._lists.setdefault(list_key(params), _List())
        for page in ([kept.whole] if kept.whole else []) + kept.pages:
            served = _slice(page, start, num)
            if served is not None:
                return served
        self.list_calls += 1
        page = fetch_page(self.client, self.zone, params, start, num)
        kept.pages.append(page)
        return page

    def tail(self, params: Mapping[str, Any], total_hint: int | None, rows: int = TAIL_ROWS, attempts: int = 3) -> Page:
        """The list's last `rows` tickets (fewer when the list is shorter), normally in one call.

        Without a hint the first call (the head) learns `totalresults`. When tickets leave or join the list
        between calls, the answer's own total points at the new tail; after `attempts` calls the last
        answer is returned as it is (`ticket_lists.tail_lastreply` then says the tail is unknown).
        """
        if total_hint is None:
            page = self.page(params, 0, rows)
            if page.reaches_end:
                return page
            total_hint, attempts = page.total, attempts - 1
        page = self.page(params, max(0, total_hint - rows), rows)
        for _ in range(attempts - 1):
            if page.total == 0 or (page.tickets and page.reaches_end):
                return page
            page = self.page(params, max(0, page.total - rows), rows)
        return page

    def suffix(self, params: Mapping[str, Any]) -> tuple[TicketRow, ...]:
        """The longest run of rows read this poll that ends the list (its whole, or a page reaching the end)."""
        kept = self._lists.get(list_key(params))
        if kept is None:
            return ()
        if kept.whole is not None:
            return kept.whole.tickets
        ends = [p for p in kept.pages if p.tickets and p.reaches_end]
        return max(ends, key=lambda p: len(p.tickets)).tickets if ends else ()

    def whole(self, params: Mapping[str, Any], total_hint: int | None = None,
              limit: int | None = None) -> Page | None:
        """The whole list as one page when it holds at most `limit` tickets (default: whole_limit), else None.

        Read once per poll in pages of WHOLE_PAGE_ROWS; a list read whole earlier this poll is returned
        whatever `limit`. None also when the list would not hold still (or a gateway's page cap would
        make the read cost more than `limit` allows): callers then read by position.
        """
        limit = self.whole_limit if limit is None else limit
        kept = self._lists.setdefault(list_key(params), _List())
        if kept.whole is not None:
            return kept.whole
        if total_hint is not None and total_hint > limit:
            kept.longer_than = max(limit, kept.longer_than or 0)
        known = kept.longer_than
        if limit <= 0 or (known is not None and known >= limit):
            return None
        # Room for tickets that joined since the hint; without one, a page as long as the list may be.
        first_rows = min(WHOLE_PAGE_ROWS, (limit if total_hint is None else total_hint) + 25)
        page = self.page(params, 0, first_rows)
        if page.total > limit:
            kept.longer_than = max(limit, kept.longer_than or 0)
            return None
        rows = _read_on(self, params, page, max_calls=2 * math.ceil(limit / (WHOLE_PAGE_ROWS - OVERLAP)) + 2)
        if rows is None:
            kept.longer_than = limit  # moving too fast, or pages capped: by position this poll
            return None
        kept.whole = Page(total=len(rows), start=0, tickets=rows, requested=len(rows))
        return kept.whole

    # -- GetTicket --------------------------------------------------------------------------------------
    def ticket(self, ticket_id: int, replies_sort: str = "ASC") -> dict[str, Any]:
        """GetTicket for one ticket, asked of WHMCS at most once per poll (its error, too, is kept)."""
        key = (str(ticket_id), replies_sort)
        if key not in self._tickets:
            self.ticket_calls += 1
            try:
                answer = self.client.call("GetTicket", {"ticketid": ticket_id, "repliessort": replies_sort})
                self._tickets[key] = slim_ticket(answer)
            except WhmcsError as exc:
                if exc.aborts_poll:
                    raise
                self._tickets[key] = exc
        kept = self._tickets[key]
        if isinstance(kept, WhmcsError):
            raise kept
        return kept


def slim_ticket(answer: dict[str, Any]) -> dict[str, Any]:
    """A GetTicket answer without what no collector reads (messages, attachments, names, notes).

    A poll keeps up to `max_ticket_fetches_per_poll` answers until it ends; whole, 2,000 of them held ~13 MB
    more at the high-water mark than answers dropped once parsed. An answer of another shape is kept as it
    is, for the collectors' parsers to judge."""
    replies = answer.get("replies")
    rows = replies.get("reply") if isinstance(replies, dict) else replies
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return answer
    kept = {k: v for k, v in answer.items() if k not in ("replies", "notes")}
    kept["replies"] = {"reply": [{k: row[k] for k in REPLY_KEYS if k in row} for row in rows]}
    return kept


def _slice(page: Page, start: int, num: int) -> Page | None:
    """The part of a kept page that answers (start, num), or None when the page does not cover it all."""
    end = page.start + len(page.tickets)
    if start < page.start or start > end:
        return None
    if start + num > end and not page.reaches_end:
        return None
    offset = start - page.start
    return Page(total=page.total, start=start, tickets=page.tickets[offset:offset + num], requested=num)


def _read_on(reads: PollReads, params: Mapping[str, Any], page: Page, max_calls: int) -> tuple[TicketRow, ...] | None:
    """Every row from `page` to the list's end, each ticket once, newest reply first; None past `max_calls`."""
    rows: dict[int, TicketRow] = {t.id: t for t in page.tickets}
    for _ in range(max_calls):
        if page.reaches_end or not page.tickets:
            return tuple(sorted(rows.values(), key=lambda t: -t.lastreply))
        start, size = next_page(page, OVERLAP, WHOLE_PAGE_ROWS)
        page = reads.page(params, start, size)
        rows.update((t.id, t) for t in page.tickets)
    return None
