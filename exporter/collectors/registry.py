"""Every collector, registered once, in the order a poll runs them (later ones may read earlier parts).

The order is the order of importance: the backlog numbers first, so that a poll cut short by its
deadline has read them; the collectors that can wait last.

Adding a collector is one `Registration` here: the config's `collectors` key, the
`--collector.X` flags, `whmcs_exporter_collector_*{collector}` and the configuration
reference all come from this table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exporter.collectors.base import Collector, Registration
from exporter.collectors.counts import CountsCollector
from exporter.collectors.departments import DepartmentsCollector
from exporter.collectors.first_response import FirstResponseCollector
from exporter.collectors.flow import FlowCollector
from exporter.collectors.oldest_awaiting import OldestAwaitingCollector
from exporter.collectors.priorities import PrioritiesCollector
from exporter.collectors.sla import SlaCollector
from exporter.collectors.staff import StaffCollector
from exporter.collectors.wait_distribution import WaitDistributionCollector

if TYPE_CHECKING:
    from exporter.config import InstallationConfig

REGISTRY: tuple[Registration, ...] = (
    Registration("counts", lambda inst: CountsCollector(),
                 "tickets per status, active, awaiting reply and flagged (GetTicketCounts)"),
    Registration("oldest_awaiting", lambda inst: OldestAwaitingCollector(),
                 "the longest current wait for a staff reply", needs=("counts",)),
    Registration("departments", lambda inst: DepartmentsCollector(),
                 "awaiting and active tickets and the longest wait per support department"),
    Registration("priorities", lambda inst: PrioritiesCollector(),
                 "active tickets by priority"),
    Registration("staff", lambda inst: StaffCollector(inst.name, inst.max_staff),
                 "active tickets flagged to each staff member (only with `staff_metrics: true`; GetAdminUsers "
                 "hourly for names)", applies=lambda inst: inst.staff_metrics),
    Registration("wait_distribution", lambda inst: WaitDistributionCollector(),
                 "the exact distribution of current waits (gauge histogram)", needs=("counts",),
                 can_wait=True),
    Registration("first_response", FirstResponseCollector,
                 "time from opening to the first staff reply (GetTicket per ticket, cached)", needs=("departments",),
                 can_wait=True),
    Registration("flow", FlowCollector,
                 "tickets opened, replies by author, customer ratings and staff replies as counters (GetTicket per "
                 "changed ticket, queued)", needs=("departments", "first_response"), can_wait=True),
    Registration("sla", SlaCollector,
                 "awaiting tickets breached or at risk of their service-level targets (only with `sla` configured)",
                 needs=("departments", "first_response"), applies=lambda inst: inst.sla is not None,
                 can_wait=True),
)

NAMES: tuple[str, ...] = tuple(r.name for r in REGISTRY)
DEFAULTS: frozenset[str] = frozenset(r.name for r in REGISTRY if r.default)
CAN_WAIT: frozenset[str] = frozenset(r.name for r in REGISTRY if r.can_wait)


def build_collectors(inst: InstallationConfig) -> list[Collector]:
    """The enabled collectors of one installation, in poll order."""
    return [r.factory(inst) for r in REGISTRY if r.name in inst.collectors and r.applies(inst)]
