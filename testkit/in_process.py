"""The simulator's API called in-process: a client that counts calls per action, and a settable clock.

Collectors take any object with `call(action, params)`; `MemoryClient` answers from a `World` through the
simulator's action functions and the exporter's real `classify()`, without HTTP, so tests can count calls
and step time on desks of thousands of tickets quickly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from exporter.answers import classify
from exporter.simulator import World
from exporter.simulator.api import handle, to_json


class Clock:
    """A clock tests set by hand (`clock.t += 60`); pass it as the world's clock."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class MemoryClient:
    """The simulator's action functions called in-process, answers decoded by the real classify().

    `calls` counts calls per action; `before(action, params, n)`, when set, runs before the n-th call of an
    action (to change the world mid-poll or raise a failure).
    """

    def __init__(self, world: World, ticketnum: bool = False) -> None:
        self.world = world
        self.ticketnum = ticketnum
        self.calls: Counter[str] = Counter()
        self.before: Callable[[str, dict[str, str], int], None] | None = None

    def call(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        sent = {k: str(v) for k, v in (params or {}).items()}
        self.calls[action] += 1
        if self.before is not None:
            self.before(action, sent, self.calls[action])
        status, body = handle(self.world, action, sent, self.ticketnum)
        return classify(action, status, to_json(body))
