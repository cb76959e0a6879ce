"""Runs of equal `lastreply` longer than a page: every listing reads a tie run whole and moves on by pages.

GetTickets orders ties arbitrarily (the simulator's `shuffle_ties` reorders them on every call), so a run
split across two pages can lose tickets; reading forward one row per page instead stalled the first-response
listing for good once a run outgrew its pages (10,000 tickets with 500 tied at the top, 3 s polls: coverage
0.049 after 150 polls; now 1 after 91, as without the run, at the GetTicket budget's pace). These tests
drive the collectors in-process against the simulator's API with runs of 1x, 2x and 10x a page.
"""

from __future__ import annotations

import random

import pytest

from exporter.collectors.base import PollContext
from exporter.collectors.boundary_search import WINDOW
from exporter.collectors.first_response import FirstResponseCollector
from exporter.collectors.ticket_lists import MAX_PAGE_ROWS, Page, TicketRow, next_page
from exporter.collectors.wait_distribution import WaitDistributionCollector
from exporter.collectors.window_listing import MAX_LIST_PAGES_PER_POLL, PAGE_SIZE
from exporter.config import DEFAULT_BUCKETS
from exporter.simulator import World
from testkit.in_process import MemoryClient
from tests.test_first_response import Clock, assert_truth, desk, installation, poll

DAY = 86400.0


def rows(lastreplies: list[float], start: int = 0, total: int = 10_000, requested: int = 0) -> Page:
    tickets = tuple(TicketRow(start + i, str(i), 1, "Open", "Low", t, t) for i, t in enumerate(lastreplies))
    return Page(total=total, start=start, tickets=tickets, requested=requested or len(tickets))


def test_next_page_reads_a_tie_run_whole():
    # A short trailing run: the next page starts `overlap` rows above it, a normal page.
    assert next_page(rows([9, 8, 7, 5, 5, 5], start=10), overlap=2, size=6) == (11, 8)
    assert next_page(rows([9, 8, 7, 6, 5, 4], start=10), overlap=2, size=6) == (13, 6)
    # The run fills the page: same start, twice the run plus the overlap, until it fits.
    assert next_page(rows([5] * 250, start=40), overlap=2, size=250) == (40, 502)
    assert next_page(rows([6] + [5] * 249, start=40), overlap=2, size=250) == (40, 500)
    # Most of the page is the run: it starts the next page, which is large enough to hold it twice over.
    assert next_page(rows([7] * 10 + [5] * 240), overlap=2, size=250) == (8, 482)
    # Never more than the largest page; a run longer than that is read page after page.
    assert next_page(rows([5] * 2000), overlap=2, size=250) == (0, MAX_PAGE_ROWS)
    assert next_page(rows([5] * MAX_PAGE_ROWS, start=7), overlap=2, size=250) == (7 + MAX_PAGE_ROWS - 2,
                                                                                     MAX_PAGE_ROWS)
    # A server answering fewer rows than asked (a capping gateway): growing cannot help, it steps by pages.
    assert next_page(rows([5] * 100, requested=250), overlap=2, size=250) == (98, 250)
    assert next_page(rows([]), overlap=2, size=250) == (0, 250)


def tied_desk(clock: Clock, run: int, age: float, tickets: int = 8000) -> World:
    """A desk where the `run` most recently opened tickets last replied to before `now - age` (and opened in
    the window) got one staff reply each in that same second."""
    world = desk(clock, tickets=tickets, seed=5)
    world.shuffle_ties = True
    window = sorted((t for t in world.live_tickets()
                     if t.date >= clock.t - 6.5 * DAY and t.lastreply < clock.t - age), key=lambda t: -t.date)
    assert len(window) >= run
    world.mass_reply([t.id for t in window[:run]], at=clock.t - age)
    return world


def polls_to_coverage(world: World, clock: Clock, limit: int) -> tuple[int, list[int]]:
    """Polls (3 s apart) until first-response coverage is 1, and every limitnum asked for on the way."""
    client, inst = MemoryClient(world), installation(max_ticket_fetches_per_poll=5000)
    collector = FirstResponseCollector(inst)
    asked: list[int] = []
    client.before = lambda a, p, n: asked.append(int(p["limitnum"])) if a == "GetTickets" else None
    for polls in range(1, limit + 1):
        client.calls.clear()
        part = poll(collector, client, inst, clock.t)
        assert client.calls["GetTickets"] <= MAX_LIST_PAGES_PER_POLL
        if part.coverage == 1.0:
            assert_truth(part, world, inst, clock.t)
            return polls, asked
        clock.t += 3
    raise AssertionError(f"coverage {part.coverage} after {limit} polls")


# (run in pages, where the run lies) -> polls until coverage 1, measured (before reading runs whole: 6, never,
# never at the top; 4, 40, never deep in the window; "never" = not within 60 polls). The window holds ~4,250
# tickets (17 pages of 250); every ticket's replies are read in the same poll (GetTicket budget 5,000).
@pytest.mark.parametrize(("pages", "age", "polls"), [
    # A run of 10 pages needs a page of 3,000 rows (MAX_PAGE_ROWS, set by the client's 2 MiB answer cap), which
    # the page size reaches by doubling: one poll more than a run that fits the first doublings.
    (1, 10, 4), (2, 10, 4), (10, 10, 4),  # at the top: inside the head scan's margin on every poll
    (1, DAY / 4, 4), (2, DAY / 4, 4), (10, DAY / 4, 3),  # deep in the window: the full pass meets it
])
def test_first_response_reaches_coverage_1_through_any_tie_run(pages: int, age: float, polls: int):
    clock = Clock()
    world = tied_desk(clock, pages * PAGE_SIZE, age)
    measured, asked = polls_to_coverage(world, clock, limit=20)
    assert measured == polls
    assert max(asked) <= MAX_PAGE_ROWS


def test_a_tie_run_at_the_top_costs_one_page_per_poll_once_known():
    clock = Clock()
    world = tied_desk(clock, 10 * PAGE_SIZE, age=10)
    polls_to_coverage(world, clock, limit=20)
    client, inst = MemoryClient(world), installation(max_ticket_fetches_per_poll=5000)
    collector = FirstResponseCollector(inst)
    for _ in range(4):
        poll(collector, client, inst, clock.t)
        clock.t += 3
    client.calls.clear()
    assert poll(collector, client, inst, clock.t).coverage == 1.0
    assert dict(client.calls) == {"GetTickets": 1}  # the head scan asks for the run's size at once


@pytest.mark.parametrize("pages", [1, 2, 10])
def test_wait_distribution_is_exact_across_tie_runs(pages: int):
    # Positions in the list carry the same lastreply whatever order ties come in, so the boundary search
    # stays exact; the runs sit at the head, in the middle and at the tail of the awaiting list.
    clock = Clock()
    world = World.generate(seed=4, tickets=8000, now=clock.t, clock=clock, mix={"Customer-Reply": 1})
    world.shuffle_ties = True
    awaiting = sorted(world.live_tickets(), key=lambda t: -t.lastreply)
    rng = random.Random(pages)
    for at in (clock.t - 30, clock.t - 2 * 3600, clock.t - 30 * DAY):
        for t in rng.sample(awaiting, pages * WINDOW):
            t.lastreply = int(at)
    world.customer_reply(awaiting[0].id, at=clock.t)  # a mutation: the simulator's indexes rebuild
    client, inst = MemoryClient(world), installation()
    part = WaitDistributionCollector().poll(PollContext(client=client, now=clock.t, installation=inst))
    truth = world.truth(clock.t)
    assert [c for _, c in part.buckets] == [truth["wait_buckets"][le] for le in DEFAULT_BUCKETS] + [
        truth["wait_count"]]
    assert client.calls["GetTickets"] == part.calls <= inst.distribution_max_calls
