"""The real exporter process against the simulator on loopback: exact values, outages, bad credentials."""

from __future__ import annotations

import time

import pytest
import requests

from exporter.simulator import Simulator, World
from testkit.exporter_process import ExporterProcess, Samples, write_config

pytestmark = pytest.mark.process

TZ = "Australia/Sydney"  # far from UTC, with DST


@pytest.fixture
def world() -> World:
    world = World.generate(seed=11, tickets=400, tz=TZ)
    ids = sorted(world.tickets)
    world.merge(ids[5], ids[6])  # merged tickets vanish from every count
    world.merge(ids[7], ids[6])
    return world


def installation(sim: Simulator, **extra) -> dict:
    return {"name": "main", "url": sim.url, "api_identifier": sim.identifier, "api_secret": sim.secret,
            "timezone": TZ, "poll_interval": "1s", "timeout": "800ms",
            "collectors": ["counts", "oldest_awaiting"], **extra}


def poll_time(samples: Samples) -> float:
    return samples.get("whmcs_exporter_last_poll_success_timestamp_seconds", whmcs="main")


@pytest.mark.parametrize("version", ["8.7", "7.8"])
def test_every_core_value_is_exact(world, tmp_path, version):
    # 7.8 sends totalresults as a string and lacks ticketid, deptname and the requestor fields.
    world.version = version
    world.add_status("Über Prüfung", True, False)  # its key collides with "Überprüfung": one of them is lost
    with Simulator(world=world) as sim:
        config = write_config(str(tmp_path), [installation(sim)])
        with ExporterProcess(["--config.file", config]) as exporter:
            exporter.wait_ready()
            samples = exporter.wait_for(lambda s: s.get("whmcs_up", whmcs="main") == 1)
            now = poll_time(samples)
            truth = world.truth(now)

            statuses = {dict(lab)["status"]: v for lab, v in samples.select("whmcs_tickets", whmcs="main").items()}
            expected = dict(truth["status_counts"])
            # WHMCS keys the status map by the title stripped to [a-z0-9]: colliding titles overwrite each other.
            lost = {"Überprüfung", "Über Prüfung"} - set(statuses)
            assert len(lost) == 1
            del expected[lost.pop()]
            assert statuses == expected
            assert samples.get("whmcs_tickets_active", whmcs="main") == truth["active"]
            assert samples.get("whmcs_tickets_awaiting_reply", whmcs="main") == truth["awaiting"]
            assert samples.get("whmcs_tickets_flagged", whmcs="main") == truth["flagged"]
            assert samples.get("whmcs_ticket_oldest_awaiting_reply_age_seconds", whmcs="main") == pytest.approx(
                truth["oldest_awaiting_age"], abs=1e-3)
            assert samples.get("whmcs_exporter_poll_api_calls", whmcs="main") == 2
            assert samples.get("whmcs_exporter_build_info", version="0.1.0") == 1

            # The calls WHMCS saw: JSON always, flags as 1/0, department assignments ignored.
            counts_call = sim.calls_for("GetTicketCounts")[0]
            assert counts_call.params["responsetype"] == "json"
            assert counts_call.params["ignoreDepartmentAssignments"] == "1"
            assert counts_call.params["includeCountsByStatus"] == "1"
            tickets_call = sim.calls_for("GetTickets")[0]
            assert tickets_call.params["ignore_dept_assignments"] == "1"
            assert tickets_call.params["status"] == "Awaiting Reply"

            landing = requests.get(exporter.base + "/", timeout=5).text
            assert "main" in landing and "OK" in landing and "/metrics" in landing
            assert requests.get(exporter.base + "/healthz", timeout=5).status_code == 200


def test_outage_turns_up_to_zero_and_recovers(world, tmp_path):
    with Simulator(world=world) as sim:
        config = write_config(str(tmp_path), [installation(sim)])
        with ExporterProcess(["--config.file", config]) as exporter:
            exporter.wait_for(lambda s: s.get("whmcs_up", whmcs="main") == 1)
            sim.faults.set("http_error", status=500,
                           body="<html><title>500 Internal Server Error</title><body>boom</body></html>")
            down = exporter.wait_for(lambda s: s.get("whmcs_up", whmcs="main") == 0, timeout=5)
            assert down.get("whmcs_exporter_api_request_failures_total", whmcs="main", action="GetTicketCounts",
                            reason="http") >= 1
            assert "HTTP 500: 500 Internal Server Error" in exporter.log()
            sim.faults.clear()
            up = exporter.wait_for(lambda s: s.get("whmcs_up", whmcs="main") == 1, timeout=5)
            assert up.get("whmcs_tickets_active", whmcs="main") == world.truth(poll_time(up))["active"]
            assert "poll succeeded again" in exporter.log()


def test_wrong_credentials_one_login_per_backoff(world, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("WRONG-SECRET-zz9\n")
    with Simulator(world=world, ban_window=6.0) as sim:
        inst = installation(sim, auth_backoff="3s")
        del inst["api_secret"]
        inst["api_secret_file"] = str(secret_file)
        config = write_config(str(tmp_path), [inst])
        with ExporterProcess(["--config.file", config]) as exporter:
            samples = exporter.wait_for(lambda s: s.get("whmcs_exporter_backoff", whmcs="main", reason="auth") == 1)
            assert samples.get("whmcs_up", whmcs="main") == 0
            time.sleep(7.5)  # more than two back-off periods
            failures = sim.failed_logins()
            assert 2 <= len(failures) <= 3
            assert all(b - a >= 2.9 for a, b in zip(failures, failures[1:])), failures
            assert not sim.auth.banned()
            log = exporter.log()
            assert "authentication failed" in log and "check api_identifier/api_secret" in log
            assert "No further login attempt for 3 s" in log
            page = requests.get(exporter.base + "/", timeout=5).text
            body = exporter.scrape().text
            for text in (log, page, body):
                assert "WRONG-SECRET" not in text
            # A corrected secret file is picked up without a restart, before the back-off ends.
            secret_file.write_text(sim.secret + "\n")
            exporter.wait_for(lambda s: s.get("whmcs_up", whmcs="main") == 1, timeout=5)


def test_a_lasting_failure_is_warned_once_not_every_poll(world, tmp_path):
    with Simulator(world=world) as sim:
        config = write_config(str(tmp_path), [installation(sim, poll_interval="300ms", timeout="250ms")])
        with ExporterProcess(["--config.file", config]) as exporter:
            exporter.wait_for(lambda s: s.get("whmcs_up", whmcs="main") == 1)
            sim.faults.set("http_error", status=502, body="<html><title>502 Bad Gateway</title></html>")
            exporter.wait_for(lambda s: s.get("whmcs_exporter_poll_failures_total", whmcs="main") >= 5)
            warnings = [line for line in exporter.log().splitlines() if "poll failed" in line]
            assert len(warnings) == 1, warnings
            assert "level=warn" in warnings[0] and "HTTP 502: 502 Bad Gateway" in warnings[0]
