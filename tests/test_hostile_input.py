"""Hostile input: whatever WHMCS (or something pretending to be it) sends, parsers return data or a typed error,
and label values it supplies come out of /metrics exactly as they went in.

Property tests feed arbitrary JSON-ish documents to every parser. The documented
contract: `client.classify` returns a dict or raises `WhmcsError`; `parse_page`
returns a Page or raises `ShapeError`; the other parsers and `fields.*` return
data or raise `ValueError`. Any other exception would be a bug that costs a view
(or, in the client, a poll).
"""

from __future__ import annotations

import json
import subprocess
import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import fields
from exporter.answers import classify
from exporter.collectors.counts import CountsPart, parse_counts, parse_status_map, parse_statuses
from exporter.collectors.support_departments import parse_departments
from exporter.collectors.ticket_lists import parse_page, parse_ticket
from exporter.collectors.ticket_replies import parse_ticket_replies
from exporter.errors import WhmcsError
from exporter.families import MAX_LABEL_VALUE_LENGTH, FamilySink
from exporter.render import SnapshotRenderer
from exporter.snapshot import CollectorState, InstallationSnapshot, SnapshotStore

ZONE = ZoneInfo("America/Chicago")
KEYS = ["result", "message", "totalresults", "tickets", "ticket", "status", "title", "count", "allActive",
        "awaitingReply", "flaggedTickets", "filteredDepartments", "departments", "department", "id", "name",
        "awaitingreply", "opentickets", "statuses", "date", "lastreply", "tid", "deptid", "priority", "replies",
        "reply", "replyid", "admin", "ticketid", "ticketnum", "error"]
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["", "x", "12", " 7 ", "-3", "1e3", "success", "error", "2024-01-02 03:04:05",
                              "2024-02-30 25:61:61", "٣", "\x00", "\ud800"])
           | st.text(max_size=20))
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6),
    max_leaves=30)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=8)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only(allowed: tuple[type[BaseException], ...], fn, *args):
    try:
        return fn(*args)
    except allowed:
        return None


@FAST
@given(status=st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503]),
       body=st.one_of(st.binary(max_size=200), JSONISH.map(lambda v: json.dumps(v).encode()),
                      DOCUMENTS.map(lambda d: json.dumps(d).encode()),
                      st.text(max_size=60).map(lambda t: ("result=error;message=" + t).encode())),
       retry=st.none() | st.floats(min_value=0, max_value=1e6))
def test_classify_returns_a_dict_or_a_whmcs_error(status, body, retry):
    result = only((WhmcsError,), classify, "GetTickets", status, body, retry)
    if result is not None:
        assert isinstance(result, dict) and result.get("result") == "success" and status < 300


@FAST
@given(DOCUMENTS)
def test_answer_parsers_return_data_or_value_error(doc):
    only((ValueError,), parse_counts, "w", doc)
    only((ValueError,), parse_statuses, doc)
    only((ValueError,), parse_departments, doc)
    only((ValueError,), parse_ticket_replies, doc, ZONE)
    only((ValueError,), parse_status_map, doc.get("status"))


@FAST
@given(JSONISH)
def test_status_map_and_fields_take_anything(value):
    only((ValueError,), parse_status_map, value)
    only((ValueError,), fields.to_count, value, "f")
    only((ValueError,), fields.parse_local_time, value, ZONE, "f")
    only((ValueError,), fields.items, value, "ticket", "tickets")
    only((ValueError,), fields.text, value, "f")
    fields.is_disabled_count(value)
    counted = only((ValueError,), fields.to_count, value, "f")
    if counted is not None:
        assert isinstance(counted, int) and 0 <= counted <= fields.MAX_COUNT


@FAST
@given(DOCUMENTS, st.integers(min_value=0, max_value=10))
def test_ticket_pages_return_a_page_or_a_whmcs_error(doc, start):
    page = only((WhmcsError,), parse_page, doc, ZONE, start)
    if page is not None:
        assert page.total >= 0 and all(t.id >= 0 for t in page.tickets)
    if isinstance(doc.get("ticket"), dict):
        only((WhmcsError,), parse_ticket, doc["ticket"], ZONE)


# -- label values ----------------------------------------------------------------------------------------------

def exposition(titles: list[str]) -> str:
    part = CountsPart(whmcs="w", by_status=tuple((t, i) for i, t in enumerate(titles)), active=1, awaiting=1,
                      flagged=0, filtered_departments=())
    store = SnapshotStore(["w"])
    now = time.time()
    store.put(InstallationSnapshot(name="w", max_age=60, collectors={"counts": CollectorState(part=part, updated=now,
                                                                                    success=True)},
                                   up=True, polls=1, last_poll_time=now, last_success_time=now))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotRenderer(store, lambda name: 5000))
    return generate_latest(registry).decode("utf-8")


def labels_back(text: str) -> dict[str, float]:
    for family in text_string_to_metric_families(text):
        if family.name == "whmcs_tickets":
            return {s.labels["status"]: s.value for s in family.samples}
    return {}


def expected_label(title: str) -> str:
    """NUL and lone surrogates (which JSON can carry but UTF-8 cannot) become U+FFFD; all else is kept."""
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in title)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(codec=None), min_size=1, max_size=30), min_size=1, max_size=8, unique=True))
def test_any_label_value_round_trips(titles):
    text = exposition(titles)
    back = labels_back(text)
    want = {}
    for i, t in enumerate(titles):
        want.setdefault(expected_label(t), float(i))
    assert back == want


NASTY = ['Wartend – Kunde', 'Überprüfung', 'say "hi"', 'back\\slash', 'new\nline', 'tab\tand\rreturn',
         '{status="x"}', 'emoji 🎫', 'rtl שלום', '\x00nul', 'lone \ud800 surrogate', '# HELP fake', ' ', '=']


@pytest.mark.process
def test_nasty_label_values_round_trip_and_pass_promtool(promtool):
    text = exposition(NASTY)
    assert labels_back(text) == {expected_label(t): float(i) for i, t in enumerate(NASTY)}
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


# -- the series cap --------------------------------------------------------------------------------------------

def test_series_cap_keeps_the_largest_series_and_reports_the_cut():
    sink = FamilySink()
    sink.start_installation(10)
    sink.start_part("counts")
    for i in range(25):
        sink.gauge("whmcs_tickets", "h", {"whmcs": "w", "status": f"s{i}"}, i)
    report = sink.finish_installation()
    samples = next(iter(sink.families())).samples
    assert sorted(s.labels["status"] for s in samples) == sorted(f"s{i}" for i in range(15, 25))
    assert report.dropped == 15 and report.dropped_by_collector == {"counts": 15}
    # A gauge histogram needs buckets + 2 series at once; it is admitted whole or not at all.
    sink.start_installation(5)
    sink.gauge_histogram("h", "h", {"whmcs": "x", "department": "a"}, [(1.0, 1), (float("inf"), 2)], 3.0)
    sink.gauge_histogram("h", "h", {"whmcs": "x", "department": "b"}, [(1.0, 1), (float("inf"), 5)], 3.0)
    report = sink.finish_installation()
    assert report.dropped == 4
    assert {s.labels["department"] for f in sink.families() if f.name == "h" for s in f.samples} == {"b"}


def test_core_series_are_never_cut_and_the_rest_is_shared_fairly():
    """5,000 status titles must not push out totals, oldest ages or the other label-heavy metrics."""
    sink = FamilySink()
    sink.start_installation(100)
    sink.start_part("counts")
    for i in range(5000):
        sink.gauge("whmcs_tickets", "h", {"whmcs": "w", "status": f"s{i}"}, 1)
    sink.gauge("whmcs_tickets_active", "h", {"whmcs": "w"}, 5000)
    sink.start_part("oldest_awaiting")
    sink.gauge("whmcs_ticket_oldest_awaiting_reply_age_seconds", "h", {"whmcs": "w"}, 60)
    sink.start_part("departments")
    for d in range(3):
        sink.gauge("whmcs_department_tickets_active", "h", {"whmcs": "w", "department": f"d{d}"}, d)
    sink.start_part("priorities")
    for p in range(200):
        sink.gauge("whmcs_tickets_by_priority", "h", {"whmcs": "w", "priority": f"p{p}"}, p)
    report = sink.finish_installation()
    counts = {f.name: len(f.samples) for f in sink.families()}
    # 2 core series; 98 left: departments need 3, the other two share 95 (the smaller first: 47, then 48).
    assert counts == {"whmcs_tickets": 48, "whmcs_tickets_active": 1,
                      "whmcs_ticket_oldest_awaiting_reply_age_seconds": 1, "whmcs_department_tickets_active": 3,
                      "whmcs_tickets_by_priority": 47}
    assert report.dropped_by_collector == {"counts": 5000 - 48, "priorities": 200 - 47}


def test_series_cap_counts_each_poll_once_and_names_the_collector():
    titles = [f"status {i}" for i in range(30)]
    part = CountsPart(whmcs="w", by_status=tuple((t, 1) for t in titles), active=1, awaiting=1, flagged=0,
                      filtered_departments=())
    store = SnapshotStore(["w"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotRenderer(store, lambda name: 20))
    for poll, scrape in ((1, 1), (1, 2), (2, 3)):
        store.put(InstallationSnapshot(name="w", max_age=60, polls=poll, collectors={
            "counts": CollectorState(part=part, updated=time.time(), success=True)}))
        text = generate_latest(registry).decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert len(families["whmcs_tickets"].samples) == 17  # the cap minus active, awaiting, flagged (kept)
        assert [s.value for s in families["whmcs_tickets_active"].samples] == [1]
        dropped = families["whmcs_exporter_series_dropped"].samples[0]
        assert dropped.labels == {"whmcs": "w"} and dropped.value == 13 * poll, scrape
        by_collector = families["whmcs_exporter_collector_series_dropped"].samples
        assert [(s.labels["collector"], s.value) for s in by_collector] == [("counts", 13)]


def test_long_label_values_are_cut_with_a_marker_and_counted():
    title = "x" * 10_000
    part = CountsPart(whmcs="w", by_status=((title, 2), ("short", 1)), active=3, awaiting=1, flagged=0,
                      filtered_departments=())
    store = SnapshotStore(["w"])
    store.put(InstallationSnapshot(name="w", max_age=60, polls=1, collectors={
        "counts": CollectorState(part=part, updated=time.time(), success=True)}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotRenderer(store, lambda name: 100))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    statuses = {s.labels["status"]: s.value for s in families["whmcs_tickets"].samples}
    assert statuses == {"x" * (MAX_LABEL_VALUE_LENGTH - 1) + "\u2026": 2, "short": 1}
    assert families["whmcs_exporter_label_values_cut"].samples[0].value == 1
