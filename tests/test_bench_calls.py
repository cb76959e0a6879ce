"""API calls per poll with every registered collector, exactly, at 100 and 100,000 tickets (in-process, seconds).

The same measurement as `python bench/bench.py` (testkit/bench_calls.py): the real client and collectors against
the simulator over HTTP, on a seeded static world (testkit/bench_world.py: 20% awaiting, 40% active) with the
poller's clock fixed, so the counts are deterministic. Timing figures live in the benchmark, never here.

Where the numbers come from (5 departments, each with awaiting tickets at both sizes):
- counts: 1 GetTicketCounts.
- oldest_awaiting: 1 GetTickets (the awaiting list's tail, its position known from the counts).
- departments: 1 GetSupportDepartments + 1 GetTickets tail per department with awaiting tickets = 6.
- wait_distribution: 1 GetTickets while the awaiting list fits in one window (100 tickets: 19 awaiting);
  at 100,000 (19,9xx awaiting) head + tail windows, then interpolation/bisection windows: 19 on the first
  poll, 18 once the clock moved 60 s (the boundaries fall elsewhere); bounded by distribution_max_calls=40.
- priorities: 1 GetTickets (sample_limit tickets of the active list).
- first_response: at most MAX_LIST_PAGES_PER_POLL=8 GetTickets pages per poll (incremental head scan first,
  the full pass over the 7-day window head gets the rest and continues on later polls), plus GetTicket per
  ticket whose replies it has not read, at most max_ticket_fetches_per_poll=50 per poll.
  100 tickets: first poll 1 page of 250 (the whole list: the full pass ends at once) + 50 GetTicket; next
  poll 1 incremental page + the 1 remaining GetTicket.
  100,000 tickets: the window head is ~76,000 rows (305 pages of 250; ~54% of tickets were opened in the
  window). First poll: the full pass's first 8 pages (rows 0-1,972) + 50 GetTicket. Next poll: the head scan
  takes 2 pages (its first page of 100 rows is all newer than the previous newest minus 300 s, as the clock
  moved 60 s), the full pass the other 6 (cursor 1,973 -> 3,455), + 50 GetTicket (catch-up: ~45,300 due once
  the window is listed, after ~50 polls).
"""

from __future__ import annotations

import pytest

from testkit.bench_calls import Bench

NOW = 1_750_000_000.0

EXPECTED = {
    100: (
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1, "GetTickets": 5}, "wait_distribution": {"GetTickets": 1},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 1}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1, "GetTickets": 5}, "wait_distribution": {"GetTickets": 1},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 1, "GetTickets": 1}},
    ),
    100_000: (
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1, "GetTickets": 5}, "wait_distribution": {"GetTickets": 19},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 8}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1, "GetTickets": 5}, "wait_distribution": {"GetTickets": 18},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 8}},
    ),
}


@pytest.mark.parametrize("tickets", sorted(EXPECTED))
def test_calls_per_poll(tickets: int) -> None:
    bench = Bench.start(tickets, NOW)
    try:
        expected = {name: calls for name, calls in zip(("first", "second"), EXPECTED[tickets])}
        measured = {}
        measured["first"] = bench.poll()
        bench.now += 60.0
        measured["second"] = bench.poll()
        for name, poll in measured.items():
            assert poll.ok, name
            assert poll.by_collector == expected[name], name
    finally:
        bench.stop()
