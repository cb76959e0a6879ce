"""One real exporter process, two simulated installations at once: `alpha` speaks WHMCS's api.php, `beta` is
a bearer-token gateway whose tokens expire every 3 seconds.

The numbers of both must be exact (compared with each world's ground truth at the poll's own reference
time), tokens must be refreshed rather than re-acquired with a login per poll, a gateway lacking an action
must cost that action only, and one installation being slow or gone must not delay or hide the other's.
"""

from __future__ import annotations

import time

import pytest

from exporter.poller import first_poll_delays
from exporter.simulator import Simulator
from testkit.exporter_process import ExporterProcess, Samples, write_config

pytestmark = pytest.mark.process

TOKEN_TTL = 3.0
POLL = 1.0


@pytest.fixture
def sims(simulators) -> tuple[Simulator, Simulator]:
    return simulators(tickets=60, seed=11), simulators(style="bearer", tickets=60, seed=12, token_ttl=TOKEN_TTL)


def config(alpha: Simulator, beta: Simulator) -> list[dict]:
    common = {"poll_interval": f"{POLL}s", "timeout": "0.5s"}
    return [
        {"name": "alpha", "url": alpha.url, "api_identifier": alpha.identifier, "api_secret": alpha.secret,
         "timezone": alpha.world.tz_name, **common},
        {"name": "beta", "url": beta.url + "/api/v2/keliweb", "api_style": "bearer",
         "token_url": beta.url + "/oauth/token", "client_id": beta.identifier, "client_secret": beta.secret,
         "username": beta.admin_username, "password": beta.admin_password, "timezone": beta.world.tz_name,
         **common},
    ]


def last_success(samples: Samples, name: str) -> float | None:
    return samples.get("whmcs_exporter_last_poll_success_timestamp_seconds", whmcs=name)


def assert_exact(samples: Samples, name: str, sim: Simulator, derived: bool = False) -> float:
    """Every backlog number of `name` equals the world's truth at that poll's reference time."""
    now = last_success(samples, name)
    assert now is not None, f"{name} never polled successfully:\n{samples.text}"
    truth = sim.world.truth(now)
    by_status = {dict(labels)["status"]: value
                 for labels, value in samples.select("whmcs_tickets", whmcs=name).items()}
    expected = dict(truth["status_counts"])
    if derived:
        # Derived counts come from GetSupportStatuses, which lists configured statuses only.
        configured = {s.title for s in sim.world.statuses}
        expected = {k: v for k, v in expected.items() if k in configured}
    assert by_status == expected, name
    assert samples.get("whmcs_tickets_active", whmcs=name) == truth["active"], name
    assert samples.get("whmcs_tickets_awaiting_reply", whmcs=name) == truth["awaiting"], name
    assert samples.get("whmcs_ticket_oldest_awaiting_reply_age_seconds", whmcs=name) == \
        truth["oldest_awaiting_age"], name
    assert samples.get("whmcs_up", whmcs=name) == 1.0
    for labels, value in samples.select("whmcs_exporter_collector_success", whmcs=name).items():
        assert value == 1.0, (name, labels)
    return now


def watch(proc: ExporterProcess, seconds: float, check) -> list[Samples]:  # noqa: ANN001 - a callable
    """Scrape every 0.25 s for `seconds`, running `check(samples)` on each; scrapes must stay fast."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        samples = proc.scrape()
        assert time.monotonic() - started < 0.5, "a scrape waited on a poll"
        check(samples)
        seen.append(samples)
        time.sleep(0.25)
    return seen


def advanced(seen: list[Samples], name: str) -> int:
    """How many distinct successful polls of `name` the scrapes saw."""
    return len({last_success(s, name) for s in seen if last_success(s, name) is not None})


def test_two_installations_two_styles_one_exporter(sims: tuple[Simulator, Simulator], tmp_path) -> None:
    alpha, beta = sims
    path = write_config(str(tmp_path), config(alpha, beta))
    with ExporterProcess([f"--config.file={path}", "--log.level=debug"]) as proc:
        proc.wait_ready()

        # 1. Both exact over several token lifetimes; the gateway's tokens are refreshed, not logged into.
        def both_exact(samples: Samples) -> None:
            assert_exact(samples, "alpha", alpha)
            assert_exact(samples, "beta", beta)

        proc.wait_for(lambda s: last_success(s, "alpha") and last_success(s, "beta"), timeout=10)
        seen = watch(proc, 3 * TOKEN_TTL + 0.5, both_exact)
        assert advanced(seen, "alpha") >= 6 and advanced(seen, "beta") >= 6
        grants = beta.grant_counts
        assert grants["password"] == 1, grants
        assert grants["refresh_token"] >= 2, grants
        last = seen[-1]
        # Refreshed before expiry: no API call ever met an expired token.
        assert last.select("whmcs_exporter_api_request_failures_total", whmcs="beta") == {}
        assert last.get("whmcs_exporter_api_requests_total", whmcs="beta", action="oauth_token") == \
            grants["password"] + grants["refresh_token"]
        assert last.get("whmcs_exporter_api_requests_total", whmcs="beta", action="GetTicketCounts") >= 6
        beta_requests = {dict(k)["action"]: v for k, v in
                         last.select("whmcs_exporter_api_requests_total", whmcs="beta").items()}
        print(f"after {3 * TOKEN_TTL + 0.5:.1f}s: beta grants {grants}, calls in the last poll: alpha "
              f"{last.get('whmcs_exporter_poll_api_calls', whmcs='alpha')}, beta "
              f"{last.get('whmcs_exporter_poll_api_calls', whmcs='beta')}; beta requests {beta_requests}")
        assert "access_token" not in proc.log() and beta.secret not in proc.log() \
            and beta.admin_password not in proc.log()

        # 2. The gateway stops offering GetTicketCounts: counts are derived, every collector still succeeds.
        beta.drop_actions({"GetTicketCounts"})
        dropped_at = time.time()
        proc.wait_for(lambda s: s.get("whmcs_exporter_api_request_failures_total", whmcs="beta",
                                      action="GetTicketCounts", reason="unsupported")
                      and last_success(s, "beta") > dropped_at + 0.01, timeout=5)
        seen = watch(proc, 1.5, lambda s: (assert_exact(s, "beta", beta, derived=True),
                                           assert_exact(s, "alpha", alpha)))
        assert seen[-1].get("whmcs_tickets_flagged", whmcs="beta") is None  # no equivalent: absent, not guessed
        assert seen[-1].get("whmcs_tickets_flagged", whmcs="alpha") is not None
        assert "has no GetTicketCounts" in proc.log()
        beta.drop_actions(set())
        assert beta.grant_counts["password"] == 1

        # 3. The gateway (token endpoint included) turns slower than the timeout: alpha is not delayed.
        beta.faults.set("slow", delay=1.0)
        proc.wait_for(lambda s: s.get("whmcs_up", whmcs="beta") == 0.0, timeout=5)
        seen = watch(proc, 3.0, lambda s: assert_exact(s, "alpha", alpha))
        assert advanced(seen, "alpha") >= 2
        assert seen[-1].get("whmcs_up", whmcs="beta") == 0.0
        beta.faults.clear()
        proc.wait_for(lambda s: s.get("whmcs_up", whmcs="beta") == 1.0, timeout=5)

        # 4. alpha's WHMCS goes away: its whmcs_up drops to 0, beta stays fresh and exact.
        # Simulator.stop() closes the listener but not the exporter's open keep-alive connection, which its
        # handler thread would go on serving; a dead process closes both, so reset that connection too.
        alpha.faults.set("reset", mode="empty")
        alpha.stop()
        proc.wait_for(lambda s: s.get("whmcs_up", whmcs="alpha") == 0.0, timeout=5)
        # beta still derives its counts: a gateway that lacked GetTicketCounts is asked again only hourly.
        seen = watch(proc, 2.5, lambda s: assert_exact(s, "beta", beta, derived=True))
        assert advanced(seen, "beta") >= 2
        assert seen[-1].get("whmcs_up", whmcs="alpha") == 0.0
        assert seen[-1].select("whmcs_exporter_api_request_failures_total", whmcs="alpha", reason="connection")
        print(f"beta grants after {time.time() - dropped_at:.0f}s more: {beta.grant_counts}")


def test_first_polls_are_spread_over_the_first_interval(simulators, tmp_path) -> None:
    sim = simulators(tickets=40, seed=5)
    interval = 4.0
    entries = [{"name": f"desk{i}", "url": sim.url, "api_identifier": sim.identifier, "api_secret": sim.secret,
                "timezone": sim.world.tz_name, "poll_interval": f"{interval:g}s", "timeout": "2s"}
               for i in range(4)]
    path = write_config(str(tmp_path), entries)
    with ExporterProcess([f"--config.file={path}", "--storage.path="]) as proc:
        proc.wait_ready(timeout=20)
        firsts = sorted(c.time for c in sim.calls_for("GetTicketCounts"))[:4]
    # desk{i} polls first at i/4 of the interval: 1 s apart (each poll's own jitter is ±2.5% of later intervals).
    gaps = [b - a for a, b in zip(firsts, firsts[1:])]
    assert all(0.8 <= gap <= 1.5 for gap in gaps), gaps


def test_first_poll_delays_spread_each_installation_over_its_own_interval() -> None:
    assert first_poll_delays([60.0]) == [0.0]
    assert first_poll_delays([60.0] * 4) == [0.0, 15.0, 30.0, 45.0]
    assert first_poll_delays([10.0, 60.0]) == [0.0, 30.0]
