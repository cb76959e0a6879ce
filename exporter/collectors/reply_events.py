"""Which replies and ratings of a GetTicket answer are new since the ticket was last read: pure functions.

The flow collector counts every reply once and every rating once. Per ticket it keeps a `Ledger`: the date
up to which replies are counted and the keys of the replies at exactly that date (whole-second dates: two
replies can share one), and the keys of the replies whose rating was counted. A reply's key is its
`replyid`, or its date and author where a gateway gives no id. Nothing here calls WHMCS; a malformed
answer raises `ValueError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from exporter.fields import items, label_text, parse_local_time, to_count

RATINGS = ("1", "2", "3", "4", "5")
# In `Ledger.at_upto`: every reply dated exactly `upto` is counted (or history), whatever its key.
EVERY_REPLY = "*"


@dataclass(frozen=True, slots=True)
class ReplyEvent:
    """One reply after the opening message (notes are never replies)."""

    key: str  # replyid, or "<date>:<staff|customer>" where a gateway gives no id
    date: float
    admin: str  # the staff member's display name (entities decoded once); "" for a customer reply
    rating: int  # 0 = unrated, else 1-5

    @property
    def staff(self) -> bool:
        return bool(self.admin)


@dataclass(frozen=True, slots=True)
class Ledger:
    """What has been counted of one ticket's replies."""

    upto: float  # replies dated before this are counted (or predate the exporter)
    at_upto: tuple[str, ...] = ()  # keys of the replies dated exactly `upto` that are counted
    rated: tuple[str, ...] = ()  # keys of the replies whose rating is counted (or never will be)
    # Ratings count for the replies this ledger counts: those dated after `start` (the ticket's opening, or
    # when the exporter began watching it). A rating of an older reply is history, whenever it was given.
    start: float = 0.0


@dataclass(frozen=True)
class NewEvents:
    replies: tuple[ReplyEvent, ...]
    ratings: tuple[ReplyEvent, ...]
    ledger: Ledger
    last_staff: float | None  # date of the ticket's latest staff reply, None when it has none


def parse_reply_events(answer: Mapping[str, Any], zone: ZoneInfo) -> tuple[ReplyEvent, ...]:
    """The replies of a GetTicket answer without the opening message, oldest first."""
    found: list[tuple[float, int, ReplyEvent]] = []
    for index, raw in enumerate(items(answer.get("replies"), "reply", "replies")):
        # Notes live under `notes`; should a gateway mix them into replies, they are still not replies.
        if "noteid" in raw or str(raw.get("type", "")).lower() == "note":
            continue
        date = parse_local_time(raw.get("date"), zone, "reply date")
        admin = raw.get("admin")
        name = label_text(admin, "reply admin") if admin not in (None, False) else ""
        ident = raw.get("replyid")
        order = to_count(ident, "replyid") if ident not in (None, "") else index
        key = str(order) if ident not in (None, "") else f"{int(date)}:{'staff' if name else 'customer'}"
        rating = raw.get("rating")
        stars = to_count(rating, "rating") if rating not in (None, "") else 0
        found.append((date, order, ReplyEvent(key, date, name, stars if 1 <= stars <= 5 else 0)))
    if not found:
        return ()
    found.sort(key=lambda f: (f[0], f[1]))
    # The opening message is reply 0, or the earliest entry where a gateway numbers otherwise.
    opening = next((f for f in found if f[1] == 0 and f[2].key == "0"), found[0])
    return tuple(f[2] for f in found if f is not opening)


def new_events(ledger: Ledger, replies: tuple[ReplyEvent, ...]) -> NewEvents:
    """The replies and ratings not counted yet, and the ledger once they are."""
    counted = set(ledger.at_upto)
    fresh = tuple(r for r in replies if r.date > ledger.upto
                  or (r.date == ledger.upto and EVERY_REPLY not in counted and r.key not in counted))
    rated = set(ledger.rated)
    ratings = []
    for reply in replies:
        if not reply.rating or reply.key in rated:
            continue
        rated.add(reply.key)
        if reply.date > ledger.start or reply in fresh:
            ratings.append(reply)
    upto = max([ledger.upto, *(r.date for r in replies)])
    at_upto = tuple(sorted({r.key for r in replies if r.date == upto} | (counted if upto == ledger.upto else set())))
    staff = [r.date for r in replies if r.staff]
    return NewEvents(replies=fresh, ratings=tuple(ratings),
                     ledger=replace(ledger, upto=upto, at_upto=at_upto, rated=tuple(sorted(rated))),
                     last_staff=max(staff) if staff else None)
