"""What every collector shares: the per-poll context, the collector interface and its registration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from exporter.client import ApiClient, flag
from exporter.collectors.pacing import Pace
from exporter.collectors.poll_reads import PollReads
from exporter.snapshot import Part

if TYPE_CHECKING:
    from exporter.config import InstallationConfig


@dataclass
class PollContext:
    """One poll: the client to call, the reference time for every age, the parts made so far, the pace
    (deadline, call latency) that work which can wait follows, and the reads shared by every collector."""

    client: ApiClient
    now: float
    installation: InstallationConfig
    parts: dict[str, Part] = field(default_factory=dict)
    pace: Pace = field(default_factory=Pace)
    _reads: PollReads | None = field(default=None, repr=False)

    @property
    def reads(self) -> PollReads:
        """The lists and tickets read so far this poll, shared by every collector (poll_reads.py)."""
        if self._reads is None:
            self._reads = PollReads(self.client, self.zone, self.installation.whole_list_max_tickets)
        return self._reads

    @property
    def zone(self) -> ZoneInfo:
        return self.installation.zone

    def tickets_params(self, **params: Any) -> dict[str, Any]:
        """GetTickets parameters with the department-assignment setting applied."""
        return {"ignore_dept_assignments": flag(self.installation.ignore_department_assignments), **params}

    @property
    def awaiting_hint(self) -> int | None:
        """This poll's awaiting count from the counts collector's part (where the `Awaiting Reply` list
        ends), or None when that part is missing or does not cover the same tickets as GetTickets."""
        return getattr(self.parts.get("counts"), "awaiting_hint", None)


class Collector(Protocol):
    name: str

    def poll(self, ctx: PollContext) -> Part: ...


@dataclass(frozen=True)
class Registration:
    """One collector as the rest of the exporter knows it: config, flags, docs and the poller read this."""

    name: str
    factory: Callable[[InstallationConfig], Collector]
    summary: str  # one line for --help, the configuration reference and the landing page
    default: bool = True  # enabled unless the config or a --no-collector.X flag says otherwise
    needs: tuple[str, ...] = ()  # collectors whose parts it reads when they ran earlier in the same poll
    # Whether the installation's config gives the collector anything to do (e.g. `sla` needs targets).
    applies: Callable[[InstallationConfig], bool] = lambda inst: True
    # Skipped once the poll's deadline has passed (its previous part stays until stale): for collectors
    # that are not the backlog numbers and whose work resumes next poll.
    can_wait: bool = False
