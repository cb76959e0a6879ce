"""Reading GetTicket answers (a ticket's replies) and summing first responses up: pure functions.

Nothing here calls WHMCS. Every function is a function of an API answer or of
plain values, raises `ValueError` on an answer it cannot read, and is tested
without HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from exporter.fields import items, parse_local_time, text, to_count


@dataclass(frozen=True)
class TicketReplies:
    """What one GetTicket answer says about a ticket's first staff response."""

    id: int
    tid: str
    opened: float | None
    lastreply: float | None
    first_staff_reply: float | None  # Unix time of the first staff reply after the opening message


@dataclass(frozen=True)
class _Reply:
    order: int  # replyid, or the position in the answer when a gateway leaves it out
    date: float
    staff: bool


def _replies(answer: Mapping[str, Any], zone: ZoneInfo) -> list[_Reply]:
    out = []
    for index, raw in enumerate(items(answer.get("replies"), "reply", "replies")):
        # Notes live under `notes`; should a gateway mix them into replies, they are still never responses.
        if "noteid" in raw or str(raw.get("type", "")).lower() == "note":
            continue
        ident = raw.get("replyid")
        order = to_count(ident, "replyid") if ident not in (None, "") else index
        admin = raw.get("admin")
        staff = bool(text(admin, "reply admin").strip()) if admin not in (None, False) else False
        out.append(_Reply(order, parse_local_time(raw.get("date"), zone, "reply date"), staff))
    return out


def first_staff_reply(replies: Sequence[_Reply]) -> float | None:
    """The time of the first staff reply after the opening message, or None.

    The order of the answer is not trusted (repliessort, gateways): replies are
    sorted by (date, replyid). The opening message is reply 0 (or the earliest
    one) and is never a response, even when staff opened the ticket for the customer.
    """
    if not replies:
        return None
    ordered = sorted(replies, key=lambda r: (r.date, r.order))
    opening = next((r for r in ordered if r.order == 0), ordered[0])
    for reply in ordered:
        if reply is not opening and reply.staff and reply.date >= opening.date:
            return reply.date
    return None


def parse_ticket_replies(answer: Mapping[str, Any], zone: ZoneInfo) -> TicketReplies:
    """A GetTicket answer -> TicketReplies. `ticketnum` stands in for `tid` on gateways; numbers may be strings."""
    ident = answer.get("ticketid", answer.get("id"))
    opened, last = answer.get("date"), answer.get("lastreply")
    replies = _replies(answer, zone)
    return TicketReplies(
        id=to_count(ident, "ticketid"),
        tid=text(answer.get("tid", answer.get("ticketnum", "")), "tid"),
        opened=parse_local_time(opened, zone, "date") if opened not in (None, "") else None,
        lastreply=parse_local_time(last, zone, "lastreply") if last not in (None, "") else None,
        first_staff_reply=first_staff_reply(replies),
    )


@dataclass(frozen=True)
class Summary:
    buckets: tuple[tuple[float, int], ...]  # (upper bound, cumulative count), +Inf last
    total_seconds: float
    without_staff_reply: int
    oldest_without_staff_reply_age: float
    coverage: float
    known: int = 0  # tickets whose replies are known (the histogram's population plus those without a reply)


def summarise(tickets: Iterable[tuple[float, bool, float | None]], now: float,
              bounds: Sequence[float]) -> Summary:
    """(opened, replies known, first staff reply) per ticket in the window -> the exported numbers.

    Only tickets whose replies are known count in the histogram and the
    without-reply figures; `coverage` says what share that is (1 for no tickets).
    """
    edges = tuple(bounds) + (math.inf,)
    counts = [0] * len(edges)
    total_seconds = 0.0
    waiting = 0
    oldest = 0.0
    seen = known = 0
    for opened, is_known, first in tickets:
        seen += 1
        if not is_known:
            continue
        known += 1
        if first is None:
            waiting += 1
            oldest = max(oldest, now - opened)
            continue
        # WHMCS stores whole seconds in one zone, so a reply never precedes its opening; clamp odd data anyway.
        seconds = max(0.0, first - opened)
        total_seconds += seconds
        for i, edge in enumerate(edges):
            if seconds <= edge:
                counts[i] += 1
    return Summary(buckets=tuple(zip(edges, counts)), total_seconds=total_seconds,
                   without_staff_reply=waiting, oldest_without_staff_reply_age=max(0.0, oldest),
                   coverage=known / seen if seen else 1.0, known=known)
