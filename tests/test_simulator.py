"""Tests of the WHMCS API simulator itself: that it models WHMCS (traps included) faithfully.

Requests go over real HTTP with urllib/http.client so the wire format is what is checked.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from exporter.simulator import Simulator, Status, World, status_key
from exporter.simulator.api import handle, php_int, php_truthy

NOW = 1_700_000_000
CREDS = {"identifier": "sim-identifier", "secret": "sim-secret"}


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def raw(url: str, data: dict | bytes | None = None, headers: dict | None = None,
        method: str = "POST") -> tuple[int, dict, bytes]:
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def call(sim: Simulator, action: str, creds: dict | None = None, rtype: str | None = "json",
         **params: str) -> tuple[int, bytes]:
    data = {"action": action, **(CREDS if creds is None else creds), **params}
    if rtype:
        data["responsetype"] = rtype
    status, _, body = raw(sim.url + "/includes/api.php", data)
    return status, body


def j(sim: Simulator, action: str, **params: str) -> dict:
    status, body = call(sim, action, **params)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(seed=7, tickets=300, now=NOW, clock=Clock())


@pytest.fixture(scope="module")
def sim(world: World):
    with Simulator(world=world) as s:
        yield s


@pytest.fixture
def fresh():
    """A private simulator over a small world, for tests that mutate or break things."""
    w = World.generate(seed=3, tickets=60, now=NOW, clock=Clock())
    with Simulator(world=w, ban_window=60) as s:
        yield s


# ---- PHP-isms -----------------------------------------------------------------------------------

def test_php_truthiness_and_int_cast():
    assert php_truthy("false") and php_truthy("true") and php_truthy("1") and php_truthy("0.0")
    assert not php_truthy("0") and not php_truthy("") and not php_truthy(None)
    assert php_int("12abc") == 12 and php_int("abc") == 0 and php_int(None, 5) == 5 and php_int("-3") == -3


def test_string_false_is_true_on_the_wire(sim: Simulator):
    assert j(sim, "GetTicketCounts", ignoreDepartmentAssignments="false")["filteredDepartments"] == []
    assert j(sim, "GetTicketCounts", ignoreDepartmentAssignments="0")["filteredDepartments"] == [1, 2, 3, 5]
    assert "status" in j(sim, "GetTicketCounts", includeCountsByStatus="false")
    assert "status" not in j(sim, "GetTicketCounts", includeCountsByStatus="0")


# ---- GetTickets ---------------------------------------------------------------------------------

def test_gettickets_order_paging_and_types(sim: Simulator, world: World):
    body = j(sim, "GetTickets", ignore_dept_assignments="1", limitnum="1000")
    total = len(world.live_tickets())
    assert body["totalresults"] == total and isinstance(body["totalresults"], int)
    rows = body["tickets"]["ticket"]
    assert len(rows) == body["numreturned"] == total
    lastreplies = [r["lastreply"] for r in rows]
    assert lastreplies == sorted(lastreplies, reverse=True)
    assert len(set(lastreplies)) < len(lastreplies), "the generator should produce lastreply ties"
    assert all(isinstance(r[k], str) for r in rows for k in ("id", "deptid", "flag", "userid"))
    assert set(rows[0]) >= {"ticketid", "deptname", "requestor_name", "requestor_email", "requestor_type",
                            "owner_name", "attachments", "attachments_removed", "c", "service"}
    # Paging walks the same order.
    page2 = j(sim, "GetTickets", ignore_dept_assignments="1", limitstart="25", limitnum="25")
    assert [r["id"] for r in page2["tickets"]["ticket"]] == [r["id"] for r in rows[25:50]]
    assert page2["startnumber"] == 25


def test_limitnum_defaults_and_no_cap(sim: Simulator):
    assert j(sim, "GetTickets", ignore_dept_assignments="1")["numreturned"] == 25
    assert j(sim, "GetTickets", ignore_dept_assignments="1", limitnum="0")["numreturned"] == 25
    assert j(sim, "GetTickets", ignore_dept_assignments="1", limitnum="")["numreturned"] == 25
    assert j(sim, "GetTickets", ignore_dept_assignments="1", limitnum="280")["numreturned"] == 280


def test_tickets_key_absent_when_empty(sim: Simulator):
    body = j(sim, "GetTickets", status="No Such Status", ignore_dept_assignments="1")
    assert body["totalresults"] == 0 and body["numreturned"] == 0 and "tickets" not in body


def test_status_filters(sim: Simulator, world: World):
    awaiting = {s.title for s in world.statuses if s.showawaiting}
    active = {s.title for s in world.statuses if s.showactive}
    rows = j(sim, "GetTickets", status="Awaiting Reply", ignore_dept_assignments="1", limitnum="999")
    assert {r["status"] for r in rows["tickets"]["ticket"]} <= awaiting
    assert rows["totalresults"] == sum(t.status in awaiting for t in world.live_tickets())
    act = j(sim, "GetTickets", status="All Active Tickets", ignore_dept_assignments="1")["totalresults"]
    assert act == sum(t.status in active for t in world.live_tickets())
    mine = j(sim, "GetTickets", status="My Flagged Tickets", ignore_dept_assignments="1")["totalresults"]
    assert mine == sum(t.flag == 1 and t.status in active for t in world.live_tickets()) > 0
    ns = j(sim, "GetTickets", status="customer-reply", ignore_dept_assignments="1")["totalresults"]
    assert ns == sum(t.status == "Customer-Reply" for t in world.live_tickets())


def test_department_assignment_filter(fresh: Simulator):
    w = fresh.world
    live = w.live_tickets()
    mine = j(fresh, "GetTickets", limitnum="999")
    assert mine["totalresults"] == sum(t.deptid in (1, 2, 3, 5) for t in live)
    assert j(fresh, "GetTickets", deptid="4", limitnum="999")["totalresults"] == 0
    assert j(fresh, "GetTickets", deptid="4", ignore_dept_assignments="1")["totalresults"] == sum(
        t.deptid == 4 for t in live)
    w.api_admin_departments = []
    # No departments: GetTickets gives nothing, the count calls apply no filter at all.
    assert j(fresh, "GetTickets")["totalresults"] == 0
    assert j(fresh, "GetTickets", ignore_dept_assignments="1")["totalresults"] == len(live)
    counts = j(fresh, "GetTicketCounts")
    assert counts["filteredDepartments"] == []
    active = {s.title for s in w.statuses if s.showactive}
    assert counts["allActive"] == sum(t.status in active for t in live)
    assert j(fresh, "GetSupportDepartments")["totalresults"] == 5


def test_merged_tickets_are_invisible(fresh: Simulator):
    w = fresh.world
    t = w.add_ticket(deptid=1, status="Open", at=NOW)
    before = j(fresh, "GetTicketCounts", ignoreDepartmentAssignments="1", includeCountsByStatus="1")
    listed = j(fresh, "GetTickets", ignore_dept_assignments="1", limitnum="999")["tickets"]["ticket"]
    assert str(t.id) in {r["id"] for r in listed}
    w.merge(t.id, 1)
    after = j(fresh, "GetTicketCounts", ignoreDepartmentAssignments="1", includeCountsByStatus="1")
    assert after["allActive"] == before["allActive"] - 1
    assert after["status"]["open"]["count"] == before["status"]["open"]["count"] - 1
    listed = j(fresh, "GetTickets", ignore_dept_assignments="1", limitnum="999")["tickets"]["ticket"]
    assert str(t.id) not in {r["id"] for r in listed}
    assert j(fresh, "GetTicket", ticketid=str(t.id)) == {"result": "error", "message": "Ticket ID Not Found"}


def test_reply_moves_ticket_to_top(fresh: Simulator):
    w = fresh.world
    last = j(fresh, "GetTickets", ignore_dept_assignments="1", limitnum="999")["tickets"]["ticket"][-1]
    w.customer_reply(int(last["id"]), at=NOW + 10)
    top = j(fresh, "GetTickets", ignore_dept_assignments="1", limitnum="1")["tickets"]["ticket"][0]
    assert top["id"] == last["id"] and top["status"] == "Customer-Reply"
    assert top["lastreply"] == datetime.fromtimestamp(NOW + 10, ZoneInfo("America/Chicago")).strftime(
        "%Y-%m-%d %H:%M:%S")


def test_shuffle_ties_varies_order_among_equal_lastreply():
    w = World(clock=Clock())
    w.departments = World.generate(seed=1, tickets=0, now=NOW).departments
    w.api_admin_departments = [1]
    for _ in range(12):
        w.add_ticket(deptid=1, at=NOW - 100)
    w.add_ticket(deptid=1, at=NOW)
    w.shuffle_ties = True
    orders = set()
    for _ in range(20):
        _, body = handle(w, "GetTickets", {"limitnum": "5", "limitstart": "1"})
        ids = [r["id"] for r in body["tickets"]["ticket"]]
        orders.add(tuple(ids))
        _, first = handle(w, "GetTickets", {"limitnum": "1"})
        assert first["tickets"]["ticket"][0]["id"] == "13"
    assert len(orders) > 1


def test_version_78_shape(fresh: Simulator):
    fresh.world.version = "7.8"
    body = j(fresh, "GetTickets", ignore_dept_assignments="1", limitnum="1")
    assert body["totalresults"] == str(len(fresh.world.live_tickets()))
    assert not {"ticketid", "deptname", "requestor_name", "requestor_type"} & set(body["tickets"]["ticket"][0])


# ---- GetTicketCounts / statuses / departments ---------------------------------------------------

def test_status_map_zero_unconfigured_and_collisions(fresh: Simulator):
    w = fresh.world
    w.add_status("Never Used", True, False)
    t = w.add_ticket(deptid=1, status="Legacy Title", at=NOW)
    smap = j(fresh, "GetTicketCounts", includeCountsByStatus="1")["status"]
    assert smap["neverused"] == {"title": "Never Used", "count": 0}
    assert smap["legacytitle"] == {"title": "Legacy Title", "count": 1}
    assert smap["customerreply"]["title"] == "Customer-Reply" and smap["onhold"]["title"] == "On Hold"
    assert status_key("Wartend – Kunde") == "wartendkunde" and status_key("Überprüfung") == "berprfung"
    # A second title with the same key overwrites the first (the later one in sort order wins).
    w.add_status("Wartend Kunde", True, True)
    w.set_status(t.id, "Wartend Kunde")
    smap = j(fresh, "GetTicketCounts", includeCountsByStatus="1")["status"]
    assert smap["wartendkunde"] == {"title": "Wartend Kunde", "count": 1}
    assert "Wartend – Kunde" not in {v["title"] for v in smap.values()}


def test_counts_disabled_answers_x(fresh: Simulator):
    fresh.world.counts_disabled = True
    body = j(fresh, "GetTicketCounts", includeCountsByStatus="1")
    assert body["allActive"] == body["awaitingReply"] == body["flaggedTickets"] == "x"
    assert isinstance(body["status"]["open"]["count"], int)


def test_support_departments_and_statuses(sim: Simulator, world: World):
    deps = j(sim, "GetSupportDepartments", ignore_dept_assignments="1")
    names = [d["name"] for d in deps["departments"]["department"]]
    assert names == sorted(names) and 'Ünïcode "Quoted" Dept' in names and len(names) == 5
    assert all(isinstance(d["awaitingreply"], str) for d in deps["departments"]["department"])
    assert j(sim, "GetSupportDepartments")["totalresults"] == 4
    sts = j(sim, "GetSupportStatuses")["statuses"]["status"]
    assert [s["title"] for s in sts] == [s.title for s in sorted(world.statuses, key=lambda s: s.sortorder)]
    assert all("color" in s for s in sts)
    d1 = j(sim, "GetSupportStatuses", deptid="1")["statuses"]["status"]
    assert sum(s["count"] for s in d1) <= sum(s["count"] for s in sts)


def test_non_json_encodings(sim: Simulator):
    status, body = call(sim, "GetTicketCounts", rtype=None, includeCountsByStatus="1")
    text = body.decode()
    assert status == 200 and text.startswith("result=success;") and "allActive=" in text and "{" not in text
    status, body = call(sim, "GetTickets", rtype=None)
    assert body.startswith(b"<?xml") and b"<totalresults>" in body
    # PHP's json_encode escapes non-ASCII and slashes; the result is still plain JSON.
    status, body = call(sim, "GetSupportDepartments", ignore_dept_assignments="1")
    assert rb'\u00dcn\u00efcode \"Quoted\" Dept' in body and json.loads(body)["result"] == "success"


# ---- GetTicket ----------------------------------------------------------------------------------

def test_getticket_replies_sort_and_lookup(sim: Simulator, world: World):
    t = next(t for t in world.live_tickets() if len(world.replies(t)) > 2)
    asc = j(sim, "GetTicket", ticketid=str(t.id))
    desc = j(sim, "GetTicket", ticketid=str(t.id), repliessort="DESC")
    ids = [r["replyid"] for r in asc["replies"]["reply"]]
    assert ids[0] == "0" and ids == [r["replyid"] for r in reversed(desc["replies"]["reply"])]
    assert asc["replies"]["reply"][-1]["date"] == asc["lastreply"]
    assert set(asc["replies"]["reply"][0]) == {"replyid", "userid", "contactid", "name", "email", "date",
                                               "message", "attachment", "admin", "rating"}
    assert asc["notes"] == {"note": []}
    assert j(sim, "GetTicket", ticketnum=t.tid)["ticketid"] == str(t.id)
    assert j(sim, "GetTicket", ticketid="999999") == {"result": "error", "message": "Ticket ID Not Found"}


def test_staff_opened_ticket_and_notes(fresh: Simulator):
    w = fresh.world
    t = w.add_ticket(deptid=1, admin="Bob", at=NOW - 50)
    w.add_note(t.id, "internal", at=NOW - 40)
    w.staff_reply(t.id, admin="Alice", at=NOW - 30)
    body = j(fresh, "GetTicket", ticketid=str(t.id))
    assert body["admin"] == "Bob" and body["replies"]["reply"][0]["admin"] == "Bob"
    assert body["replies"]["reply"][1]["admin"] == "Alice" and body["status"] == "Answered"
    assert body["notes"]["note"][0]["message"] == "internal"


# ---- errors and authentication ------------------------------------------------------------------

def test_error_shapes(fresh: Simulator):
    status, body = call(fresh, "")
    assert status == 400
    status, body = call(fresh, "NoSuchThing")
    assert status == 200 and json.loads(body) == {"result": "error", "message": "Command Not Found"}
    fresh.drop_actions({"GetTicketCounts"})
    assert j(fresh, "GetTicketCounts")["message"] == "Command Not Found"
    fresh.deny_actions({"GetTickets"})
    status, body = call(fresh, "GetTickets")
    assert (status, body) == (403, b'result=error;message=Invalid Permissions: API action "gettickets" is not allowed')


def test_auth_variants_and_text_errors(fresh: Simulator):
    md5 = hashlib.md5(b"admin-password").hexdigest()
    assert j(fresh, "GetTicketCounts", creds={"username": "sim-identifier", "password": "sim-secret"})
    assert j(fresh, "GetTicketCounts", creds={"username": "admin", "password": md5})["result"] == "success"
    status, body = call(fresh, "GetTicketCounts", creds={"username": "admin", "password": "admin-password"})
    assert (status, body) == (403, b"result=error;message=Invalid password provided")
    status, body = call(fresh, "GetTicketCounts", creds={**CREDS, "secret": "nope"})
    assert (status, body) == (403, b"result=error;message=Authentication Failed")  # text despite json
    fresh.unban()


def test_three_failures_ban_the_ip_until_unbanned(fresh: Simulator):
    bad = {**CREDS, "secret": "wrong"}
    for _ in range(3):
        assert call(fresh, "GetTickets", creds=bad)[1] == b"result=error;message=Authentication Failed"
    assert call(fresh, "GetTickets") == (403, b"result=error;message=IP Banned")
    assert len(fresh.failed_logins()) == 3
    rec = fresh.calls_for("GetTickets")[0]
    assert rec.params["secret"] == "***" and rec.params["identifier"] == "***" and rec.login_failed
    assert rec.auth_ok is False and rec.http_status == 403 and rec.client_ip == "127.0.0.1"
    fresh.unban()
    assert j(fresh, "GetTickets")["result"] == "success"
    assert fresh.calls[-1].auth_ok is True


def test_failures_outside_ban_window_do_not_ban():
    w = World.generate(seed=2, tickets=10, now=NOW, clock=Clock())
    with Simulator(world=w, ban_window=0.3) as s:
        bad = {**CREDS, "secret": "wrong"}
        call(s, "GetTickets", creds=bad)
        call(s, "GetTickets", creds=bad)
        time.sleep(0.35)
        call(s, "GetTickets", creds=bad)
        assert j(s, "GetTickets")["result"] == "success"


def test_ip_allow_list_and_accesskey():
    w = World.generate(seed=2, tickets=10, now=NOW, clock=Clock())
    with Simulator(world=w, accesskey="k3y", allow_ips=[]) as s:
        assert call(s, "GetTickets") == (403, b"result=error;message=Invalid IP 127.0.0.1")
        assert call(s, "GetTickets", accesskey="bad") == (403, b"result=error;message=Invalid Access Key")
        assert j(s, "GetTickets", accesskey="k3y")["result"] == "success"
        assert s.calls[-1].params["accesskey"] == "***"


# ---- bearer gateway -----------------------------------------------------------------------------

def test_bearer_tokens_refresh_expiry_and_dropped_actions():
    clock = Clock(1000.0)
    w = World.generate(seed=4, tickets=40, now=NOW, clock=Clock())
    with Simulator(world=w, style="bearer", token_ttl=3, clock=clock, static_tokens={"static-1"}) as s:
        tok_url, base = s.url + "/oauth/token", s.url + "/api/v2/keliweb/"
        grant = {"grant_type": "password", "client_id": "sim-identifier", "client_secret": "sim-secret",
                 "username": "admin", "password": "admin-password"}
        status, _, body = raw(tok_url, {**grant, "password": "x"})
        assert status == 400 and json.loads(body)["error"] == "invalid_grant"
        status, _, body = raw(tok_url, {**grant, "client_secret": "x"})
        assert status == 401
        status, _, body = raw(tok_url, grant)
        tok = json.loads(body)
        assert status == 200 and tok["token_type"] == "Bearer" and tok["expires_in"] == 3
        auth = {"Authorization": "Bearer " + tok["access_token"]}
        status, _, body = raw(base + "get-ticket-counts", {"includeCountsByStatus": "1"}, auth)
        assert status == 200 and json.loads(body)["result"] == "success"
        # Multipart bodies work too, and GetTicket answers ticketnum instead of tid.
        mp = (b"--XX\r\nContent-Disposition: form-data; name=\"ticketid\"\r\n\r\n1\r\n--XX--\r\n")
        status, _, body = raw(base + "get-ticket", mp, {**auth, "Content-Type": "multipart/form-data; boundary=XX"})
        t = json.loads(body)
        assert status == 200 and "ticketnum" in t and "tid" not in t and t["ticketid"] == "1"
        assert raw(base + "get-tickets", {}, {})[0] == 401
        assert raw(base + "get-tickets", {}, {"Authorization": "Bearer static-1"})[0] == 200
        clock.t += 4
        status, _, body = raw(base + "get-tickets", {}, auth)
        assert (status, json.loads(body)) == (401, {"message": "Unauthenticated."})
        refresh = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                   "client_id": "sim-identifier", "client_secret": "sim-secret"}
        status, _, body = raw(tok_url, refresh)
        new = json.loads(body)
        assert status == 200 and new["access_token"] != tok["access_token"]
        assert raw(tok_url, refresh)[0] == 400, "a refresh token is single-use"
        assert s.grant_counts == {"password": 1, "refresh_token": 1}
        auth = {"Authorization": "Bearer " + new["access_token"]}
        s.drop_actions({"GetTicketCounts"})
        assert raw(base + "get-ticket-counts", {}, auth)[0] == 404
        assert raw(base + "get-support-statuses", {}, auth)[0] == 200
        assert raw(s.url + "/includes/api.php", {"action": "GetTickets"})[0] == 404


# ---- truth --------------------------------------------------------------------------------------

def test_truth_agrees_with_api(sim: Simulator, world: World):
    truth = world.truth(NOW)
    counts = j(sim, "GetTicketCounts", ignoreDepartmentAssignments="1", includeCountsByStatus="1")
    assert counts["allActive"] == truth["active"] and counts["awaitingReply"] == truth["awaiting"]
    assert counts["flaggedTickets"] == truth["flagged"]
    assert {v["title"]: v["count"] for v in counts["status"].values()} == truth["status_counts"]
    deps = j(sim, "GetSupportDepartments", ignore_dept_assignments="1")["departments"]["department"]
    assert {d["name"]: int(d["awaitingreply"]) for d in deps} == {
        k: v["awaiting"] for k, v in truth["departments"].items()}
    # The longest waiter is the last row of the awaiting list.
    total = j(sim, "GetTickets", status="Awaiting Reply", ignore_dept_assignments="1")["totalresults"]
    last = j(sim, "GetTickets", status="Awaiting Reply", ignore_dept_assignments="1",
             limitstart=str(total - 1))["tickets"]["ticket"][0]
    when = datetime.strptime(last["lastreply"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("America/Chicago"))
    assert NOW - when.timestamp() == truth["oldest_awaiting_age"]
    assert truth["wait_count"] == truth["awaiting"] and truth["wait_buckets"][604800] <= truth["wait_count"]
    # First response recomputed via GetTicket for every ticket opened in the window.
    fr = truth["first_response"]
    seen = none = 0
    for t in world.live_tickets():
        if t.date < NOW - 7 * 86400:
            continue
        reps = j(sim, "GetTicket", ticketid=str(t.id))["replies"]["reply"][1:]
        seen += any(r["admin"] for r in reps)
        none += not any(r["admin"] for r in reps)
    assert (fr["count"], fr["without_staff_reply"]) == (seen, none) and seen > 0 and none > 0
    assert sum(truth["priorities"].values()) == truth["active"]


# ---- faults and control surface -----------------------------------------------------------------

def test_faults_observable_on_the_wire(fresh: Simulator):
    f = fresh.faults
    f.set("slow", delay=0.2, times=1)
    t0 = time.monotonic()
    assert call(fresh, "GetTickets")[0] == 200 and time.monotonic() - t0 >= 0.2
    f.set("http_error", status=502, times=1)
    status, body = call(fresh, "GetTickets")
    assert status == 502 and b"<html>" in body
    f.set("html_200", times=1)
    status, body = call(fresh, "GetTickets")
    assert status == 200 and b"Maintenance" in body
    f.set("truncated", times=1)
    status, body = call(fresh, "GetTickets")
    with pytest.raises(ValueError):
        json.loads(body)
    f.set("garbage", times=1)
    with pytest.raises(ValueError):
        json.loads(call(fresh, "GetTickets")[1])
    f.set("rate_limit", status=503, retry_after="5", times=1)
    status, headers, _ = raw(fresh.url + "/includes/api.php", {"action": "GetTickets", **CREDS})
    assert status == 503 and headers["Retry-After"] == "5"
    f.set("json", body={"result": "success", "tickets": []}, times=1)
    assert json.loads(call(fresh, "GetTickets")[1]) == {"result": "success", "tickets": []}
    f.set("text_error", message="Access Denied", times=1)
    assert call(fresh, "GetTickets") == (403, b"result=error;message=Access Denied")
    # Action-scoped: other actions pass.
    f.set("http_error", action="GetTicket", status=500)
    assert call(fresh, "GetTickets")[0] == 200 and call(fresh, "GetTicket", ticketid="1")[0] == 500
    f.clear()
    assert call(fresh, "GetTicket", ticketid="1")[0] == 200
    for mode in ("partial", "empty"):
        f.set("reset", mode=mode, times=1)
        conn = http.client.HTTPConnection("127.0.0.1", fresh.port, timeout=5)
        conn.request("POST", "/includes/api.php", urllib.parse.urlencode({"action": "GetTickets", **CREDS}),
                     {"Content-Type": "application/x-www-form-urlencoded"})
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            conn.getresponse().read()
        conn.close()
    assert call(fresh, "GetTickets")[0] == 200


def test_control_surface(fresh: Simulator):
    js = {"Content-Type": "application/json"}
    status, _, body = raw(fresh.url + "/_sim/fault", json.dumps(
        {"kind": "rate_limit", "status": 429, "times": 1, "action": "GetTicketCounts"}).encode(), js)
    assert status == 200
    status, headers, body = raw(fresh.url + "/_sim/reset_calls", b"")
    assert call(fresh, "GetTicketCounts")[0] == 429
    assert call(fresh, "GetTicketCounts")[0] == 200
    calls = json.loads(raw(fresh.url + "/_sim/calls", method="GET")[2])
    assert [c["http_status"] for c in calls] == [429, 200] and calls[0]["action"] == "GetTicketCounts"
    truth = json.loads(raw(fresh.url + f"/_sim/truth?now={NOW}", method="GET")[2])
    local = fresh.world.truth(NOW)
    assert truth["active"] == local["active"] and truth["status_counts"] == local["status_counts"]
    assert truth["wait_buckets"]["3600"] == local["wait_buckets"][3600]
    raw(fresh.url + "/_sim/world", json.dumps({"counts_disabled": True}).encode(), js)
    assert j(fresh, "GetTicketCounts")["allActive"] == "x"
    raw(fresh.url + "/_sim/fault", json.dumps({"kind": "http_error", "status": 503}).encode(), js)
    raw(fresh.url + "/_sim/clear", b"")
    assert call(fresh, "GetTicketCounts")[0] == 200


# ---- world, generator, scale --------------------------------------------------------------------

def test_generator_is_deterministic_and_realistic():
    a = World.generate(seed=11, tickets=200, now=NOW)
    b = World.generate(seed=11, tickets=200, now=NOW)
    assert [(t.tid, t.status, t.lastreply) for t in a.tickets.values()] == [
        (t.tid, t.status, t.lastreply) for t in b.tickets.values()]
    assert any(t.merged_into for t in a.tickets.values())
    assert {t.status for t in a.tickets.values()} >= {"Open", "Answered", "Closed", "Customer-Reply"}
    assert len({t.tid for t in a.tickets.values()}) == 200
    awaiting = {s.title for s in a.statuses if s.showawaiting}
    for t in a.tickets.values():
        reps = a.replies(t)
        assert reps[0].date == t.date and reps[-1].date == t.lastreply
        if t.status in awaiting and len(reps) > 1:
            assert reps[-1].admin == "", "awaiting tickets end with the customer"
    assert a.status("Closed") == Status("Closed", False, False, 10, "#888888")


def test_live_steps_stay_bounded():
    clock = Clock()
    w = World.generate(seed=5, tickets=50, now=NOW, clock=clock)
    import random
    rng = random.Random(1)
    for i in range(300):
        clock.t = NOW + i * 5
        w.step(rng, max_tickets=60)
    assert len(w.tickets) <= 60
    assert max(t.lastreply for t in w.tickets.values()) > NOW


def test_hundred_thousand_tickets_complete():
    t0 = time.perf_counter()
    w = World.generate(seed=1, tickets=100_000, now=NOW, mix={"Customer-Reply": 1})
    gen = time.perf_counter() - t0
    _, body = handle(w, "GetTickets", {"status": "Awaiting Reply", "limitnum": "1",
                                       "ignore_dept_assignments": "1"})
    assert body["totalresults"] == len(w.live_tickets()) > 95_000
    t1 = time.perf_counter()
    _, last = handle(w, "GetTickets", {"status": "Awaiting Reply", "limitnum": "1",
                                       "ignore_dept_assignments": "1",
                                       "limitstart": str(body["totalresults"] - 1)})
    cached = time.perf_counter() - t1
    assert last["numreturned"] == 1
    print(f"100k generation {gen:.2f}s, cached GetTickets {cached * 1000:.2f}ms")


@pytest.mark.process
def test_cli_prints_url_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "exporter.simulator", "--port", "0", "--tickets", "20"],
                            stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "/includes/api.php" in line
        url = line.split()[2].rsplit("/includes", 1)[0]
        status, _, body = raw(url + "/includes/api.php", {"action": "GetTicketCounts", "responsetype": "json",
                                                           **CREDS})
        assert status == 200 and json.loads(body)["result"] == "success"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
