"""Fault injection against the real exporter process: every way WHMCS (or the network) can fail.

One exporter polls three installations: the simulator (`w`), a port nobody
listens on (`refused`) and a host name that cannot resolve (`dns`). Faults are
switched on the simulator one at a time. Throughout, /metrics answers 200 (every
scrape goes through ExporterProcess.scrape, which asserts it), the failing
installation says why in `whmcs_exporter_api_request_failures_total{reason}`
and in the log, the other installations are unaffected, and recovery needs
nothing but the fault going away.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import requests

from exporter.simulator import Simulator
from testkit.exporter_process import ExporterProcess, Samples, free_port
from testkit.reliability import FAST, NAME, failures, installation, polls, start, up, value, wait_until

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("faults"))
    with Simulator(tickets=60) as sim:
        others = [{**installation(sim), "name": "refused", "url": f"http://127.0.0.1:{free_port()}"},
                  {**installation(sim), "name": "dns", "url": "http://whmcs.invalid"}]
        with start(directory, [installation(sim), *others]) as proc:
            yield sim, proc


def healthy(s: Samples) -> bool:
    return up(s) == 1.0 and all(v == 1.0 for v in s.select("whmcs_exporter_collector_success", whmcs=NAME).values())


@pytest.fixture
def clean(env):
    """Each test starts from a healthy installation `w` with no faults."""
    sim, proc = env
    sim.faults.clear()
    sim.deny_actions([])
    proc.wait_for(healthy)
    sim.reset_calls()
    yield sim, proc
    sim.faults.clear()
    sim.deny_actions([])


def fail_with(proc: ExporterProcess, reason: str, action: str = "GetTicketCounts") -> Samples:
    """Wait until `action` has failed with `reason` at least once more, then for the poll to publish up=0."""
    before = failures(proc.scrape(), reason, action)
    return proc.wait_for(lambda s: failures(s, reason, action) > before and up(s) == 0.0)


def test_unreachable_installations_fail_alone(env):
    sim, proc = env
    s = proc.wait_for(lambda s: failures(s, "connection") >= 0 and s.get("whmcs_up", whmcs="dns") == 0.0
                      and s.get("whmcs_up", whmcs="refused") == 0.0 and up(s) == 1.0)
    for name in ("refused", "dns"):
        assert s.get("whmcs_exporter_api_request_failures_total", whmcs=name, action="GetTicketCounts",
                     reason="connection") >= 1.0
        assert s.get("whmcs_tickets_active", whmcs=name) is None
        assert s.get("whmcs_exporter_last_poll_success_timestamp_seconds", whmcs=name) is None
        assert s.get("whmcs_exporter_backoff", whmcs=name, reason="auth") == 0.0
    log = proc.log()
    assert "whmcs=refused: poll failed: GetTicketCounts: connection refused (is WHMCS reachable" in log
    assert "whmcs=dns: poll failed: GetTicketCounts: DNS lookup failed for the WHMCS host name (check url)" in log
    # Connection failures are retried on schedule (they cost WHMCS nothing): polls keep coming.
    before = s.get("whmcs_exporter_polls_total", whmcs="refused")
    proc.wait_for(lambda s: s.get("whmcs_exporter_polls_total", whmcs="refused") >= before + 2)


SIMPLE_FAULTS = [
    # (fault kind, options, reason, text in the log)
    ("slow", {"delay": 1.0}, "timeout", "GetTicketCounts: no answer within 0.3s"),
    ("reset", {}, "connection", "GetTicketCounts: connection broken in the middle of the answer"),
    ("reset", {"mode": "empty"}, "connection", "GetTicketCounts: connection reset by the server"),
    ("http_error", {"status": 500}, "http", "GetTicketCounts: HTTP 500: 500 Error | 500 Error The server is unhappy."),
    ("http_error", {"status": 502}, "http", "GetTicketCounts: HTTP 502: 502 Error"),
    ("html_200", {}, "invalid_response", "GetTicketCounts: HTTP 200: expected JSON, got HTML page: "
                                         "Down for Maintenance | We'll be back soon"),
    ("truncated", {}, "invalid_response", "GetTicketCounts: HTTP 200: truncated or malformed JSON"),
    ("garbage", {}, "invalid_response", "GetTicketCounts: HTTP 200: expected JSON, got non-JSON text: "
                                        "Warning: mysqli_connect()"),
    ("json", {"body": None}, "invalid_response", "GetTicketCounts: HTTP 200: expected JSON, got non-JSON text"),
    ("json", {"body": [1, 2]}, "invalid_response", "GetTicketCounts: HTTP 200: expected JSON, got non-JSON text"),
    ("json", {"body": {"totally": "different"}}, "invalid_response",
     "GetTicketCounts: HTTP 200: JSON answer without result=success/error"),
]


@pytest.mark.parametrize(("kind", "opts", "reason", "logged"), SIMPLE_FAULTS,
                         ids=[f"{k}-{'-'.join(map(str, o.values())) or 'default'}" for k, o, _, _ in SIMPLE_FAULTS])
def test_fault_fails_the_poll_and_recovers(clean, kind, opts, reason, logged):
    sim, proc = clean
    sim.faults.set(kind, action="GetTicketCounts", **opts)
    started = time.monotonic()
    s = fail_with(proc, reason)
    # A poll already past GetTicketCounts when the fault was set goes on to GetTickets: the calls are counted
    # from the next poll on, which fails from its first call.
    sim.reset_calls()
    s = fail_with(proc, reason)
    # The scrape answered promptly even while WHMCS hung: scrapes never wait on WHMCS.
    t0 = time.monotonic()
    proc.scrape()
    assert time.monotonic() - t0 < 0.5
    assert value(s, "whmcs_exporter_collector_success", collector="counts") == 0.0
    # A fault of the whole answer ends the poll: the next view is not polled (no call wasted on a broken WHMCS).
    assert value(s, "whmcs_exporter_collector_success", collector="oldest_awaiting") == 0.0
    assert sim.calls_for("GetTickets") == []
    assert logged in proc.log()
    assert value(s, "whmcs_exporter_backoff", reason="auth") == 0.0
    # Only the failing action counts failures.
    assert failures(s, reason, "GetTickets") == 0.0
    sim.faults.clear()
    s = proc.wait_for(healthy)
    assert value(s, "whmcs_tickets_active") is not None
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("status", [502, 503])
def test_html_error_pages_once(clean, status):
    sim, proc = clean
    sim.faults.set("http_error", action="GetTicketCounts", times=1, status=status)
    s = fail_with(proc, "http")
    assert f"GetTicketCounts: HTTP {status}: {status} Error" in proc.log()
    assert value(s, "whmcs_exporter_api_request_failures_total", action="GetTicketCounts", reason="http") >= 1
    proc.wait_for(healthy)


N = {"awaitingReply": 1, "flaggedTickets": 0}
SHAPES = [
    ({"result": "success"}, "allActive has type NoneType, expected a number"),
    ({"result": "success", "allActive": None, **N}, "allActive has type"),
    ({"result": "success", "allActive": 1, **N, "status": [1, 2]},
     "status is not a map"),
    ({"result": "success", "allActive": 1, **N, "status": {"open": ["Open", 3]}}, "status.open is not an object"),
    ({"result": "success", "allActive": 10**15, **N}, "allActive is out of range"),
    ({"result": "success", "allActive": 2.5, **N}, "allActive is not a whole number: 2.5"),
    ({"result": "success", "allActive": "-3", **N}, "allActive is not a number: '-3'"),
    ({"result": "success", "allActive": 1, **N, "filteredDepartments": {"1": 2}},
     "filteredDepartments is not a list"),
]


@pytest.mark.parametrize(("body", "logged"), SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_wrong_shape_fails_that_view_only(clean, body, logged):
    sim, proc = clean
    sim.faults.set("json", action="GetTicketCounts", body=body)
    s = proc.wait_for(lambda s: value(s, "whmcs_exporter_collector_success", collector="counts") == 0.0)
    assert f"collector=counts failed: GetTicketCounts: {logged}" in proc.log()
    # The other view keeps working, so WHMCS counts as up and its series stay fresh.
    s = proc.wait_for(lambda s: failures(s, "invalid_response", "GetTicketCounts") >= 2)
    assert up(s) == 1.0
    assert value(s, "whmcs_exporter_collector_success", collector="oldest_awaiting") == 1.0
    assert value(s, "whmcs_ticket_oldest_awaiting_reply_age_seconds") is not None
    # The counts go stale and vanish after max_age (2 s) instead of freezing.
    s = proc.wait_for(lambda s: value(s, "whmcs_tickets_active") is None, timeout=10)
    assert s.select("whmcs_tickets", whmcs=NAME) == {}
    sim.faults.clear()
    proc.wait_for(lambda s: healthy(s) and value(s, "whmcs_tickets_active") is not None)


def test_numbers_as_strings_and_whole_floats_are_data(clean):
    sim, proc = clean
    sim.faults.set("json", action="GetTicketCounts", body={
        "result": "success", "allActive": "7", "awaitingReply": 4.0, "flaggedTickets": " 2 ",
        "filteredDepartments": [], "status": {"open": {"title": "Open", "count": "3"},
                                              "onhold": {"title": "On Hold", "count": 4}}})
    s = proc.wait_for(lambda s: value(s, "whmcs_tickets_active") == 7.0)
    assert value(s, "whmcs_tickets_awaiting_reply") == 4.0
    assert value(s, "whmcs_tickets_flagged") == 2.0
    assert s.select("whmcs_tickets", whmcs=NAME) == {(("status", "On Hold"), ("whmcs", NAME)): 4.0,
                                                      (("status", "Open"), ("whmcs", NAME)): 3.0}


def test_permission_denied_for_one_action_stales_only_that_view(clean):
    sim, proc = clean
    sim.deny_actions(["GetTickets"])
    s = proc.wait_for(lambda s: value(s, "whmcs_exporter_collector_success", collector="oldest_awaiting") == 0.0)
    assert up(s) == 1.0  # the login works and the counts still come
    assert value(s, "whmcs_exporter_collector_success", collector="counts") == 1.0
    assert failures(s, "permission", "GetTickets") >= 1
    log = proc.log().replace('\\"', '"')  # logfmt escapes the quotes WHMCS puts around the action
    assert ('collector=oldest_awaiting failed: GetTickets: HTTP 403: Invalid Permissions: API action '
            '"gettickets" is not allowed - the API role lacks this action') in log
    # The stale view's series vanish after max_age; the counts stay and keep getting fresher.
    s = proc.wait_for(lambda s: value(s, "whmcs_ticket_oldest_awaiting_reply_age_seconds") is None, timeout=10)
    assert value(s, "whmcs_tickets_active") is not None
    last = value(s, "whmcs_exporter_last_poll_success_timestamp_seconds")
    s = proc.wait_for(lambda s: value(s, "whmcs_exporter_last_poll_success_timestamp_seconds") > last)
    assert value(s, "whmcs_tickets_active") is not None
    # Logged when it started, not on every poll.
    assert proc.log().count("collector=oldest_awaiting failed: GetTickets: HTTP 403") == 1
    # Every view that went stale did so because of GetTickets; none that uses other actions did.
    for labels, ok in s.select("whmcs_exporter_collector_success", whmcs=NAME).items():
        collector = dict(labels)["collector"]
        failed_on_gettickets = f"collector={collector} failed: GetTickets: HTTP 403" in proc.log()
        assert (ok == 0.0) == failed_on_gettickets, collector
    assert value(s, "whmcs_exporter_backoff", reason="auth") == 0.0
    sim.deny_actions([])
    s = proc.wait_for(lambda s: value(s, "whmcs_ticket_oldest_awaiting_reply_age_seconds") is not None)
    assert healthy(s)


def test_result_error_on_http_200_is_not_success(clean):
    sim, proc = clean
    sim.faults.set("json", action="GetTicketCounts", body={"result": "error", "message": "Database error"})
    proc.wait_for(lambda s: failures(s, "api_error", "GetTicketCounts") >= 1
                      and value(s, "whmcs_exporter_collector_success", collector="counts") == 0.0)
    assert "collector=counts failed: GetTicketCounts: HTTP 200: Database error" in proc.log()
    sim.faults.clear()
    proc.wait_for(healthy)


def test_overrunning_polls_never_pile_up(clean):
    sim, proc = clean
    pid = proc.proc.pid
    threads_before = len(os.listdir(f"/proc/{pid}/task"))
    # Each call takes 0.25 s (under the 0.3 s timeout), so a poll of 2 calls overruns the 0.5 s interval.
    sim.faults.set("slow", delay=0.25)
    wait_until(lambda: len(sim.calls) >= 12, timeout=20, what="12 slow calls")
    calls = sim.calls[:12]
    # Calls are logged when answered; serial calls of 0.25 s each are at least 0.25 s apart.
    gaps = [b.time - a.time for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps) >= 0.24, gaps
    assert len(os.listdir(f"/proc/{pid}/task")) <= threads_before + 1
    assert "longer than poll_interval" in proc.log()
    s = proc.scrape()
    assert up(s) == 1.0
    assert value(s, "whmcs_exporter_poll_duration_seconds") >= 0.5


def test_hard_scraping_never_causes_api_calls(clean):
    sim, proc = clean
    stop = threading.Event()
    count = [0]
    errors: list[int] = []

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                r = session.get(proc.base + "/metrics", timeout=5)
                if r.status_code != 200:
                    errors.append(r.status_code)
                count[0] += 1

    # The first poll of a fresh process lists the first-response window (more calls than later polls): measure
    # from the steady state on, whichever tests ran before this one.
    started = polls(proc.scrape())
    s0 = proc.wait_for(lambda s: polls(s) >= max(3, started + 1))
    sim.reset_calls()
    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(3.0)  # the measurement window, not a wait for a condition
    stop.set()
    for t in threads:
        t.join()
    s1 = proc.scrape()
    calls = len(sim.calls)
    n_polls = polls(s1) - polls(s0)
    assert errors == []
    assert count[0] > 100
    # The world is static, so every poll makes the same calls; scrapes add none
    # (one poll may straddle each end of the window).
    per_poll = value(s1, "whmcs_exporter_poll_api_calls")
    assert per_poll == value(s0, "whmcs_exporter_poll_api_calls") and per_poll >= 2
    assert abs(calls - per_poll * n_polls) <= per_poll, (calls, n_polls, per_poll)
    assert n_polls <= 3.0 / float(FAST["poll_interval"].rstrip("s")) + 2
