"""What a bug or an odd answer costs: one view, never the poll, the thread, a true number or a secret."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.client import WhmcsClient
from exporter.collectors.base import PollContext
from exporter.collectors.counts import CountsPart
from exporter.collectors.oldest_awaiting import OldestAwaitingCollector
from exporter.config import ApiCredentials, BearerToken, InstallationConfig, Secret
from exporter.errors import ConnectionFailed, ShapeError
from exporter.poller import InstallationPoller
from exporter.simulator import Simulator
from exporter.snapshot import SnapshotStore
from testkit.fake_whmcs import FakeTickets

INST = InstallationConfig(name="t", url="http://whmcs.test", auth=ApiCredentials(Secret("i"), Secret("s")))
NOW = 1_700_000_000


class _Part:
    def families(self, out) -> None:  # noqa: ANN001
        out.gauge("whmcs_tickets_active", "h", {"whmcs": "t"}, 1.0)


class _Fine:
    name = "counts"

    def poll(self, ctx):  # noqa: ANN001, ANN201
        return _Part()


class _Buggy:
    name = "priorities"

    def poll(self, ctx):  # noqa: ANN001, ANN201
        raise KeyError("a bug")


def test_a_bug_in_one_view_costs_that_view_only():
    poller = InstallationPoller(INST, SnapshotStore(["t"]), client=WhmcsClient(INST), collectors=[_Buggy(), _Fine()],
                                clock=lambda: float(NOW))
    snap = poller.poll_once()
    assert snap.up and snap.polls == 1
    assert snap.collectors["counts"].success
    assert not snap.collectors["priorities"].success and snap.collectors["priorities"].reason == "internal"
    assert snap.collectors["priorities"].error == "internal error: KeyError"


def test_awaiting_counted_but_not_listed_is_absent_not_zero():
    # An API admin without departments lists no tickets unless assignments are ignored.
    inst = InstallationConfig(name="t", url="http://whmcs.test", auth=ApiCredentials(Secret("i"), Secret("s")),
                              ignore_department_assignments=False)
    ctx = PollContext(client=FakeTickets([]), now=NOW, installation=inst)
    ctx.parts["counts"] = CountsPart("t", (), active=9, awaiting=5, flagged=0, filtered_departments=())
    with pytest.raises(ShapeError, match="ignore_department_assignments: true"):
        OldestAwaitingCollector().poll(ctx)
    # With assignments ignored an empty list is the truth: nobody waits.
    ctx = PollContext(client=FakeTickets([]), now=NOW, installation=INST)
    assert OldestAwaitingCollector().poll(ctx).age == 0.0


def test_a_list_that_never_holds_still_gives_no_oldest_age():
    fake = FakeTickets.of([NOW - 10 * i for i in range(1, 3000)])

    def shrink(f: FakeTickets) -> None:
        del f.tickets[-300:]  # more than a tail page answered before every call: the tail is never where it was

    fake.between_calls = shrink
    by_position = replace(INST, whole_list_max_tickets=0)  # read whole, one answer would hold still
    with pytest.raises(ShapeError, match="kept changing"):
        OldestAwaitingCollector().poll(PollContext(client=fake, now=NOW, installation=by_position))


def test_a_token_with_a_newline_never_reaches_an_error_message():
    with Simulator(style="bearer", tickets=5) as sim:
        inst = InstallationConfig(name="gw", url=sim.url + "/api/v2/keliweb",
                                  auth=BearerToken(Secret(inline="TOKEN-SECRET-42\nsecond-line")), timeout=2.0)
        with pytest.raises(ConnectionFailed) as err:
            WhmcsClient(inst).call("GetTickets", {"limitnum": 1})
    assert "TOKEN-SECRET" not in str(err.value) and "second-line" not in str(err.value)
    assert "contains whitespace or control characters" in str(err.value)


def test_a_secret_file_that_is_not_text_is_an_auth_error_not_a_crash(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"\xff\xfe\x00binary")
    inst = InstallationConfig(name="t", url="http://127.0.0.1:9",
                              auth=ApiCredentials(Secret("i"), Secret(path=str(path))))
    poller = InstallationPoller(inst, SnapshotStore(["t"]), clock=lambda: float(NOW))
    snap = poller.poll_once()
    assert not snap.up and snap.backoff_reason == "auth"
    assert "not UTF-8 text" in snap.error
