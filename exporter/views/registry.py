"""Which views exist, in the order a poll runs them (later views may use earlier parts)."""

from __future__ import annotations

from collections.abc import Callable

from exporter.config import COLLECTORS, InstallationConfig
from exporter.views.base import View
from exporter.views.counts import CountsView
from exporter.views.departments import DepartmentsView
from exporter.views.first_response import FirstResponseView
from exporter.views.oldest_awaiting import OldestAwaitingView
from exporter.views.priorities import PrioritiesView
from exporter.views.wait_distribution import WaitDistributionView

FACTORIES: dict[str, Callable[[InstallationConfig], View]] = {
    "counts": lambda inst: CountsView(),
    "oldest_awaiting": lambda inst: OldestAwaitingView(),
    "departments": lambda inst: DepartmentsView(),
    "wait_distribution": lambda inst: WaitDistributionView(),
    "priorities": lambda inst: PrioritiesView(),
    "first_response": lambda inst: FirstResponseView(inst),
}


def build_views(inst: InstallationConfig) -> list[View]:
    """The enabled views of one installation, in poll order."""
    return [FACTORIES[name](inst) for name in COLLECTORS if name in inst.collectors and name in FACTORIES]
