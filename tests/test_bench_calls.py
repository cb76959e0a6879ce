"""API calls per poll with every registered collector, exactly, at 100 and 100,000 tickets (in-process, seconds).

The same measurement as `python bench/bench.py` (testkit/bench_calls.py): the real client and collectors against
the simulator over HTTP, on a seeded static world (testkit/bench_world.py: 20% awaiting, 40% active) with the
poller's clock fixed, so the counts are deterministic. Timing figures live in the benchmark, never here.

Where the numbers come from (5 departments, each with awaiting tickets at every size). Each list page is read
once per poll and shared (exporter/collectors/poll_reads.py): a collector whose rows an earlier one already
read makes no call, and shows an empty dict.
- counts: 1 GetTicketCounts.
- oldest_awaiting: the awaiting list whole while it holds at most whole_list_max_tickets (5,000): 1 page of
  1,000 rows at 100 tickets (19 awaiting), 2 at 10,000 (2,000 awaiting); at 100,000 (19,9xx awaiting) its
  last 250 rows, 1 call.
- departments: 1 GetSupportDepartments; every department's longest wait comes from the awaiting rows already
  read (the whole list, or the tail page in which all 5 departments have a ticket): no GetTickets.
- priorities: 1 GetTickets (sample_limit tickets of the active list).
- wait_distribution: nothing while the whole list was read. At 100,000: the head window, then windows
  placed by interpolation/bisection (the tail window is oldest_awaiting's page): 18 on the first poll; from
  the second poll on each boundary is first looked for where it was last poll, 8 (bounded by
  distribution_max_calls=40).
- first_response: at most MAX_LIST_PAGES_PER_POLL=8 GetTickets pages per poll (incremental head scan first,
  the full pass over the 7-day window head gets the rest and continues on later polls), plus GetTicket per
  ticket whose replies it has not read, at most max_ticket_fetches_per_poll=50 per poll.
  100 tickets: first poll 1 page of 250 (the whole list: the full pass ends at once) + 50 GetTicket; next
  poll 1 incremental page + the 1 remaining GetTicket. 10,000 and 100,000: the full pass's first 8 pages
  + 50 GetTicket on each of the first two polls.
- flow: the head of the unfiltered list down to the previous poll's newest `lastreply` less 300 s, the same
  pages first_response's listing read (no call), and GetTicket for changed tickets within what first_response
  left of the 50 (none changed here): no call at all.
- warm: after the first-response cache was filled (bench.warm_first_response, no HTTP), with no traffic: the
  fixed reads above plus first_response's head scan (1 page; 2 at 100,000). Issue 19's bounds: <= 6 / 8 / 22.
"""

from __future__ import annotations

import pytest

from testkit.bench_calls import Bench

NOW = 1_750_000_000.0

EXPECTED = {
    100: (
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 1}, "flow": {}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 1, "GetTickets": 1}, "flow": {}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTickets": 1}, "flow": {}},
    ),
    10_000: (
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 2},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 8}, "flow": {}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 2},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 8}, "flow": {}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 2},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTickets": 1}, "flow": {}},
    ),
    100_000: (
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {"GetTickets": 18},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 8}, "flow": {}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {"GetTickets": 8},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTicket": 50, "GetTickets": 8}, "flow": {}},
        {"counts": {"GetTicketCounts": 1}, "oldest_awaiting": {"GetTickets": 1},
         "departments": {"GetSupportDepartments": 1}, "wait_distribution": {"GetTickets": 8},
         "priorities": {"GetTickets": 1}, "first_response": {"GetTickets": 2}, "flow": {}},
    ),
}
WARM_BOUND = {100: 6, 10_000: 8, 100_000: 22}  # issue 19


@pytest.mark.parametrize("tickets", sorted(EXPECTED))
def test_calls_per_poll(tickets: int) -> None:
    bench = Bench.start(tickets, NOW)
    try:
        expected = dict(zip(("first", "second", "warm"), EXPECTED[tickets]))
        measured = {}
        measured["first"] = bench.poll()
        bench.now += 60.0
        measured["second"] = bench.poll()
        bench.warm_first_response()
        bench.now += 60.0
        measured["warm"] = bench.poll()
        for name, poll in measured.items():
            assert poll.ok, name
            assert poll.by_collector == expected[name], name
        assert measured["warm"].total <= WARM_BOUND[tickets]
    finally:
        bench.stop()
