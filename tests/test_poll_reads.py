"""Reads shared by a poll's collectors: each page asked of WHMCS once, answers identical to a fresh call."""

from __future__ import annotations

import json
import random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.collectors.departments import oldest_by_department
from exporter.collectors.poll_reads import TAIL_ROWS, WHOLE_PAGE_ROWS, PollReads, slim_ticket
from exporter.collectors.reply_events import parse_reply_events
from exporter.collectors.ticket_lists import fetch_page
from exporter.collectors.ticket_replies import parse_ticket_replies
from exporter.errors import ApiError
from exporter.simulator import World
from exporter.simulator import api as sim_api
from testkit.fake_whmcs import UTC, FakeTicket, FakeTickets

NOW = 1_700_000_000
PARAMS = {"status": "Awaiting Reply", "ignore_dept_assignments": "1"}


def desk(n: int, ties: int = 1, seed: int = 3) -> FakeTickets:
    rng = random.Random(seed)
    fake = FakeTickets([FakeTicket(i + 1, NOW - 60 * (i // ties), deptid=rng.randint(1, 6)) for i in range(n)])
    fake.sort()
    return fake


def ids(page) -> list[int]:
    return [t.id for t in page.tickets]


def test_a_page_inside_one_read_earlier_is_answered_without_a_call():
    fake = desk(2000)
    reads = PollReads(fake, UTC, whole_limit=0)
    first = reads.page(PARAMS, 100, 500)
    inside = reads.page(PARAMS, 250, 100)
    assert len(fake.calls) == 1 and reads.list_calls == 1
    assert ids(inside) == ids(first)[150:250] == ids(fetch_page(desk(2000), UTC, PARAMS, 250, 100))
    assert inside.total == 2000 and inside.start == 250
    reads.page(PARAMS, 550, 100)  # runs past what was read: a call
    reads.page({**PARAMS, "deptid": 2}, 250, 100)  # another list: a call
    assert len(fake.calls) == 3


def test_a_page_that_ends_the_list_answers_any_request_reaching_past_the_end():
    fake = desk(600)
    reads = PollReads(fake, UTC, whole_limit=0)
    tail = reads.tail(PARAMS, 600)
    assert len(tail.tickets) == TAIL_ROWS and tail.reaches_end and len(fake.calls) == 1
    asked = reads.page(PARAMS, 500, 250)
    assert ids(asked) == ids(tail)[150:] and asked.reaches_end and len(fake.calls) == 1


def test_a_capped_page_answers_only_the_rows_it_holds():
    fake = desk(3000)
    fake.max_limitnum = 100  # a gateway that caps limitnum
    reads = PollReads(fake, UTC, whole_limit=0)
    assert len(reads.page(PARAMS, 0, 500).tickets) == 100
    assert len(reads.page(PARAMS, 0, 50).tickets) == 50 and len(fake.calls) == 1
    reads.page(PARAMS, 0, 500)
    assert len(fake.calls) == 2


@pytest.mark.parametrize(("n", "ties", "calls"), [(0, 1, 1), (999, 1, 1), (2500, 1, 3), (2500, 400, 3),
                                                   (5000, 1, 6)])
def test_a_short_list_is_read_whole_once_with_tie_runs_across_pages(n, ties, calls):
    fake = desk(n, ties)
    reads = PollReads(fake, UTC, whole_limit=5000)
    whole = reads.whole(PARAMS, n)
    assert sorted(ids(whole)) == list(range(1, n + 1)) and whole.total == n
    assert [t.lastreply for t in whole.tickets] == sorted((t.lastreply for t in whole.tickets), reverse=True)
    assert len(fake.calls) == calls
    # Every later read of the list, at any position, comes from it.
    assert reads.whole(PARAMS) is whole and reads.tail(PARAMS, n).tickets[-1:] == whole.tickets[-1:]
    assert ids(reads.page(PARAMS, n // 2, 700)) == ids(whole)[n // 2:n // 2 + 700]
    assert len(fake.calls) == calls


def test_a_list_longer_than_the_limit_is_not_read_whole():
    fake = desk(6000)
    reads = PollReads(fake, UTC, whole_limit=5000)
    assert reads.whole(PARAMS, 6000) is None and fake.calls == []  # the hint says so: no call
    assert reads.whole(PARAMS) is None and len(fake.calls) == 0
    fresh = PollReads(fake, UTC, whole_limit=5000)
    assert fresh.whole(PARAMS) is None and len(fake.calls) == 1  # the first page says so
    assert fresh.whole(PARAMS) is None and len(fake.calls) == 1
    assert fresh.whole(PARAMS, limit=10_000) is not None  # a caller allowing more gets it


def test_a_gateway_capping_pages_is_read_by_position_rather_than_in_many_calls():
    fake = desk(4000)
    fake.max_limitnum = 100
    reads = PollReads(fake, UTC, whole_limit=5000)
    assert reads.whole(PARAMS, 4000) is None
    assert len(fake.calls) == 2 * -(-5000 // (WHOLE_PAGE_ROWS - 5)) + 3  # the bound, then it gives up


def test_getticket_is_asked_once_per_poll_and_its_error_kept():
    class Tickets:
        calls: list[int] = []

        def call(self, action, params):
            self.calls.append(params["ticketid"])
            if params["ticketid"] == 9:
                raise ApiError(action, "Ticket ID Not Found")
            return {"result": "success", "ticketid": params["ticketid"]}

    client = Tickets()
    reads = PollReads(client, UTC, whole_limit=0)
    assert reads.ticket(5) == reads.ticket(5) == {"result": "success", "ticketid": 5}
    for _ in range(2):
        with pytest.raises(ApiError):
            reads.ticket(9)
    assert client.calls == [5, 9] and reads.ticket_calls == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 5)), min_size=1, max_size=300),
       st.integers(1, 300))
def test_a_departments_oldest_wait_from_a_suffix_is_its_oldest_in_the_whole_list(rows, suffix_len):
    fake = FakeTickets([FakeTicket(i + 1, NOW - age, deptid=d) for i, (age, d) in enumerate(rows)])
    fake.sort()
    whole = fetch_page(fake, UTC, PARAMS, 0, len(rows))
    suffix = whole.tickets[-suffix_len:]
    truth = {}
    for t in whole.tickets:
        truth[t.deptid] = min(t.lastreply, truth.get(t.deptid, t.lastreply))
    found = oldest_by_department(suffix)
    assert found == {d: truth[d] for d in {t.deptid for t in suffix}}


def test_a_kept_getticket_answer_parses_as_the_whole_answer_does():
    world = World.generate(seed=4, tickets=60, now=NOW)
    zone = ZoneInfo(world.tz_name)
    compared = 0
    for ticket in world.live_tickets():
        world.add_note(ticket.id, "internal")
        _, body = sim_api.handle(world, "GetTicket", {"ticketid": str(ticket.id), "repliessort": "ASC"})
        answer = json.loads(sim_api.to_json(body))
        kept = slim_ticket(answer)
        assert "notes" not in kept and all("message" not in r for r in kept["replies"]["reply"])
        assert parse_ticket_replies(kept, zone) == parse_ticket_replies(answer, zone)
        assert parse_reply_events(kept, zone) == parse_reply_events(answer, zone)
        compared += 1
    assert compared >= 50
    assert slim_ticket({"result": "success", "replies": "odd"}) == {"result": "success", "replies": "odd"}
