"""Ticket flow in the simulated desk: customers rating staff replies over time, and the truth of the flow counters.

A customer rates a staff reply (1-5) some time after it, often without writing again, so the ticket's
`lastreply` does not move. `flow_truth` counts, straight from the raw tickets, what the exporter's flow
counters should have counted between two times: tickets opened, replies by author, ratings, staff replies.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .world import Reply, Ticket, World

# Customers rate good answers more often than bad ones.
_STARS = (1, 2, 3, 4, 5)
_STAR_WEIGHTS = (1, 1, 2, 4, 8)
RATE_CHANCE = 0.3  # per live step
RATE_WITHIN = 86400  # customers rate a staff reply within a day of it, if at all


def rate(world: World, ticket_id: int, replyid: int, stars: int, at: float | None = None) -> Reply:
    """The customer rates a staff reply; the ticket's `lastreply` stays as it is (as in WHMCS)."""
    if stars not in _STARS:
        raise ValueError(f"a rating is 1-5, not {stars}")
    with world.lock:
        t = world.tickets[ticket_id]
        reply = next((r for r in world.replies(t) if r.replyid == replyid), None)
        if reply is None or not reply.admin or reply.replyid == 0:
            raise ValueError(f"ticket {ticket_id} has no staff reply {replyid}")
        reply.rating = stars
        reply.rated_at = int(world.clock() if at is None else at)
        world._bump()
        return reply


def rate_some(world: World, rng: random.Random, now: int) -> None:
    """One live step's ratings: sometimes a customer rates the latest unrated staff reply of a ticket."""
    if rng.random() >= RATE_CHANCE:
        return
    candidates = [(t, r) for t in world.live_tickets() if t.replies is not None
                  for r in t.replies[-1:0:-1] if r.admin and not r.rating and now - RATE_WITHIN <= r.date < now][:200]
    if candidates:
        ticket, reply = rng.choice(candidates)
        rate(world, ticket.id, reply.replyid, rng.choices(_STARS, weights=_STAR_WEIGHTS)[0], at=now)


def flow_truth(world: World, since: float, until: float | None = None) -> dict[str, dict]:
    """What the flow counters should have counted for events in (since, until]: opened per department name,
    replies per (department, author), ratings (given in that time, of replies made in it) per (department,
    "1".."5"), staff replies per admin name."""
    end = float("inf") if until is None else until
    opened: dict[str, int] = {}
    replies: dict[tuple[str, str], int] = {}
    ratings: dict[tuple[str, str], int] = {}
    staff: dict[str, int] = {}
    with world.lock:
        names = {d.id: d.name for d in world.departments}
        for t in world.live_tickets():
            department = names.get(t.deptid, f"id {t.deptid}")
            if since < t.date <= end:
                opened[department] = opened.get(department, 0) + 1
            for r in _replies_known(t):
                if since < r.date <= end:
                    author = "staff" if r.admin else "customer"
                    replies[(department, author)] = replies.get((department, author), 0) + 1
                    if r.admin:
                        staff[r.admin] = staff.get(r.admin, 0) + 1
                # The exporter counts the ratings of the replies it counted: those after `since`.
                if r.rating and since < r.date and since < r.rated_at <= end:
                    ratings[(department, str(r.rating))] = ratings.get((department, str(r.rating)), 0) + 1
    return {"opened": opened, "replies": replies, "ratings": ratings, "staff": staff}


def _replies_known(t: Ticket) -> list[Reply]:
    """Replies after the opening message. Histories not built yet predate every change: nothing new in them."""
    return [] if t.replies is None else t.replies[1:]
