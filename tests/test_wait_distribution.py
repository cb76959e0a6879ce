"""The wait-time distribution: exact bucket counts from few calls, checked against brute force.

Unit tests drive the collector with the in-memory GetTickets of testkit/fake_whmcs.py; integration tests use
the simulator over HTTP with the real client. Every call count asserted here is a measured figure
quoted in docs/performance.md (API calls per collector).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.client import WhmcsClient
from exporter.collectors.base import PollContext
from exporter.collectors.boundary_search import integrate_ages, search
from exporter.collectors.counts import CountsPart
from exporter.collectors.ticket_lists import fetch_page
from exporter.collectors.wait_distribution import WaitDistributionCollector
from exporter.config import DEFAULT_BUCKETS, ApiCredentials, InstallationConfig, Secret
from exporter.simulator import Simulator, World
from testkit.exposition import exposition, promtool_check
from testkit.fake_whmcs import UTC, FakeTicket, FakeTickets, truth_counts

NOW = 1_700_000_000
INST = InstallationConfig(name="t", url="http://whmcs.test", auth=ApiCredentials(Secret("i"), Secret("s")))


def poll(fake: FakeTickets, inst: InstallationConfig = INST, hint: int | None = None):
    ctx = PollContext(client=fake, now=NOW, installation=inst)
    if hint is not None:
        ctx.parts["counts"] = CountsPart("t", (), hint, hint, 0, ())
    return WaitDistributionCollector().poll(ctx)


def counts_of(part) -> list[int]:
    return [count for _, count in part.buckets]


def spread(n: int, seed: int) -> list[int]:
    """A desk like the simulator's: openings exponential around 9 days, replies anywhere since."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        opened = NOW - int(rng.expovariate(1 / (9 * 86400))) - 60
        out.append(opened if rng.random() < 0.15 else rng.randint(opened, NOW))
    return out


def test_small_list_is_fetched_whole_in_one_call_with_exact_sum():
    lastreplies = [NOW - s for s in (0, 899, 900, 901, 3600, 86400, 86401, 10**6, 10**6)]
    fake = FakeTickets.of(lastreplies, string_numbers=True)
    part = poll(fake)
    assert counts_of(part) == truth_counts(lastreplies, NOW, DEFAULT_BUCKETS)
    assert part.buckets[-1][0] == float("inf") and part.gsum == sum(NOW - t for t in lastreplies)
    assert part.gsum_exact and part.sample_ratio == 1.0 and fake.ticket_calls() == 1


def test_empty_list_is_all_zero_and_tickets_key_absent():
    fake = FakeTickets.of([])
    part = poll(fake)
    assert counts_of(part) == [0] * 9 and part.gsum == 0 and part.sample_ratio == 1.0
    assert fake.ticket_calls() == 1


def test_counts_hint_is_only_a_hint():
    lastreplies = spread(600, 3)
    fake = FakeTickets.of(lastreplies)
    part = poll(fake, hint=100)  # stale: WHMCS's totalresults wins, one more call fetches the rest
    assert counts_of(part) == truth_counts(lastreplies, NOW, DEFAULT_BUCKETS) and fake.ticket_calls() == 2
    fake = FakeTickets.of(lastreplies)
    assert counts_of(poll(fake, hint=600)) == truth_counts(lastreplies, NOW, DEFAULT_BUCKETS)
    assert fake.ticket_calls() == 1


@pytest.mark.parametrize(("n", "calls"), [(100, 1), (1000, 1), (10_000, 13), (100_000, 26)])
def test_exact_counts_and_measured_calls(n: int, calls: int):
    lastreplies = spread(n, 1)
    fake = FakeTickets.of(lastreplies)
    part = poll(fake)
    assert counts_of(part) == truth_counts(lastreplies, NOW, DEFAULT_BUCKETS)
    assert fake.ticket_calls() == part.calls == calls <= INST.distribution_max_calls
    assert part.gsum_exact == (n <= INST.sample_limit)
    truth_sum = sum(NOW - t for t in lastreplies)
    assert abs(part.gsum - truth_sum) <= 0.25 * truth_sum  # an estimate beyond sample_limit, and says so
    assert 0 < part.sample_ratio <= 1


@pytest.mark.parametrize("shape", ["uniform", "lognormal", "clusters", "all_in_one_bucket", "all_tied"])
def test_100k_other_spreads_stay_exact_within_the_cap(shape: str):
    rng = random.Random(2)
    draw = {
        "uniform": lambda: NOW - rng.randint(0, 30 * 86400),
        "lognormal": lambda: NOW - int(rng.lognormvariate(10, 2)),
        "clusters": lambda: NOW - rng.choice([100, 5000, 90_000, 10**6]) - rng.randint(0, 50),
        "all_in_one_bucket": lambda: NOW - rng.randint(4000, 14000),
        "all_tied": lambda: NOW - 7200,
    }[shape]
    lastreplies = [draw() for _ in range(100_000)]
    fake = FakeTickets.of(lastreplies)
    part = poll(fake)
    assert counts_of(part) == truth_counts(lastreplies, NOW, DEFAULT_BUCKETS)
    assert fake.ticket_calls() <= 40


lastreply_lists = st.one_of(
    st.lists(st.integers(0, 30 * 86400), max_size=3000),
    # clusters and ties: few distinct ages, many tickets each
    st.lists(st.sampled_from([0, 899, 900, 901, 3600, 86400, 604800, 604801]), max_size=3000),
    st.lists(st.integers(0, 30 * 86400), min_size=1, max_size=5).flatmap(
        lambda centres: st.lists(st.tuples(st.sampled_from(centres), st.integers(0, 120)), max_size=3000)
        .map(lambda pairs: [c + d for c, d in pairs])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ages=lastreply_lists, window=st.sampled_from([1, 7, 50, 250]), full=st.sampled_from([1, 100, 1000]),
       int_total=st.booleans())
def test_exact_or_absent_and_never_above_the_cap(ages: list[int], window: int, full: int, int_total: bool):
    lastreplies = [NOW - a for a in ages]
    fake = FakeTickets.of(lastreplies, string_numbers=not int_total)
    found = search(lambda s, n: fetch_page(fake, UTC, {}, s, n), NOW, DEFAULT_BUCKETS, total_hint=None,
                   full_limit=full, max_calls=40, window=window)
    assert fake.ticket_calls() == found.calls <= 40
    if found.counts is not None:
        assert list(found.counts) == truth_counts(lastreplies, NOW, DEFAULT_BUCKETS)
    else:
        assert found.calls == 40  # absent only when the cap stopped the search
    if window >= 50 or len(ages) <= 500:
        assert found.counts is not None


def test_cap_reached_exports_nothing():
    lastreplies = spread(100_000, 1)
    inst = InstallationConfig(name="t", url="http://whmcs.test", auth=ApiCredentials(Secret("i"), Secret("s")),
                              distribution_max_calls=5)
    fake = FakeTickets.of(lastreplies)
    part = poll(fake, inst)
    # The cap counts the search's reads: 5, of which the head window came from the page that learned the
    # list's length (the whole-list probe), so WHMCS saw 4 calls.
    assert part.buckets is None and part.sample_ratio is None and fake.ticket_calls() == part.calls == 4

    class Sink:
        def gauge_histogram(self, *args):
            raise AssertionError("nothing may be exported")

    part.families(Sink())


@pytest.mark.parametrize("moves", [1, 3, 10])
def test_movement_between_calls_costs_at_most_the_tickets_that_moved(moves: int):
    """Between calls, `moves` tickets get a staff reply (leave) or a customer reply (jump to the head)."""
    lastreplies = spread(20_000, 5)
    fake = FakeTickets.of(lastreplies)
    rng = random.Random(moves)
    moved = {"n": 0}

    def churn(f: FakeTickets) -> None:
        if moved["n"] >= moves:
            return
        moved["n"] += 1
        victim = f.tickets.pop(rng.randrange(len(f.tickets)))
        if rng.random() < 0.5:
            f.tickets.insert(0, FakeTicket(victim.id, NOW))

    fake.between_calls = churn
    before = truth_counts(lastreplies, NOW, DEFAULT_BUCKETS)
    after = truth_counts([t.lastreply for t in fake.tickets], NOW, DEFAULT_BUCKETS)
    part = poll(fake)
    assert part.buckets is not None
    got = counts_of(part)
    assert got == sorted(got) and got[-1] == len(lastreplies)  # monotone; +Inf = the first answer's total
    after = truth_counts([t.lastreply for t in fake.tickets], NOW, DEFAULT_BUCKETS)
    for value, old, new in zip(got, before, after):
        assert min(old, new) - moves <= value <= max(old, new) + moves


def test_integrate_ages_is_exact_when_everything_is_known():
    points = [(i, float(NOW - 10 * i)) for i in range(50)]
    assert integrate_ages(points, 50, NOW) == sum(10 * i for i in range(50))
    # Gaps: equal ages stay equal; a straight line is met within the two interpolations' spread.
    assert integrate_ages([(0, NOW - 100.0), (9, NOW - 100.0)], 10, NOW) == pytest.approx(1000)


# ---- exposition and the simulator -------------------------------------------------------------------

@pytest.mark.process
def test_exposition_passes_promtool():
    lastreplies = spread(3000, 4)
    other = InstallationConfig(name="empty", url="http://b.test", auth=ApiCredentials(Secret("i"), Secret("s")))
    text = exposition(poll(FakeTickets.of(lastreplies)), poll(FakeTickets.of([]), other))
    # The classic text format has no gaugehistogram type: prometheus_client writes `histogram` with
    # _gcount/_gsum series, which Prometheus ingests as plain gauges.
    assert b'whmcs_tickets_awaiting_reply_age_seconds_gcount{whmcs="empty"} 0.0' in text
    assert b'whmcs_tickets_awaiting_reply_age_seconds_bucket{le="+Inf",whmcs="t"}' in text
    promtool_check(text)


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def sim_poll(world: World, buckets=DEFAULT_BUCKETS, max_calls: int = 40):
    with Simulator(world=world) as sim:
        inst = InstallationConfig(name="sim", url=sim.url,
                                  auth=ApiCredentials(Secret("sim-identifier"), Secret("sim-secret")),
                                  timezone=world.tz_name, buckets=tuple(buckets),
                                  distribution_max_calls=max_calls)
        client = WhmcsClient(inst)
        part = WaitDistributionCollector().poll(PollContext(client=client, now=NOW, installation=inst))
        return part, client.stats.totals()[0]


def test_simulator_non_utc_zone_ties_and_merged_tickets_match_the_truth():
    world = World.generate(seed=9, tickets=4000, now=NOW, clock=Clock(), tz="Asia/Kolkata")
    buckets = (60.0, 900.0, 3600.0, 7200.0, 86400.0, 604800.0, 2592000.0)
    part, calls = sim_poll(world, buckets)
    truth = world.truth(NOW, buckets=buckets)
    assert counts_of(part) == [truth["wait_buckets"][le] for le in buckets] + [truth["wait_count"]]
    assert part.gsum == pytest.approx(truth["wait_sum"])  # about 1000 awaiting: fetched whole
    assert calls == {"GetTickets": part.calls} and part.calls <= 2


def test_simulator_100k_awaiting_tickets_exact_within_40_calls():
    world = World.generate(seed=1, tickets=102_100, now=NOW, clock=Clock(), mix={"Customer-Reply": 1})
    truth = world.truth(NOW)
    assert truth["wait_count"] >= 100_000
    part, calls = sim_poll(world)
    assert counts_of(part) == [truth["wait_buckets"][le] for le in DEFAULT_BUCKETS] + [truth["wait_count"]]
    assert calls["GetTickets"] == part.calls <= 40


@pytest.mark.parametrize("cap", [100, 1000])
def test_a_gateway_capping_limitnum_gives_exact_counts_or_none(cap: int):
    # A short page in the middle of the list is a capped answer, not the list's end: the counts must stay
    # exact (more calls) or be absent, never computed as if the list ended at the cap.
    rng = random.Random(cap)
    ages = [rng.randint(0, 10 * 86400) for _ in range(5000)]
    fake = FakeTickets.of([NOW - a for a in ages], max_limitnum=cap)
    part = WaitDistributionCollector().poll(PollContext(client=fake, now=NOW, installation=INST))
    assert fake.ticket_calls() <= INST.distribution_max_calls
    if part.buckets is not None:
        assert [c for _, c in part.buckets] == truth_counts([NOW - a for a in ages], NOW, DEFAULT_BUCKETS)
    else:
        assert part.gsum is None
