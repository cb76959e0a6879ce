"""The `sla` config section: the issue's example parses, every problem is reported with its path, first match wins."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest
import yaml

from exporter.config import ConfigError, parse

EXAMPLE = """
installations:
  - url: https://billing.example.com
    api_identifier: id
    api_secret: secret
    timezone: Europe/Berlin
    sla:
      business_hours:
        mon: "09:00-18:00"
        tue: "09:00-18:00"
        wed: "09:00-18:00"
        thu: "09:00-18:00"
        fri: "09:00-13:00,14:00-18:00"
      holidays: ["2026-12-25", 2026-12-26]
      warn_before: 1h
      targets:
        - priority: Urgent
          first_response: 30m
          next_reply: 1h
          hours: calendar
        - department: Billing
          first_response: 4h
          next_reply: 8h
        - department: Sales
          first_response: 2h
        - first_response: 8h
          next_reply: 24h
"""


def _with_sla(sla: object) -> dict:
    return {"installations": [{"url": "https://b.example.com", "api_identifier": "i", "api_secret": "s",
                               "timezone": "America/Chicago", "sla": sla}]}


def _problems(sla: object) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(_with_sla(sla))
    return err.value.problems


def test_the_documented_example_parses() -> None:
    (inst,) = parse(yaml.safe_load(EXAMPLE)).installations
    sla = inst.sla
    assert sla is not None
    assert sla.warn_before == 3600 and sla.max_tickets == 5000
    assert sla.business.zone.key == "Europe/Berlin"
    assert sla.business.week[0] == ((9 * 3600, 18 * 3600),)
    assert sla.business.week[4] == ((9 * 3600, 13 * 3600), (14 * 3600, 18 * 3600))
    assert sla.business.week[5] == () and sla.business.week[6] == ()
    assert sla.business.holidays == {date(2026, 12, 25), date(2026, 12, 26)}
    assert len(sla.rules) == 4 and sla.rules[0].calendar and not sla.rules[1].calendar


def test_first_match_wins_and_a_rule_may_leave_a_target_out() -> None:
    sla = parse(yaml.safe_load(EXAMPLE)).installations[0].sla
    seconds, schedule = sla.target("Billing", "Urgent", "first_response")
    assert seconds == 1800 and schedule.is_calendar  # the Urgent rule comes first
    seconds, schedule = sla.target("Billing", "Low", "next_reply")
    assert seconds == 8 * 3600 and schedule is sla.business
    assert sla.target("Sales", "High", "first_response")[0] == 2 * 3600
    assert sla.target("Sales", "High", "next_reply") is None  # the Sales rule decides: no next-reply target
    assert sla.target("Technical Support", "Low", "next_reply")[0] == 24 * 3600
    assert sla.target("billing", "Low", "first_response")[0] == 8 * 3600  # names are case-sensitive


def test_without_sla_there_is_none() -> None:
    document = _with_sla(None)
    del document["installations"][0]["sla"]
    assert parse(document).installations[0].sla is None


def test_business_hours_omitted_is_24x7() -> None:
    sla = parse(_with_sla({"targets": [{"first_response": "1h"}]})).installations[0].sla
    assert sla.business.is_calendar


def test_every_problem_is_reported_with_its_path() -> None:
    problems = _problems({
        "business_hours": {"mon": "09:00-18:00,12:00-13:00", "tue": "18:00-09:00", "funday": "09:00-10:00",
                           "wed": "9-5", "thu": "09:00-25:00"},
        "holidays": ["2026-13-01"],
        "warn_before": "0s",
        "max_tickets": 0,
        "targets": [{"department": "Billing"}, {"first_response": "-5m", "hours": "wall"},
                    {"next_reply": "1h", "colour": "red"}],
        "extra": 1,
    })
    where = "installations[0].sla"
    assert problems == [
        f"{where}: unknown key 'extra'",
        f"{where}.business_hours.mon: ranges overlap",
        f"{where}.business_hours.tue: '18:00-09:00' ends before it starts (a range cannot pass midnight: split "
        "it over two days)",
        f"{where}.business_hours: unknown day 'funday' (use mon, tue, wed, thu, fri, sat, sun)",
        f"{where}.business_hours.wed: '9-5' is not a range like 09:00-18:00",
        f"{where}.business_hours.thu: '09:00-25:00' is not a time of day (00:00 to 24:00)",
        f"{where}.holidays[0]: '2026-13-01' is not a date like 2026-12-25",
        f"{where}.warn_before: must be greater than zero",
        f"{where}.max_tickets: must be a whole number >= 1",
        f"{where}.targets[0]: set first_response, next_reply or both",
        f"{where}.targets[1].first_response: not a duration like 60s, 5m or 1h30m",
        f"{where}.targets[1].hours: must be business or calendar",
        f"{where}.targets[2]: unknown key 'colour'",
    ]


def test_sla_problems_come_with_the_installation_s_other_problems() -> None:
    document = _with_sla({"targets": []})
    document["installations"][0]["poll_interval"] = "soon"
    with pytest.raises(ConfigError) as err:
        parse(document)
    assert err.value.problems == [
        "installations[0].poll_interval: not a duration like 60s, 5m or 1h30m",
        "installations[0].sla.targets: required: a non-empty list of rules with first_response and/or next_reply",
    ]


def test_a_week_without_business_hours_is_an_error() -> None:
    assert _problems({"business_hours": {}, "targets": [{"first_response": "1h"}]}) == [
        "installations[0].sla.business_hours: no day has business hours (leave the key out for 24x7)"]


def test_sla_must_be_a_mapping() -> None:
    assert _problems(["8h"]) == ["installations[0].sla: must be a mapping with 'targets' (see docs/sla.md)"]


@pytest.mark.process
def test_config_check_exits_2_on_a_bad_schedule(tmp_path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(_with_sla({"business_hours": {"mon": "10:00-09:00"},
                                              "targets": [{"first_response": "1h"}]})))
    done = subprocess.run([sys.executable, "-m", "exporter", "--config.file", str(path), "--config.check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "installations[0].sla.business_hours.mon: '10:00-09:00' ends before it starts" in done.stderr


@pytest.mark.process
def test_the_fingerprint_is_the_same_in_every_process() -> None:
    """Saved SLA state is kept only under the same targets: the digest must not vary with hash randomization
    (holidays are a set)."""
    code = ("from tests.test_sla import installation; "
            "print(installation(sla={**__import__('tests.test_sla').test_sla.SLA, "
            "'holidays': ['2026-12-24', '2026-12-25', '2026-12-26', '2026-12-31']}).sla.fingerprint())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(digests) == 1 and len(digests.pop().strip()) == 64
