"""API calls and time per poll of the sla collector at 100, 5,000 and 100,000 awaiting tickets.

    python -m bench.bench_sla

The collector runs unchanged against the simulator's API code in-process (no HTTP, so the seconds are
the collector's own work: parsing the list and the business-time arithmetic). Three polls per size:
cold (nothing cached: GetTicket within the default budget of 50), warm (every ticket's staff-reply
state cached, as after the catch-up polls) and warm after a minute of desk traffic in which staff
answered 1% of the waits (so the head of the list is read to count the replies). Above `max_tickets`
(100,000) the output also names the departments whose next-reply at-risk cells the boundary searches made
exact and those read whole, and thirty more polls a minute apart (`steady`): the bands move with the clock.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from exporter.collectors.base import PollContext
from exporter.collectors.sla import SlaCollector
from exporter.config import parse
from exporter.simulator import World
from testkit.in_process import MemoryClient

NOW = 1_796_036_400.0  # Monday 30 November 2026, 09:00 in Chicago
TZ = "America/Chicago"
SLA = {
    "business_hours": {day: "09:00-18:00" for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
    "targets": [{"priority": "Urgent", "first_response": "30m", "next_reply": "1h", "hours": "calendar"},
                {"department": "Billing", "first_response": "4h", "next_reply": "8h"},
                {"first_response": "8h", "next_reply": "24h"}],
}


def measure(tickets: int) -> dict[str, Any]:
    world = World.generate(seed=7, tickets=tickets, now=NOW, tz=TZ, clock=lambda: NOW,
                           mix={"Open": 1, "Customer-Reply": 2})
    inst = parse({"installations": [{"url": "http://whmcs.example", "api_identifier": "i", "api_secret": "s",
                                     "timezone": TZ, "sla": SLA}]}).installations[0]
    collector, client = SlaCollector(inst), MemoryClient(world)
    out: dict[str, Any] = {"awaiting": tickets}
    out["cold"] = _poll(collector, client, inst, NOW)
    # Warm the staff-reply cache in one go, then measure a poll with the default budget.
    _poll(collector, client, replace(inst, max_ticket_fetches_per_poll=tickets), NOW + 30)
    out["warm"] = _poll(collector, client, inst, NOW + 60)
    waits = sorted(collector.watched)
    for ident in waits[::100]:
        world.staff_reply(ident, at=NOW + 90)
    out["warm_with_replies"] = _poll(collector, client, inst, NOW + 120)
    out["warm_with_replies"]["replies_counted"] = sum(n for _, n in collector.responses.items())
    if tickets > inst.sla.max_tickets:
        out["steady"] = _steady(collector, client, inst, NOW + 120)
    return out


def _steady(collector: SlaCollector, client: MemoryClient, inst: Any, start: float) -> dict[str, Any]:
    """Thirty polls a minute apart with the default GetTicket budget: the bands move with the clock, so tickets
    enter them that were never classified. Do the departments stay exact?"""
    polls = [_poll(collector, client, inst, start + 60 * i) for i in range(1, 31)]
    return {"polls": len(polls), "max_calls": max(p["total"] for p in polls),
            "max_get_ticket": max(p["calls"].get("GetTicket", 0) for p in polls),
            "min_exact_departments": min(len(p.get("exact_at_risk", ())) for p in polls)}


def _poll(collector: SlaCollector, client: MemoryClient, inst: Any, now: float) -> dict[str, Any]:
    client.calls.clear()
    started = time.perf_counter()
    part = collector.poll(PollContext(client=client, now=now, installation=inst))
    out = {"calls": dict(sorted(client.calls.items())), "total": sum(client.calls.values()),
           "seconds": round(time.perf_counter() - started, 3), "sample_ratio": round(part.sample_ratio, 4)}
    if collector.last_read is not None:  # above max_tickets: what the department searches made exact
        out["exact_at_risk"] = sorted(collector.last_read.exact_at_risk)
        out["read_whole"] = sorted(collector.last_read.whole)
    return out


def main() -> None:
    for tickets in (100, 5000, 100_000):
        print(json.dumps(measure(tickets)))


if __name__ == "__main__":
    main()
