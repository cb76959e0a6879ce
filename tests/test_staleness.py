"""While WHMCS is down, ticket series vanish after max_age; the exporter's own metrics tell the story."""

from __future__ import annotations

import time

import pytest

from exporter.simulator import Simulator
from testkit.exporter_process import Samples
from testkit.reliability import NAME, failures, has_tickets, installation, polls, start, up, value

pytestmark = pytest.mark.process


def ticket_series(samples: Samples) -> list[str]:
    return [n for n in samples.names() if n.startswith("whmcs_") and not n.startswith("whmcs_exporter_")
            and n != "whmcs_up"]


def test_outage_stales_ticket_series_and_recovery_is_automatic(tmp_path):
    sim = Simulator(tickets=60).start()
    port, world = sim.port, sim.world
    try:
        with start(str(tmp_path), [installation(sim, max_age="2s")]) as proc:
            s = proc.wait_for(lambda s: up(s) == 1.0 and has_tickets(s))
            before_failures = value(s, "whmcs_exporter_poll_failures_total")
            sim.stop()  # WHMCS goes away entirely: connection refused

            s = proc.wait_for(lambda s: up(s) == 0.0)
            last_success = value(s, "whmcs_exporter_last_poll_success_timestamp_seconds")
            # Within max_age the last numbers stay (one failed poll must not blank a dashboard),
            # after it they are gone rather than frozen.
            if time.time() - last_success < 1.5:
                assert has_tickets(s)
            # Each collector's series go max_age after its own answers arrived (later collectors' a bit later).
            s = proc.wait_for(lambda s: not ticket_series(s), timeout=10)
            arrived = s.select("whmcs_exporter_collector_last_success_timestamp_seconds", whmcs=NAME).values()
            assert arrived and all(time.time() - t >= 2.0 for t in arrived)  # gone only once older than max_age
            assert min(arrived) >= last_success  # read during the last good poll, after its start
            assert all(v == 0.0 for v in s.select("whmcs_exporter_collector_series", whmcs=NAME).values())
            last_poll = value(s, "whmcs_exporter_last_poll_timestamp_seconds")
            # The exporter's own metrics remain and explain.
            assert up(s) == 0.0
            assert value(s, "whmcs_exporter_last_poll_success_timestamp_seconds") == last_success
            assert value(s, "whmcs_exporter_poll_failures_total") > before_failures
            assert failures(s, "connection", "GetTicketCounts") >= 2
            assert all(v == 0.0 for v in s.select("whmcs_exporter_collector_success", whmcs=NAME).values())
            assert value(s, "whmcs_exporter_backoff", reason="auth") == 0.0
            assert value(s, "whmcs_exporter_backoff", reason="rate_limit") == 0.0
            n = polls(s)
            s = proc.wait_for(lambda s: polls(s) >= n + 2)  # still polling on schedule
            assert value(s, "whmcs_exporter_last_poll_timestamp_seconds") > last_poll
            assert proc.scrape().get("whmcs_exporter_build_info", version="0.1.0") == 1.0

            # WHMCS comes back on the same address: no restart, no operator action.
            sim = Simulator(world=world, port=port).start()
            s = proc.wait_for(lambda s: up(s) == 1.0 and has_tickets(s))
            assert value(s, "whmcs_exporter_last_poll_success_timestamp_seconds") > last_success
            assert all(v == 1.0 for v in s.select("whmcs_exporter_collector_success", whmcs=NAME).values())
            assert "poll succeeded again" in proc.log()
            assert "connection refused (is WHMCS reachable on that host and port?)" in proc.log()
    finally:
        sim.stop()
