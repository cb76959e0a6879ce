"""Service-level targets: the `sla` config section of an installation, validated, and target matching.

WHMCS's API cannot read escalation rules, so the targets live in our config (docs/sla.md). A ticket
gets the first rule whose `department` and `priority` match (either omitted = any); that rule alone
decides, so a rule that leaves `first_response` or `next_reply` out gives its tickets no target of that
kind. Every problem is reported with its field path, like the rest of the configuration; `SlaSection` is
the setting's kind (declared as `sla` in installation.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from exporter.business_hours import DAY, DAY_NAMES, Ranges, Schedule
from exporter.config.durations import parse_duration
from exporter.config.kinds import ABSENT, Kind
from exporter.config.problems import Invalid

KINDS = ("first_response", "next_reply")
DEFAULT_WARN_BEFORE = 3600.0
DEFAULT_MAX_TICKETS = 5000
_KEYS = {"business_hours", "holidays", "warn_before", "targets", "max_tickets"}
_RULE_KEYS = {"department", "priority", "first_response", "next_reply", "hours"}
_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class SlaRule:
    department: str | None  # None = any department
    priority: str | None  # None = any priority
    first_response: float | None  # seconds; None = no target of this kind for the rule's tickets
    next_reply: float | None
    calendar: bool = False  # `hours: calendar`: every second counts, not only business hours

    def matches(self, department: str, priority: str) -> bool:
        return self.department in (None, department) and self.priority in (None, priority)

    def seconds(self, kind: str) -> float | None:
        return self.first_response if kind == "first_response" else self.next_reply


@dataclass(frozen=True)
class SlaConfig:
    business: Schedule
    rules: tuple[SlaRule, ...]
    warn_before: float = DEFAULT_WARN_BEFORE
    max_tickets: int = DEFAULT_MAX_TICKETS

    def rule_for(self, department: str, priority: str) -> SlaRule | None:
        """The first matching rule (first match wins), or None."""
        return next((r for r in self.rules if r.matches(department, priority)), None)

    def target(self, department: str, priority: str, kind: str) -> tuple[float, Schedule] | None:
        """(target seconds, the schedule they are counted in) for a ticket waiting for `kind`, or None."""
        rule = self.rule_for(department, priority)
        seconds = rule.seconds(kind) if rule else None
        if rule is None or seconds is None:
            return None
        return seconds, self.calendar if rule.calendar else self.business

    @property
    def calendar(self) -> Schedule:
        return Schedule(self.business.zone)

    def fingerprint(self) -> str:
        """A digest of the whole SLA, the same in every process (state saved under other targets is dropped)."""
        return hashlib.sha256(repr(_canonical(self)).encode()).hexdigest()


Problems = list[tuple[str, str]]  # (field path below the installation, message)


class SlaSection(Kind):
    """The `sla` setting: a mapping, validated as a whole; its business hours are in the installation's zone."""

    format = "mapping: `business_hours`, `holidays`, `warn_before`, `max_tickets`, `targets` ([sla.md](sla.md))"

    def take(self, raw: Mapping[str, Any], key: str) -> Any:
        value = raw.get(key)
        if value is None:
            return ABSENT
        return parse_sla(value, str(raw.get("timezone") or "UTC"), key)

    def show(self, value: Any) -> str:
        hours = "24x7" if value.business.week is None else "business hours"
        return f"{len(value.rules)} target rule(s), {hours}, {len(value.business.holidays)} holiday(s)"


def parse_sla(raw: Any, timezone: str, where: str = "sla") -> SlaConfig:
    """The `sla` mapping -> SlaConfig; `Invalid` listing every problem with its path."""
    problems: Problems = []
    config = _parse(raw, timezone, where, problems)
    if problems or config is None:
        raise Invalid.many(problems or [(where, "invalid")])
    return config


def _parse(raw: Any, timezone: str, where: str, problems: Problems) -> SlaConfig | None:
    if not isinstance(raw, Mapping):
        problems.append((where, "must be a mapping with 'targets' (see docs/sla.md)"))
        return None
    start = len(problems)
    problems += [(where, f"unknown key '{k}'") for k in sorted(map(str, set(raw) - _KEYS))]
    week = _week(raw["business_hours"], f"{where}.business_hours", problems) if "business_hours" in raw else None
    if week is not None and not any(week) and len(problems) == start:
        problems.append((f"{where}.business_hours", "no day has business hours (leave the key out for 24x7)"))
    holidays = _holidays(raw.get("holidays", []), f"{where}.holidays", problems)
    warn = _duration(raw.get("warn_before", DEFAULT_WARN_BEFORE), f"{where}.warn_before", problems)
    limit = raw.get("max_tickets", DEFAULT_MAX_TICKETS)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        problems.append((f"{where}.max_tickets", "must be a whole number >= 1"))
    rules = _rules(raw.get("targets"), f"{where}.targets", problems)
    if len(problems) > start:
        return None
    try:
        zone = ZoneInfo(timezone)
    except (ValueError, KeyError, OSError):
        zone = ZoneInfo("UTC")  # the timezone's own problem is reported by the installation's parser
    return SlaConfig(business=Schedule(zone, week=week, holidays=holidays), rules=rules,
                     warn_before=warn or DEFAULT_WARN_BEFORE, max_tickets=limit)


def _duration(value: Any, where: str, problems: Problems) -> float | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        problems.append((where, str(exc)))
        return None


def _week(raw: Any, where: str, problems: Problems) -> tuple[Ranges, ...] | None:
    if not isinstance(raw, Mapping):
        problems.append((where, f"must map day names ({', '.join(DAY_NAMES)}) to ranges like \"09:00-18:00\""))
        return None
    days: dict[str, Ranges] = {}
    for key, value in raw.items():
        name = str(key)
        if name not in DAY_NAMES:
            problems.append((where, f"unknown day '{name[:20]}' (use {', '.join(DAY_NAMES)})"))
            continue
        days[name] = _day_ranges(value, f"{where}.{name}", problems)
    return tuple(days.get(name, ()) for name in DAY_NAMES)


def _day_ranges(raw: Any, where: str, problems: Problems) -> Ranges:
    if not isinstance(raw, str) or not raw.strip():
        problems.append((where, "must be ranges like \"09:00-13:00,14:00-18:00\""))
        return ()
    ranges = []
    for piece in raw.split(","):
        found = _RANGE.fullmatch(piece.strip())
        if not found:
            problems.append((where, f"'{piece.strip()[:20]}' is not a range like 09:00-18:00"))
            continue
        h1, m1, h2, m2 = map(int, found.groups())
        opens, closes = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
        if m1 > 59 or m2 > 59 or opens >= DAY or closes > DAY:
            problems.append((where, f"'{piece.strip()}' is not a time of day (00:00 to 24:00)"))
        elif closes <= opens:
            problems.append((where, f"'{piece.strip()}' ends before it starts (a range cannot pass midnight: "
                                    "split it over two days)"))
        else:
            ranges.append((opens, closes))
    ranges.sort()
    for (_, end), (begin, _) in zip(ranges, ranges[1:]):
        if begin < end:
            problems.append((where, "ranges overlap"))
            break
    return tuple(ranges)


def _holidays(raw: Any, where: str, problems: Problems) -> frozenset[date]:
    if not isinstance(raw, list):
        problems.append((where, "must be a list of dates like \"2026-12-25\""))
        return frozenset()
    out = set()
    for index, value in enumerate(raw):
        if isinstance(value, date):  # YAML reads an unquoted 2026-12-25 as a date already
            out.add(value)
            continue
        try:
            out.add(date.fromisoformat(str(value)))
        except ValueError:
            problems.append((f"{where}[{index}]", f"'{str(value)[:20]}' is not a date like 2026-12-25"))
    return frozenset(out)


def _rules(raw: Any, where: str, problems: Problems) -> tuple[SlaRule, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append((where, "required: a non-empty list of rules with first_response and/or next_reply"))
        return ()
    rules = []
    for index, item in enumerate(raw):
        rule = _rule(item, f"{where}[{index}]", problems)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _rule(raw: Any, where: str, problems: Problems) -> SlaRule | None:
    if not isinstance(raw, Mapping):
        problems.append((where, "must be a mapping"))
        return None
    problems += [(where, f"unknown key '{k}'") for k in sorted(map(str, set(raw) - _RULE_KEYS))]
    seconds = {k: _duration(raw[k], f"{where}.{k}", problems) for k in KINDS if raw.get(k) is not None}
    if not any(raw.get(k) is not None for k in KINDS):
        problems.append((where, "set first_response, next_reply or both"))
    hours = raw.get("hours", "business")
    if hours not in ("business", "calendar"):
        problems.append((f"{where}.hours", "must be business or calendar"))
    names = {}
    for key in ("department", "priority"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            problems.append((f"{where}.{key}", "must be a name as WHMCS shows it"))
        names[key] = value if isinstance(value, str) and value else None
    return SlaRule(department=names["department"], priority=names["priority"],
                   first_response=seconds.get("first_response"), next_reply=seconds.get("next_reply"),
                   calendar=hours == "calendar")


def _canonical(value: Any) -> Any:
    """A form of the SLA config whose repr is the same in every process (sets have no stable order)."""
    if dataclasses.is_dataclass(value):
        return tuple((f.name, _canonical(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, (set, frozenset)):
        return tuple(sorted((_canonical(v) for v in value), key=repr))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((repr(k), _canonical(v)) for k, v in value.items()), key=repr))
    return repr(value)
