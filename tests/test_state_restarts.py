"""The real exporter across restarts, against the simulator: kill -9 at random points of its polls 50
times in a row, wrong credentials in a restart loop, a bad state file, a read-only state directory, and
two processes on one storage path."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
from collections.abc import Iterator

import pytest

from exporter.collectors.first_response import FirstResponseCollector
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.simulator import CallRecord, Simulator
from exporter.state.files import DB_NAME
from exporter.state.saved import installation_key
from exporter.state.store import StateStore
from testkit.exporter_process import ExporterProcess, Samples
from testkit.reliability import NAME, after_polls, installation, start, up, value, write_secret
from tests.test_auth_backoff import max_in_window
from tests.test_multi_installation import assert_exact

pytestmark = pytest.mark.process

BUDGET = 20  # GetTicket calls per poll: the warm-up spans many restarts, then the cache is complete


def steady_installation(sim: Simulator, **overrides: str) -> dict:
    """Fast polls with a generous timeout: a call timing out on a loaded machine would end a poll early
    (or, for a login, count as a failed login at WHMCS without the exporter knowing it failed)."""
    return installation(sim, **{"timeout": "5s", "max_age": "20s", **overrides})


def storage_args(directory: str) -> list[str]:
    return [f"--storage.path={directory}"]


def committed_tickets(storage: str, sim: Simulator) -> dict:
    """The first-response tickets the last committed poll saved, read the way a restart reads them."""
    inst = InstallationConfig(name=NAME, url=sim.url, auth=ApiCredentials(Secret(sim.identifier), Secret(sim.secret)),
                              max_ticket_fetches_per_poll=BUDGET)
    store = StateStore.open(storage)
    try:
        saved = store.load(installation_key(inst))
    finally:
        store.close()
    collector = FirstResponseCollector(inst)
    if saved is not None:
        collector.restore_state(saved.collectors["first_response"])
    return dict(collector.tickets)


def first_poll(calls: list[CallRecord]) -> list[CallRecord]:
    """The calls of the first poll in `calls`: every poll starts with GetTicketCounts."""
    starts = [i for i, c in enumerate(calls) if c.action == "GetTicketCounts"]
    return calls[:starts[1]] if len(starts) > 1 else calls


def window_pages(calls: list[CallRecord]) -> int:
    """GetTickets pages of the first-response window listing: the only list without a status filter.

    The other collectors keep no state (their calls do not depend on a restart, and some vary by one
    with the time of the poll, as bucket bounds move past tickets), so the listing is what is compared."""
    return sum(1 for c in calls if c.action == "GetTickets" and "status" not in c.params)


def assert_first_response_exact(samples: Samples, sim: Simulator) -> None:
    now = samples.get("whmcs_exporter_last_poll_success_timestamp_seconds", whmcs=NAME)
    truth = sim.world.truth(now)["first_response"]
    # Split by department and priority: the desk's numbers are the sums.
    assert samples.total("whmcs_ticket_first_response_seconds_gcount", whmcs=NAME) == truth["count"]
    assert samples.total("whmcs_ticket_first_response_seconds_gsum", whmcs=NAME) == truth["sum"]
    assert value(samples, "whmcs_tickets_without_staff_reply") == truth["without_staff_reply"]


def kill(proc: ExporterProcess) -> None:
    proc.proc.kill()
    proc.proc.wait()
    proc.__exit__(None, None, None)


def test_kill_9_at_random_points_50_times(tmp_path):
    storage = str(tmp_path / "state")
    rng = random.Random(20261130)
    with Simulator(tickets=2000) as sim:
        inst = steady_installation(sim, max_ticket_fetches_per_poll=BUDGET)
        proc = start(str(tmp_path), [inst], storage_args(storage))
        try:
            after_polls(proc, 3)
            cold = first_poll(sim.calls)
            steady = first_poll(first_poll_after(sim.calls, cold))
            # The measure means something: a cold start lists the whole window, a steady poll its head.
            assert window_pages(cold) >= 3 and window_pages(steady) == 1, (window_pages(cold), window_pages(steady))
            complete_seen = 0
            for _cycle in range(50):
                time.sleep(rng.uniform(0.0, 1.2))  # poll_interval 0.5 s: anywhere in a poll, its write included
                kill(proc)
                known = {i for i, t in committed_tickets(storage, sim).items() if t.known}
                restarted = time.time()  # a call the dead process had in flight may still be logged after this
                proc = start(str(tmp_path), [inst], storage_args(storage))
                samples = after_polls(proc, 0)  # ready: the first poll is published
                calls = first_poll([c for c in sim.calls if c.time >= restarted])
                fetched = {int(c.params["ticketid"]) for c in calls if c.action == "GetTicket"}
                assert not fetched & known, "a ticket whose first response was committed was fetched again"
                assert len(fetched) <= BUDGET
                assert window_pages(calls) == window_pages(steady), [c.action for c in calls]
                assert_exact(samples, NAME, sim)
                assert "moved aside" not in proc.log() and "starts clean" not in proc.log()
                if value(samples, "whmcs_exporter_sample_ratio", collector="first_response") == 1.0:
                    assert_first_response_exact(samples, sim)
                    complete_seen += 1
            assert complete_seen >= 1, "the warm-up never completed across the restarts"
        finally:
            with contextlib.suppress(FileNotFoundError):  # the last one may be killed (and cleaned up) already
                proc.__exit__(None, None, None)


def first_poll_after(calls: list[CallRecord], before: list[CallRecord]) -> list[CallRecord]:
    return list(calls)[len(before):]


def test_wrong_credentials_and_ten_restarts_reach_whmcs_at_most_twice(tmp_path):
    storage = str(tmp_path / "state")
    with Simulator(tickets=30, ban_window=1800.0) as sim:
        secret = write_secret(str(tmp_path), "secret", "wrong-secret")
        inst = steady_installation(sim, api_secret=None, api_secret_file=secret, auth_backoff="30m")
        for _restart in range(10):
            proc = start(str(tmp_path), [inst], storage_args(storage), ready=False)
            try:
                proc.wait_for(lambda s: value(s, "whmcs_exporter_backoff", reason="auth") == 1.0)
                proc.wait_ready()  # the back-off stands for the failed poll: ready, not stuck "waiting"
            finally:
                kill(proc)
        assert 1 <= len(sim.failed_logins()) <= 2, sim.failed_logins()
        assert max_in_window(sim.failed_logins(), 1800.0) <= 2
        assert sim.auth.banned() == set()
        assert all(c.login_failed for c in sim.calls)  # nothing but the failed logins reached WHMCS

        # The admin fixes the secret: the next start tries it at once instead of waiting out the back-off.
        write_secret(str(tmp_path), "secret", sim.secret)
        with start(str(tmp_path), [inst], storage_args(storage), ready=False) as proc:
            proc.wait_for(lambda s: up(s) == 1.0)
            assert "credentials changed, trying them before the auth back-off ends" in proc.log()


def test_a_corrupt_state_file_is_moved_aside(tmp_path):
    storage = tmp_path / "state"
    storage.mkdir()
    (storage / DB_NAME).write_bytes(b"\x00garbage" * 512)
    with Simulator(tickets=30) as sim, \
            start(str(tmp_path), [steady_installation(sim)], storage_args(str(storage))) as p:
        samples = after_polls(p, 1, lambda s: s.get("whmcs_exporter_state_last_write_timestamp_seconds") is not None)
        assert up(samples) == 1.0
        assert samples.get("whmcs_exporter_state_write_failures_total") == 0.0
        aside = [n for n in os.listdir(storage) if n.startswith(DB_NAME + ".corrupt-")]
        assert len(aside) == 1
        assert sum(f"moved aside to {aside[0]}" in line for line in p.log().splitlines()) == 1


@contextlib.contextmanager
def read_only(directory: str) -> Iterator[None]:
    """No file can be created in `directory`, root included (chmod does not stop root: chattr +i does)."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o500)
        try:
            yield
        finally:
            os.chmod(directory, 0o700)
        return
    made = subprocess.run(["chattr", "+i", directory], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a directory read-only for root here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", directory], check=True)


def test_a_read_only_state_directory_keeps_the_exporter_serving(tmp_path):
    storage = str(tmp_path / "state")
    with Simulator(tickets=30) as sim:
        inst = steady_installation(sim)
        with start(str(tmp_path), [inst], storage_args(storage)) as proc:
            after_polls(proc, 1)
        locked = read_only(storage)
        locked.__enter__()
        proc = start(str(tmp_path), [inst], storage_args(storage))
        try:
            samples = after_polls(proc, 3)
            assert up(samples) == 1.0 and value(samples, "whmcs_tickets_active") is not None
            assert samples.get("whmcs_exporter_state_write_failures_total") >= 3
            assert samples.get("whmcs_exporter_state_last_write_timestamp_seconds") is None
            warnings = [line for line in proc.log().splitlines() if "cannot write state" in line]
            assert len(warnings) == 1 and "running from memory" in warnings[0], proc.log()
            # Once the place is writable again, writing resumes without a restart.
            locked.__exit__(None, None, None)
            locked = None
            proc.wait_for(lambda s: s.get("whmcs_exporter_state_last_write_timestamp_seconds") is not None)
            assert "works again" in proc.log()
        finally:
            if locked is not None:
                locked.__exit__(None, None, None)
            proc.stop()
            proc.__exit__(None, None, None)


def test_a_second_process_on_the_same_path_refuses_to_start(tmp_path):
    storage = str(tmp_path / "state")
    with Simulator(tickets=30) as sim:
        inst = steady_installation(sim)
        with start(str(tmp_path), [inst], storage_args(storage)) as first:
            second = start(str(tmp_path), [inst], storage_args(storage), ready=False)
            try:
                assert second.proc.wait(20) == 3
                log = second.log()
                assert f"another whmcs-ticket-exporter (pid {first.proc.pid}) is using the storage path" in log
                assert "Traceback" not in log
            finally:
                second.__exit__(None, None, None)
            assert up(after_polls(first, 1)) == 1.0  # the first one is untouched


def test_demo_and_an_empty_path_keep_state_in_memory(tmp_path):
    storage = tmp_path / "state"
    default = os.path.join(os.getcwd(), "data")  # where the default path would put it for these processes
    existed = os.path.exists(default)
    with ExporterProcess(["--demo", f"--storage.path={storage}"]) as proc:
        proc.wait_ready(timeout=30)
        samples = proc.wait_for(lambda s: s.get("whmcs_up", whmcs="demo") == 1.0)
        assert samples.get("whmcs_exporter_state_bytes") is None
    assert not storage.exists(), "the demo's desk is new at every start: nothing to keep"
    with Simulator(tickets=30) as sim, \
            start(str(tmp_path), [steady_installation(sim)], ["--storage.path="]) as proc:
        samples = after_polls(proc, 1)
        assert up(samples) == 1.0 and samples.get("whmcs_exporter_state_bytes") is None
    assert os.path.exists(default) == existed
