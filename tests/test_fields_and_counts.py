"""Pure parsing: WHMCS values and the GetTicketCounts answer."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from exporter.collectors.counts import parse_counts, parse_status_map, parse_statuses
from exporter.fields import items, parse_local_time, to_count

CHICAGO = ZoneInfo("America/Chicago")


def test_counts_from_strings_ints_and_whole_floats():
    assert to_count("12", "x") == 12
    assert to_count(12, "x") == 12
    assert to_count(12.0, "x") == 12
    for bad in ("-1", "1.5", 1.5, None, True, "", "١٢", 10**13, float("nan"), [1]):
        with pytest.raises(ValueError):
            to_count(bad, "x")


def test_local_times_in_a_non_utc_zone_across_dst():
    # 2026-03-08 02:30 does not exist in Chicago; 01:30 on 2026-11-01 happens twice.
    winter = parse_local_time("2026-01-15 12:00:00", CHICAGO, "date")
    assert winter == dt.datetime(2026, 1, 15, 18, 0, tzinfo=dt.timezone.utc).timestamp()
    summer = parse_local_time("2026-07-15 12:00:00", CHICAGO, "date")
    assert summer == dt.datetime(2026, 7, 15, 17, 0, tzinfo=dt.timezone.utc).timestamp()
    # Ambiguous hour: the earlier instant (CDT) is taken.
    assert parse_local_time("2026-11-01 01:30:00", CHICAGO, "d") == dt.datetime(
        2026, 11, 1, 6, 30, tzinfo=dt.timezone.utc).timestamp()
    for bad in ("2026-01-15T12:00:00Z", "0000-00-00 00:00:00", "", None, 5):
        with pytest.raises(ValueError):
            parse_local_time(bad, CHICAGO, "date")


def test_item_wrappers():
    assert items(None, "ticket", "tickets") == []
    assert items({}, "ticket", "tickets") == []
    assert items({"ticket": {"id": "1"}}, "ticket", "tickets") == [{"id": "1"}]
    assert items({"ticket": [{"id": "1"}, {"id": "2"}]}, "ticket", "tickets") == [{"id": "1"}, {"id": "2"}]
    for bad in ({"ticket": "x"}, {"ticket": [1]}, "x"):
        with pytest.raises(ValueError):
            items(bad, "ticket", "tickets")


SEED_EXAMPLE = {
    "result": "success", "filteredDepartments": [1, 2, 3], "allActive": 123, "awaitingReply": 100,
    "flaggedTickets": 15,
    "status": {"open": {"title": "Open", "count": 60}, "answered": {"title": "Answered", "count": 23},
               "customerreply": {"title": "Customer-Reply", "count": 40},
               "closed": {"title": "Closed", "count": 4220}, "onhold": {"title": "On Hold", "count": 10},
               "inprogress": {"title": "In Progress", "count": 0}},
}


def test_seed_example_parses_exactly():
    part = parse_counts("w", SEED_EXAMPLE)
    assert part.active == 123 and part.awaiting == 100 and part.flagged == 15
    assert part.filtered_departments == (1, 2, 3)
    assert dict(part.by_status) == {"Open": 60, "Answered": 23, "Customer-Reply": 40, "Closed": 4220,
                                    "On Hold": 10, "In Progress": 0}


def test_titles_label_the_status_not_keys():
    # Non-ASCII letters vanish from keys; the title is the label.
    raw = {"wartendkunde": {"title": "Wartend – Kunde", "count": "3"}, "berprfung": {"title": "Überprüfung",
                                                                                   "count": 0}}
    assert dict(parse_status_map(raw)) == {"Wartend – Kunde": 3, "Überprüfung": 0}


def test_disabled_counts_become_none():
    part = parse_counts("w", {**SEED_EXAMPLE, "allActive": "x", "awaitingReply": "x", "flaggedTickets": "x"})
    assert part.active is None and part.awaiting is None and part.flagged is None
    assert dict(part.by_status)["Open"] == 60


def test_wrong_shapes_raise_value_error():
    for bad in ({**SEED_EXAMPLE, "allActive": None}, {**SEED_EXAMPLE, "status": [1]},
                {**SEED_EXAMPLE, "status": {"open": 5}}, {**SEED_EXAMPLE, "filteredDepartments": "1"}):
        with pytest.raises(ValueError):
            parse_counts("w", bad)


def test_support_statuses():
    answer = {"result": "success", "totalresults": 2,
              "statuses": {"status": [{"title": "Open", "count": "4", "color": "#000"},
                                      {"title": "Closed", "count": 7}]}}
    assert parse_statuses(answer) == (("Closed", 7), ("Open", 4))


class _GatewayWithoutCounts:
    """A client whose installation lacks GetTicketCounts (a gateway answering 404)."""

    def __init__(self):
        self.calls: list[str] = []

    def call(self, action, params=None):
        from exporter.errors import Unsupported

        self.calls.append(action)
        if action == "GetTicketCounts":
            raise Unsupported(action, "not found", status=404)
        if action == "GetSupportStatuses":
            return {"result": "success", "statuses": {"status": [{"title": "Open", "count": "2"}]}}
        total = 5 if params.get("status") == "All Active Tickets" else 2
        return {"result": "success", "totalresults": total, "startnumber": 0, "numreturned": 0}


def test_missing_counts_action_is_derived_and_not_asked_every_poll():
    from exporter.collectors.base import PollContext
    from exporter.collectors.counts import RECHECK_UNSUPPORTED, CountsCollector
    from exporter.config import ApiCredentials, InstallationConfig, Secret

    inst = InstallationConfig(name="g", url="https://g.example", auth=ApiCredentials(Secret("i"), Secret("s")))
    client, collector = _GatewayWithoutCounts(), CountsCollector()
    part = collector.poll(PollContext(client=client, now=1000.0, installation=inst))
    assert (part.active, part.awaiting, part.flagged, part.by_status) == (5, 2, None, (("Open", 2),))
    assert client.calls == ["GetTicketCounts", "GetSupportStatuses", "GetTickets", "GetTickets"]
    client.calls.clear()
    collector.poll(PollContext(client=client, now=1060.0, installation=inst))
    assert "GetTicketCounts" not in client.calls
    collector.poll(PollContext(client=client, now=1000.0 + RECHECK_UNSUPPORTED, installation=inst))
    assert client.calls.count("GetTicketCounts") == 1
