"""Authentication failures must never get the exporter's own IP banned; overload answers are honoured.

WHMCS bans an IP after 3 failed logins in 30 minutes. The exporter makes at most
one login attempt per `auth_backoff`, says in the log what to fix, and tries a
rotated secret file at once. 429/503 answers pause polling for Retry-After
(seconds or HTTP date), else back off exponentially with jitter.
"""

from __future__ import annotations

import email.utils
import random
import time

import pytest
import requests

from exporter import backoff
from exporter.backoff import MAX_RETRY_AFTER, Pause, jitter_for, next_poll_time, pause_after
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.errors import AuthError, CallTimeout, ConnectionFailed, HttpStatusError, PermissionDenied, RateLimited
from exporter.poller import InstallationPoller
from exporter.simulator import Simulator
from exporter.snapshot import SnapshotStore
from testkit.reliability import after_polls, installation, start, up, value, wait_until, write_secret

# -- backoff.py is pure ------------------------------------------------------------------------------------

ARGS = {"interval": 60.0, "auth_backoff": 1800.0, "max_backoff": 900.0}


def test_auth_failure_pauses_for_auth_backoff():
    assert pause_after(AuthError("GetTicketCounts", "IP Banned", status=403), overload_streak=0,
                       **ARGS) == Pause("auth", 1800.0)


@pytest.mark.parametrize("error", [CallTimeout("a", "slow"), ConnectionFailed("a", "refused"),
                                   HttpStatusError("a", "Bad Gateway", status=502),
                                   PermissionDenied("a", "Invalid Permissions")])
def test_other_failures_retry_on_schedule(error):
    assert pause_after(error, overload_streak=0, **ARGS) is None


def test_retry_after_is_honoured_and_clamped():
    def ask(seconds: float) -> Pause | None:
        return pause_after(RateLimited("a", "slow down", retry_after=seconds), overload_streak=1, **ARGS)

    assert ask(120) == Pause("rate_limit", 120.0)
    assert ask(0) == Pause("rate_limit", 1.0)  # never a tight loop
    assert ask(10**9) == Pause("rate_limit", MAX_RETRY_AFTER)  # a broken proxy cannot park us for years
    # 503 with Retry-After is an overload answer too.
    err = HttpStatusError("a", "Service Unavailable", status=503, retry_after=30.0, overloaded=True)
    assert pause_after(err, overload_streak=1, **ARGS) == Pause("rate_limit", 30.0)


def test_exponential_backoff_with_equal_jitter():
    rng = random.Random(42)
    pauses = [pause_after(RateLimited("a", "Rate Limit Exceeded"), overload_streak=n, rng=rng, **ARGS).seconds
              for n in range(1, 9)]
    ceilings = [60, 120, 240, 480, 900, 900, 900, 900]
    for got, ceiling in zip(pauses, ceilings, strict=True):
        assert ceiling / 2 <= got <= ceiling
    # Deterministic for a seed, and the same seed gives the same numbers.
    again = random.Random(42)
    assert pauses == [pause_after(RateLimited("a", "x"), overload_streak=n, rng=again, **ARGS).seconds
                      for n in range(1, 9)]
    # Jitter actually spreads: two exporters with different seeds do not retry in lockstep.
    other = random.Random(7)
    assert pauses != [pause_after(RateLimited("a", "x"), overload_streak=n, rng=other, **ARGS).seconds
                      for n in range(1, 9)]


def test_poll_schedule_never_piles_up():
    assert next_poll_time(100.0, 101.0, 60.0, 0.5) == 160.5
    assert next_poll_time(100.0, 190.0, 60.0, 0.0) == 250.0  # overran: one interval after it finished
    rng = random.Random(1)
    assert all(abs(jitter_for(60.0, rng)) <= 1.5 for _ in range(1000))
    assert all(abs(jitter_for(3600.0, rng)) <= 1.5 for _ in range(1000))
    assert backoff.jitter_for(10.0, random.Random(3)) == backoff.jitter_for(10.0, random.Random(3))


# -- 24 hours against wrong credentials, on a fake clock ---------------------------------------------------

class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def max_in_window(times: list[float], window: float) -> int:
    """Most events in any closed window of `window` seconds."""
    return max((sum(1 for u in times if t <= u <= t + window) for t in times), default=0)


def test_a_day_of_wrong_credentials_never_bans_the_host(tmp_path):
    clock = Clock(1_700_000_000.0)
    with Simulator(tickets=30, clock=clock, ban_window=1800.0) as sim:
        secret = write_secret(str(tmp_path), "secret", "wrong-secret")
        inst = InstallationConfig(name="w", url=sim.url,
                                  auth=ApiCredentials(Secret(inline=sim.identifier), Secret(path=secret)),
                                  timezone=sim.world.tz_name, poll_interval=60.0,
                                  timeout=5.0, auth_backoff=1800.0)
        poller = InstallationPoller(inst, SnapshotStore(["w"]), clock=clock)
        failed_at: list[float] = []
        start_t = clock.t
        # Try every poll_interval for 24 hours: poll_once itself must refuse to log in during the pause.
        while clock.t < start_t + 86400:
            before = len(sim.failed_logins())
            snap = poller.poll_once()
            failed_at += [clock.t] * (len(sim.failed_logins()) - before)
            assert not snap.up and snap.backoff_reason == "auth"
            clock.t += 60.0
        assert len(failed_at) == 48  # one attempt per 30 minutes: the exporter does keep trying
        assert max_in_window(failed_at, 1800.0) <= 2
        assert sim.auth.banned() == set()
        assert len(sim.calls) == 48  # and nothing else reached WHMCS

        # The admin fixes the secret file: the next poll uses it, without waiting out the pause.
        write_secret(str(tmp_path), "secret", sim.secret)
        clock.t += 60.0
        snap = poller.poll_once()
        assert snap.up and snap.backoff_reason is None
        assert sim.auth.banned() == set()


# -- the real process ------------------------------------------------------------------------------------

def call_gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


@pytest.mark.process
def test_wrong_secret_on_the_real_exporter_stays_under_the_ban_threshold(tmp_path):
    # auth_backoff and WHMCS's ban window scaled down together from 30 minutes to 3 seconds.
    with Simulator(tickets=30, ban_window=3.0) as sim:
        secret = write_secret(str(tmp_path), "secret", "definitely-wrong")
        inst = installation(sim, api_secret=None, api_secret_file=secret, auth_backoff="3s")
        with start(str(tmp_path), [inst]) as proc:
            s = proc.wait_for(lambda s: value(s, "whmcs_exporter_backoff", reason="auth") == 1.0)
            assert up(s) == 0.0
            wait_until(lambda: len(sim.failed_logins()) >= 4, timeout=15, what="4 login attempts")
            failed = sim.failed_logins()
            assert max_in_window(failed, 3.0) <= 2, failed
            assert min(call_gaps(failed)) >= 3.0 - 0.1, call_gaps(failed)
            assert sim.auth.banned() == set()
            log = proc.log()
            assert "authentication failed" in log and "Authentication Failed" in log
            assert "check api_identifier/api_secret" in log
            assert "No further login attempt for 3 s" in log
            s = proc.scrape()
            assert s.get("whmcs_exporter_api_request_failures_total", whmcs="w", action="GetTicketCounts",
                         reason="auth") == len(sim.failed_logins())
            assert s.get("whmcs_tickets_active", whmcs="w") is None  # no numbers without a successful poll


@pytest.mark.process
def test_rotated_secret_file_is_used_without_a_restart(tmp_path):
    with Simulator(tickets=30) as sim:
        secret = write_secret(str(tmp_path), "secret", "old-secret")
        inst = installation(sim, api_secret=None, api_secret_file=secret, auth_backoff="10m")
        with start(str(tmp_path), [inst]) as proc:
            proc.wait_for(lambda s: value(s, "whmcs_exporter_backoff", reason="auth") == 1.0)
            write_secret(str(tmp_path), "secret", sim.secret)
            # Well inside the 10-minute pause: only the changed file can explain the recovery.
            s = proc.wait_for(lambda s: up(s) == 1.0, timeout=10)
            assert value(s, "whmcs_exporter_backoff", reason="auth") == 0.0
            assert value(s, "whmcs_tickets_active") is not None
            assert len(sim.failed_logins()) == 1
            assert "credentials changed, trying them before the auth back-off ends" in proc.log()
            assert "poll succeeded again" in proc.log()


@pytest.mark.parametrize(("kind", "message", "advice"), [
    ("invalid_ip", "Invalid IP 127.0.0.1", "API IP allow-list"),
    ("banned", "IP Banned", "remove the ban in WHMCS"),
    ("access_key", "Invalid Access Key", "api_accesskey does not match"),
])
@pytest.mark.process
def test_access_refusals_are_retried_once_per_backoff(tmp_path, kind, message, advice):
    sim_args = {"allow_ips": ()} if kind != "banned" else {}
    if kind == "access_key":
        sim_args["accesskey"] = "the-right-key"
    with Simulator(tickets=30, **sim_args) as sim:
        if kind == "banned":
            for _ in range(3):  # someone else on this host already burnt the 3 attempts
                sim.auth.check("127.0.0.1", {"identifier": "x", "secret": "y"})
            assert sim.auth.banned() == {"127.0.0.1"}
        extra = {"api_accesskey": "a-wrong-key"} if kind == "access_key" else {}
        with start(str(tmp_path), [installation(sim, auth_backoff="2s", **extra)]) as proc:
            wait_until(lambda: len(sim.calls) >= 3, timeout=15, what="3 attempts")
            times = [c.time for c in sim.calls]
            assert min(call_gaps(times)) >= 2.0 - 0.1, call_gaps(times)
            assert {c.http_status for c in sim.calls} == {403}
            log = proc.log()
            assert message in log and advice in log
            s = after_polls(proc, 1)
            assert up(s) == 0.0
            assert s.get("whmcs_exporter_backoff", whmcs="w", reason="auth") == 1.0
            page = requests.get(proc.base + "/", timeout=5).text
            assert "paused for auth" in page and message in page


@pytest.mark.process
def test_rate_limit_retry_after_in_seconds_and_http_date(tmp_path):
    with Simulator(tickets=30) as sim:
        with start(str(tmp_path), [installation(sim)]) as proc:
            proc.wait_for(lambda s: up(s) == 1.0)
            for form in ("seconds", "http-date"):
                sim.reset_calls()
                not_before = float(int(time.time()) + 3)  # HTTP dates have whole seconds
                retry_after = "2" if form == "seconds" else email.utils.formatdate(not_before, usegmt=True)
                sim.faults.set("rate_limit", times=1, status=429, retry_after=retry_after)
                wait_until(lambda: any(c.http_status == 429 for c in sim.calls), what="the 429")
                limited = next(c.time for c in sim.calls if c.http_status == 429)
                s = proc.wait_for(lambda s: value(s, "whmcs_exporter_backoff", reason="rate_limit") == 1.0)
                assert up(s) == 0.0
                wait_until(lambda: len(sim.calls) >= 2, timeout=10, what="the retry")
                retry = sim.calls[1].time
                # No call before Retry-After has elapsed, per the simulator's own call log.
                if form == "seconds":
                    assert retry - limited >= 2.0, retry - limited
                else:
                    assert retry >= not_before, (retry, not_before)
                proc.wait_for(lambda s: up(s) == 1.0)
            s = proc.scrape()
            assert value(s, "whmcs_exporter_api_request_failures_total", action="GetTicketCounts",
                         reason="rate_limited") == 2.0
            assert "WHMCS is overloaded" in proc.log()


@pytest.mark.process
def test_503_with_retry_after_and_429_without(tmp_path):
    with Simulator(tickets=30) as sim:
        with start(str(tmp_path), [installation(sim)]) as proc:
            proc.wait_for(lambda s: up(s) == 1.0)
            sim.reset_calls()
            sim.faults.set("rate_limit", times=1, status=503, retry_after="2")
            wait_until(lambda: len(sim.calls) >= 2, timeout=10, what="the retry after 503")
            assert sim.calls[0].http_status == 503
            assert sim.calls[1].time - sim.calls[0].time >= 2.0
            proc.wait_for(lambda s: up(s) == 1.0)

            # Without Retry-After: exponential back-off from poll_interval (0.5 s), with jitter.
            sim.reset_calls()
            sim.faults.set("rate_limit", times=3, status=429)
            wait_until(lambda: len([c for c in sim.calls if c.http_status == 429]) >= 3, timeout=15,
                       what="three 429s")
            limited = [c.time for c in sim.calls if c.http_status == 429]
            gaps = call_gaps(limited)
            # Pauses of [0.5, 1] x 0.5 s floored at 1 s, then [0.5, 1] x 1 s floored at 1 s: never faster than 1 s.
            assert all(g >= 1.0 - 0.05 for g in gaps), gaps
            proc.wait_for(lambda s: up(s) == 1.0)
