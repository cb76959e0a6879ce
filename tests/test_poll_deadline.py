"""A slow WHMCS must never blank the dashboard: a poll's deadline, per-collector freshness, adaptive budgets.

Most cases run on a fake clock (testkit/slow_whmcs.py): the simulator's latency advances the clock, so a
100,000-ticket desk at 2 s per call polls in a fraction of a real second. The last case runs the real exporter
process against the HTTP simulator at 0.6 s per call in real time.
"""

from __future__ import annotations

import time

import pytest

from exporter.collectors.boundary_search import search
from exporter.collectors.pacing import CallLatency, Pace
from exporter.collectors.registry import DEFAULTS
from exporter.collectors.ticket_lists import fetch_page
from exporter.config import DEFAULT_BUCKETS, ConfigError, parse
from exporter.simulator import Simulator, World
from exporter.simulator.__main__ import parse_args
from testkit.exporter_process import ExporterProcess, Samples, write_config
from testkit.fake_whmcs import UTC, FakeTickets, truth_counts
from testkit.slow_whmcs import FakeClock, SlowDesk, core_mismatches


def coverage(samples: Samples) -> float | None:
    return samples.get("whmcs_exporter_sample_ratio", whmcs="desk", collector="first_response")


# ---- the pace: deadline and latency -------------------------------------------------------------------

def test_the_budget_is_what_fits_before_the_deadline_at_the_measured_latency():
    clock = FakeClock(100.0)
    pace = Pace(clock=clock, deadline=110.0, latency=CallLatency())
    assert pace.affordable(50) == 50 and not pace.cut  # nothing measured yet: the loop's own check stops it
    pace.latency.add(2.0)
    assert pace.affordable(50) == 5 and pace.cut
    fast = Pace(clock=clock, deadline=110.0, latency=CallLatency(seconds=0.02))
    assert fast.affordable(50) == 50 and not fast.cut
    clock.t = 108.5  # 1.5 s left: a 2 s call would end after the deadline
    assert pace.past_deadline() and not fast.past_deadline()
    # Two collectors that can wait share the 1.5 s left: the first gets half of it.
    fast.share(2)
    assert fast.remaining() == 0.75 and fast.affordable(50) == 37


def test_latency_average_follows_a_change_without_jumping_on_one_call():
    latency = CallLatency()
    for _ in range(20):
        latency.add(0.02)
    latency.add(2.0)
    assert 0.02 < latency.seconds < 1.0
    for _ in range(30):
        latency.add(2.0)
    assert abs(latency.seconds - 2.0) < 0.01


def test_wait_distribution_keeps_the_exact_buckets_when_the_deadline_stops_refinement():
    now = 1_700_000_000
    lastreplies = [now - int(1.13 ** (i % 140)) - i for i in range(20_000)]
    fake = FakeTickets.of(lastreplies)

    def fetch(start, num):
        return fetch_page(fake, UTC, {}, start, num)

    truth = truth_counts(lastreplies, now, DEFAULT_BUCKETS)
    complete = search(fetch, now, DEFAULT_BUCKETS, total_hint=None, full_limit=1000, max_calls=40)
    assert list(complete.counts) == truth and not complete.deferred
    calls = []
    stopped = search(fetch, now, DEFAULT_BUCKETS, total_hint=None, full_limit=1000, max_calls=40,
                     stop=lambda: calls.append(1) or len(calls) > 3)
    assert stopped.deferred and stopped.calls < complete.calls
    known = [(i, n) for i, n in enumerate(stopped.counts) if n is not None]
    assert stopped.counts[-1] == len(lastreplies) and 1 <= len(known) < len(truth)
    assert all(n == truth[i] for i, n in known)  # true or absent


def test_poll_deadline_config_defaults_to_half_the_interval():
    base = {"url": "https://whmcs.example", "api_identifier": "i", "api_secret": "s"}
    assert parse({"installations": [{**base, "poll_interval": "40s"}]}).installations[0].deadline == 20.0
    assert parse({"installations": [{**base, "poll_deadline": "45s"}]}).installations[0].deadline == 45.0
    with pytest.raises(ConfigError) as err:
        parse({"installations": [{**base, "poll_deadline": "soon"}]})
    assert err.value.problems == ["installations[0].poll_deadline: not a duration like 60s, 5m or 1h30m"]


# ---- the whole poller on a fake clock ---------------------------------------------------------------

def run_on_schedule(desk: SlowDesk, polls: int) -> list[tuple[float, float, Samples]]:
    """Polls every interval; after each, scrapes right away, mid-interval and just before the next poll.
    Returns (start, duration, scrape after the poll) per poll; asserts the core series on every scrape."""
    interval = desk.installation.poll_interval
    first = desk.clock.t
    out = []
    for k in range(polls):
        desk.clock.t = first + k * interval
        start, duration = desk.poll()
        after = desk.scrape()
        for moment in (start + duration, start + interval / 2, start + interval - 0.001):
            desk.clock.t = moment
            assert core_mismatches(desk.scrape(), desk.world) == [], f"poll {k} at +{moment - start:.1f}s"
        out.append((start, duration, after))
    return out


def test_2s_per_call_100k_tickets_60s_interval_core_exact_polls_within_deadline_coverage_rising():
    # first_response as the last collector that can wait. With flow on (after it), flow's first poll takes half
    # of the ~8 s the backlog numbers leave (11 calls); later it leaves its share to first_response while nothing
    # waits in its queue (tests/test_flow.py), and first_response then runs up to the deadline.
    desk = SlowDesk(tickets=100_000, latency=2.0, interval=60.0, collectors=DEFAULTS - {"flow"})
    polls = run_on_schedule(desk, 5)
    deadline = desk.installation.deadline
    assert deadline == 30.0
    assert all(duration <= deadline for _, duration, _ in polls), [d for _, d, _ in polls]
    ratios = [coverage(s) for _, _, s in polls]
    assert all(b >= a for a, b in zip(ratios, ratios[1:])) and ratios[-1] > ratios[0], ratios
    # Each poll made 15 calls at 2 s (the deadline, not the call budgets, bounded the work that can wait).
    assert {s.get("whmcs_exporter_poll_api_calls", whmcs="desk") for _, _, s in polls} == {15.0}


def test_getticket_budget_follows_the_measured_latency():
    fetched = {}
    for latency in (0.02, 2.0):
        desk = SlowDesk(tickets=3000, latency=latency, interval=60.0)
        collector = next(c for c in desk.poller.collectors if c.name == "first_response")
        for _ in range(12):
            start, duration = desk.poll()
            assert duration <= desk.installation.deadline
            desk.clock.t = start + 60
            if collector.last_fetches:
                break
        fetched[latency] = collector.last_fetches
    assert fetched[0.02] == desk.installation.max_ticket_fetches_per_poll  # the configured cap binds
    assert 0 < fetched[2.0] < 10  # ~30 s minus 22 s of other calls, at 2 s each


def test_default_deadline_at_0_6s_keeps_the_backlog_exact_and_first_responses_rising():
    # Counts, the whole awaiting list (600 tickets, one page), departments and priorities are 4 calls: 2.4 s,
    # inside the default 5 s deadline. The wait distribution is answered by the list already read; the first
    # response collector gets the rest of the time and its coverage rises from poll to poll.
    desk = SlowDesk(tickets=3000, latency=0.6, interval=10.0)
    polls = run_on_schedule(desk, 4)
    assert desk.installation.deadline == 5.0
    assert all(duration <= 5.0 + 1e-6 for _, duration, _ in polls), [d for _, d, _ in polls]
    for _, _, samples in polls:
        for collector in ("counts", "oldest_awaiting", "departments", "priorities", "wait_distribution"):
            assert samples.get("whmcs_exporter_collector_deferred", whmcs="desk", collector=collector) == 0
            assert samples.get("whmcs_exporter_collector_success", whmcs="desk", collector=collector) == 1
        assert samples.get("whmcs_exporter_collector_series", whmcs="desk", collector="wait_distribution") > 0
    ratios = [coverage(s) for _, _, s in polls]
    assert all(b > a for a, b in zip(ratios, ratios[1:])), ratios


def test_a_part_goes_stale_max_age_after_its_answers_arrived_not_after_the_poll_start():
    desk = SlowDesk(tickets=3000, latency=0.6, interval=10.0)
    start, _ = desk.poll()
    read = desk.scrape().get("whmcs_exporter_collector_last_success_timestamp_seconds", whmcs="desk",
                             collector="departments")
    assert read == pytest.approx(start + 0.6 * 3, abs=1e-6)  # counts, the awaiting list, then departments' 1 call
    desk.clock.t = read + desk.installation.max_age
    samples = desk.scrape()
    assert samples.get("whmcs_department_tickets_active", whmcs="desk", department="Sales") is not None
    assert samples.get("whmcs_tickets_active", whmcs="desk") is None  # counts arrived 1.2 s earlier: stale
    assert samples.get("whmcs_exporter_collector_series", whmcs="desk", collector="counts") == 0
    desk.clock.t = read + desk.installation.max_age + 0.01
    assert desk.scrape().get("whmcs_department_tickets_active", whmcs="desk", department="Sales") is None


def test_a_deferred_collector_keeps_its_previous_part_until_it_is_stale():
    desk = SlowDesk(tickets=3000, latency=0.6, interval=10.0, poll_deadline=9.0)
    start, _ = desk.poll()
    first = desk.scrape()
    assert first.get("whmcs_exporter_collector_deferred", whmcs="desk", collector="wait_distribution") == 0
    buckets = first.select("whmcs_tickets_awaiting_reply_age_seconds_bucket", whmcs="desk")
    assert len(buckets) == len(DEFAULT_BUCKETS) + 1
    desk.world.latency = 2.5  # WHMCS slows down: the backlog's 4 calls alone now pass the 9 s deadline
    desk.clock.t = start + 10
    desk.poll()
    second = desk.scrape()
    assert second.get("whmcs_exporter_collector_deferred", whmcs="desk", collector="wait_distribution") == 1
    assert second.get("whmcs_exporter_collector_success", whmcs="desk", collector="wait_distribution") == 1
    assert second.select("whmcs_tickets_awaiting_reply_age_seconds_bucket", whmcs="desk") == buckets
    read = first.get("whmcs_exporter_collector_last_success_timestamp_seconds", whmcs="desk",
                     collector="wait_distribution")
    desk.clock.t = read + desk.installation.max_age + 0.01
    gone = desk.scrape()
    assert gone.select("whmcs_tickets_awaiting_reply_age_seconds_bucket", whmcs="desk") == {}
    assert gone.get("whmcs_exporter_collector_series", whmcs="desk", collector="wait_distribution") == 0


# ---- the real exporter against the HTTP simulator, in real time ---------------------------------------------

def test_simulator_latency_flag_and_knob():
    assert parse_args(["--latency", "0.6"]).latency == 0.6
    assert parse_args([]).latency == 0.0
    world = World.generate(seed=1, tickets=10)
    with Simulator(world=world, latency=0.3):
        assert world.latency == 0.3


@pytest.mark.process
def test_real_exporter_at_0_6s_per_call_3000_tickets_10s_interval(tmp_path):
    """Real time, real HTTP: ~50 s, the default deadline (5 s): the backlog collectors take 4 calls (2.4 s),
    the first-response collector the time left."""
    world = World.generate(seed=5, tickets=3000, tz="UTC")
    with Simulator(world=world, latency=0.6) as sim:
        config = write_config(str(tmp_path), [{
            "name": "desk", "url": sim.url, "api_identifier": sim.identifier, "api_secret": sim.secret,
            "timezone": "UTC", "poll_interval": "10s", "timeout": "5s"}])
        with ExporterProcess(["--config.file", config]) as exporter:
            exporter.wait_ready(timeout=30)
            polls: dict[float, Samples] = {}
            ended = time.monotonic() + 45
            while time.monotonic() < ended:
                samples = exporter.scrape()
                if samples.get("whmcs_up", whmcs="desk") == 1:
                    assert core_mismatches(samples, world) == []  # every scrape from the first good poll on
                    polls.setdefault(samples.get("whmcs_exporter_last_poll_timestamp_seconds", whmcs="desk"),
                                     samples)
                time.sleep(0.5)
    starts = sorted(polls)
    assert len(starts) >= 4, starts
    for start in starts:
        duration = polls[start].get("whmcs_exporter_poll_duration_seconds", whmcs="desk")
        calls = polls[start].get("whmcs_exporter_poll_api_calls", whmcs="desk")
        assert calls * 0.6 <= duration <= 5.0 + 1.0  # the latency is real; 1 s for CPU on a loaded machine
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(9.5 <= gap <= 10.5 for gap in gaps), gaps  # on schedule (±2.5% jitter)
    ratios = [coverage(polls[s]) for s in starts]
    assert all(b >= a for a, b in zip(ratios, ratios[1:])) and ratios[-1] > ratios[0], ratios
