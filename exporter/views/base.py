"""What every view shares: the per-poll context and the view interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from exporter.client import ApiClient, flag
from exporter.config import InstallationConfig
from exporter.snapshot import Part


@dataclass
class PollContext:
    """One poll: the client to call, the reference time for every age, and the parts made so far."""

    client: ApiClient
    now: float
    installation: InstallationConfig
    parts: dict[str, Part] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return self.installation.zone

    def tickets_params(self, **params: Any) -> dict[str, Any]:
        """GetTickets parameters with the department-assignment setting applied."""
        return {"ignore_dept_assignments": flag(self.installation.ignore_department_assignments), **params}


class View(Protocol):
    name: str

    def poll(self, ctx: PollContext) -> Part: ...

