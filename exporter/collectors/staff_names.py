"""Staff names for labels: GetAdminUsers read at most once an hour, and what a flag's admin id is called.

A ticket's `flag` is an admin id. WHMCS shows a staff member as first and last name; the names come back
HTML-escaped or not depending on how they were saved, so they are decoded once (`fields.label_text`), like
department names. Two staff members with the same name stay apart: the lowest id keeps the plain name,
every other one becomes "Name (#7)". An id GetAdminUsers does not list (a deleted admin, names not read
yet, GetAdminUsers not allowed) is labelled "#<id>".

Staff change rarely and every API call is an admin login, so the list is asked for at most once per
`REFRESH_INTERVAL`, whatever the answer: a failed call keeps the names read before (or none), and an API
role without GetAdminUsers is told once in the log, not once a poll.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.client import ApiClient, flag
from exporter.errors import PermissionDenied, ShapeError, WhmcsError
from exporter.fields import items, label_text, to_count

log = logging.getLogger(__name__)

ACTION = "GetAdminUsers"
REFRESH_INTERVAL = 3600.0
OTHER = "other"  # the label of the staff members beyond max_staff: never a staff member's own label


@dataclass(frozen=True)
class StaffMember:
    id: int
    name: str  # first and last name as the admin area shows them; "" when both are empty
    disabled: bool


def parse_admin_users(answer: Mapping[str, Any]) -> tuple[StaffMember, ...]:
    """GetAdminUsers -> staff members (ids may be strings; `admin_users` absent or empty = none)."""
    try:
        rows = _rows(answer.get("admin_users"))
        out = []
        for raw in rows:
            first = label_text(raw.get("firstname") or "", "firstname")
            last = label_text(raw.get("lastname") or "", "lastname")
            disabled = str(raw.get("isDisabled", "0")).strip().lower() not in ("", "0", "false")
            out.append(StaffMember(to_count(raw.get("id"), "admin id"), f"{first} {last}".strip(), disabled))
    except ValueError as exc:
        raise ShapeError(ACTION, str(exc)) from None
    return tuple(out)


def _rows(container: Any) -> list[Mapping[str, Any]]:
    """`admin_users` is a plain list in WHMCS's JSON; a `{"admin_user": [...]}` wrapper is read too."""
    if isinstance(container, list):
        if not all(isinstance(row, Mapping) for row in container):
            raise ValueError("admin_users holds a non-object")
        return container
    return items(container, "admin_user", "admin_users")


def unique_names(staff: tuple[StaffMember, ...]) -> dict[int, str]:
    """Admin id -> label; a name shared by several staff members stays plain for the lowest id only."""
    labels: dict[int, str] = {}
    taken = {OTHER}
    for member in sorted(staff, key=lambda m: m.id):
        name = member.name or f"#{member.id}"
        label = name if name not in taken else f"{name} (#{member.id})"
        taken.add(label)
        labels[member.id] = label
    return labels


def label_of(names: Mapping[int, str], admin_id: int) -> str:
    return names.get(admin_id, f"#{admin_id}")


class StaffNames:
    """The installation's staff, refreshed at most once per `interval` (seconds of the poll clock)."""

    def __init__(self, installation: str, interval: float = REFRESH_INTERVAL) -> None:
        self.installation = installation
        self.interval = interval
        self.names: dict[int, str] = {}
        self.enabled: frozenset[int] = frozenset()  # staff members who are not disabled
        self.asked_at: float | None = None
        self.calls = 0
        self._told_denied = False

    def refresh(self, client: ApiClient, now: float) -> None:
        """Ask GetAdminUsers when the last ask is `interval` old (or there was none)."""
        if self.asked_at is not None and now - self.asked_at < self.interval:
            return
        self.asked_at = now
        self.calls += 1
        try:
            answer = client.call(ACTION, {"include_disabled": flag(True)})
            staff = parse_admin_users(answer)
        except PermissionDenied:
            if not self._told_denied:
                log.warning("whmcs=%s: the API role may not call GetAdminUsers: staff are labelled by admin id "
                            "(admin=\"#<id>\"); allow GetAdminUsers in the API role for their names",
                            self.installation)
                self._told_denied = True
            return
        except WhmcsError as exc:
            if exc.aborts_poll:
                raise
            log.warning("whmcs=%s: GetAdminUsers failed (%s): staff names as before, asked again in %d minutes",
                        self.installation, exc, self.interval // 60)
            return
        self._told_denied = False
        self.names = unique_names(staff)
        self.enabled = frozenset(m.id for m in staff if not m.disabled)
