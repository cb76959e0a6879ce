"""Reading GetSupportDepartments, shared by every collector that labels series by department.

Labels are department names as the admin area shows them (HTML character references decoded once, see
`fields.label_text`: WHMCS may answer a name escaped or not). WHMCS allows two departments with the same
name; the one with the lowest id keeps the plain name, every other one becomes "Name (id 7)", so no two
series collide and a label does not change while the departments stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.client import ApiClient, flag
from exporter.errors import ShapeError
from exporter.fields import items, label_text, to_count

ACTION = "GetSupportDepartments"


@dataclass(frozen=True)
class Department:
    id: int
    name: str
    awaiting: int
    active: int


def parse_departments(answer: Mapping[str, Any]) -> tuple[Department, ...]:
    """GetSupportDepartments -> departments (numbers arrive as strings; no `departments` key = none)."""
    out = []
    for raw in items(answer.get("departments"), "department", "departments"):
        ident = to_count(raw.get("id"), "department id")
        out.append(Department(id=ident, name=label_text(raw.get("name", ""), "department name") or f"id {ident}",
                              awaiting=to_count(raw.get("awaitingreply"), "awaitingreply"),
                              active=to_count(raw.get("opentickets"), "opentickets")))
    return tuple(out)


def unique_labels(departments: tuple[Department, ...]) -> dict[int, str]:
    """Department id -> label; a name shared by several departments stays plain for the lowest id only."""
    labels: dict[int, str] = {}
    taken: set[str] = set()
    for dept in sorted(departments, key=lambda d: d.id):
        label = dept.name if dept.name not in taken else f"{dept.name} (id {dept.id})"
        taken.add(label)
        labels[dept.id] = label
    return labels


def read_departments(client: ApiClient, ignore_assignments: bool) -> tuple[Department, ...]:
    """One GetSupportDepartments call, parsed."""
    answer = client.call(ACTION, {"ignore_dept_assignments": flag(ignore_assignments)})
    try:
        return parse_departments(answer)
    except ValueError as exc:
        raise ShapeError(ACTION, str(exc)) from None
