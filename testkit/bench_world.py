"""Seeded benchmark worlds for the simulator, and the ticket traffic applied between polls.

Every size uses the same status mix, so awaiting and active tickets scale with the
desk: 20% await a reply (Open, Customer-Reply), 40% are active (those plus Answered,
On Hold). Ticket ages come from the simulator's generator (opened ~9 days ago on
average), whatever the size.
"""

from __future__ import annotations

import random

from exporter.simulator import World

SEED = 7
TZ = "UTC"
# Status title -> weight: 20% awaiting reply, 40% active, at every size.
MIX: dict[str, float] = {"Closed": 60, "Answered": 15, "Open": 10, "Customer-Reply": 10, "On Hold": 5}
AWAITING_SHARE = 0.20
ACTIVE_SHARE = 0.40


def make_world(tickets: int, now: float, seed: int = SEED) -> World:
    """A static desk of `tickets` tickets whose times are relative to `now`."""
    return World.generate(seed=seed, tickets=tickets, mix=MIX, now=now, tz=TZ)


def apply_traffic(world: World, rng: random.Random, replies: int, at: float) -> dict[str, int]:
    """`replies` events of ticket traffic at time `at`: new tickets, staff replies and customer replies.

    A third of the events open a ticket, a third are staff replies to awaiting tickets, a third
    customer replies to answered tickets. Returns how many of each were applied.
    """
    done = {"new_ticket": 0, "staff_reply": 0, "customer_reply": 0}
    with world.lock:
        live = world.live_tickets()
        awaiting = [t.id for t in live if t.status in ("Open", "Customer-Reply")]
        answered = [t.id for t in live if t.status == "Answered"]
        for i in range(replies):
            kind = i % 3
            if kind == 0:
                world.add_ticket(deptid=rng.randint(1, 5), subject="Bench", at=at,
                                 priority=rng.choice(("Low", "Medium", "High")))
                done["new_ticket"] += 1
            elif kind == 1 and awaiting:
                world.staff_reply(awaiting.pop(rng.randrange(len(awaiting))), admin="Alice", at=at)
                done["staff_reply"] += 1
            elif answered:
                world.customer_reply(answered.pop(rng.randrange(len(answered))), at=at)
                done["customer_reply"] += 1
    return done
