"""Pacing a poll: its deadline, and the measured call latency that sizes the work that can wait.

A slow WHMCS (each API call boots it and logs an admin in: 0.6 s per call is common on shared
hosting, 2-3 s happens) must lower coverage, never freshness. So a poll has a deadline; the
collectors that can wait are skipped once it has passed, and inside a collector the work that can
wait (GetTicket fetches, list pages of the first-response window, refinement calls of the wait
distribution) asks `Pace` before each call. Calls are timed with the poller's clock (so tests with
a fake clock see the latency the simulator adds to it), and the average per-call latency carried
from poll to poll turns a time into a number of calls: a GetTicket budget that fits the time left.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.client import ApiClient

# Weight of the newest call in the running latency average: a few calls move it, one odd call does not.
LATENCY_WEIGHT = 0.2


@dataclass
class CallLatency:
    """Seconds per API call, averaged over recent calls; lives as long as the installation's poller."""

    seconds: float | None = None
    calls: int = 0

    def add(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.calls += 1
        if self.seconds is None:
            self.seconds = seconds
        else:
            self.seconds += LATENCY_WEIGHT * (seconds - self.seconds)


@dataclass
class Pace:
    """One poll's time limit as the collectors see it. Without a deadline (unit tests) nothing is limited.

    The collectors that can wait share the time left: each gets an equal part of what remains when it starts
    (`share`), so the first one cannot starve the next; what one leaves over goes to those after it.
    """

    clock: Callable[[], float] = time.time
    deadline: float = math.inf  # the poll's
    latency: CallLatency = field(default_factory=CallLatency)
    until: float = math.inf  # the end of the running collector's share
    cut: bool = False  # the running collector left work for the next poll

    def share(self, collectors_left: int) -> None:
        """The next collector that can wait runs until its share of the time left has passed."""
        self.until = self.clock() + max(0.0, self.deadline - self.clock()) / max(1, collectors_left)
        self.cut = False

    def poll_over(self) -> bool:
        return self.clock() >= self.deadline

    def remaining(self) -> float:
        return min(self.deadline, self.until) - self.clock()

    def past_deadline(self) -> bool:
        """Whether the running collector's time is up: another call (at the measured latency) would end after
        it. Asking and hearing yes marks the collector's work as cut."""
        over = self.remaining() < (self.latency.seconds or 0.0) or self.remaining() <= 0
        self.cut = self.cut or over
        return over

    def affordable(self, budget: int) -> int:
        """How many of `budget` calls fit in the time left at the measured latency (all of them while
        no latency is known: the loop still stops at the deadline)."""
        left = self.remaining()
        if left <= 0:
            fits = 0
        elif self.latency.seconds is None or self.latency.seconds <= 0 or math.isinf(left):
            fits = budget
        else:
            fits = min(budget, int(left / self.latency.seconds))
        self.cut = self.cut or fits < budget
        return fits


class TimedClient:
    """The poll's client, timing every call into the pace's latency (failed calls too: they cost as much)."""

    def __init__(self, client: ApiClient, pace: Pace) -> None:
        self.client = client
        self.pace = pace

    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        started = self.pace.clock()
        try:
            return self.client.call(action, params)
        finally:
            self.pace.latency.add(self.pace.clock() - started)
