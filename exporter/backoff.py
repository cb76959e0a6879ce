"""How long to leave WHMCS alone after a failure. Pure functions, tested with fixed random numbers.

Authentication failures pause the installation for `auth_backoff` (default
30 min): WHMCS bans an IP after 3 failed logins in 30 minutes, so at most one
attempt per pause keeps any 30-minute window at two failures or fewer.
Overload answers (429, 503) honour Retry-After, else back off exponentially
with jitter. Everything else is retried at the next regular poll: one failed
call per poll costs WHMCS nothing and lets the exporter recover at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from exporter.errors import WhmcsError

# A Retry-After beyond this is treated as a misconfigured proxy, not an instruction.
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Pause:
    reason: str  # "auth" or "rate_limit": the metric label
    seconds: float


def pause_after(error: WhmcsError, *, interval: float, auth_backoff: float, max_backoff: float,
                overload_streak: int, rng: random.Random | None = None) -> Pause | None:
    """The pause a failure calls for, or None to poll again on schedule.

    `overload_streak` counts consecutive overload answers including this one.
    """
    if error.reason == "auth":
        return Pause("auth", auth_backoff)
    if not error.overloaded:
        return None
    if error.retry_after is not None:
        return Pause("rate_limit", min(max(error.retry_after, 1.0), MAX_RETRY_AFTER))
    ceiling = min(max_backoff, interval * (2 ** max(0, overload_streak - 1)))
    # "Equal jitter": at least half the ceiling, so the pause still grows.
    jitter = (rng or random).uniform(0.5, 1.0)
    return Pause("rate_limit", max(1.0, ceiling * jitter))


def next_poll_time(started: float, finished: float, interval: float, jitter: float) -> float:
    """The next poll's start: one interval after this one started, shifted by `jitter` seconds.

    A poll that overran its interval is not followed by a burst of catch-up
    polls: the next starts one interval after it finished.
    """
    planned = started + interval + jitter
    if planned <= finished:
        return finished + interval
    return planned


def jitter_for(interval: float, rng: random.Random | None = None) -> float:
    """Up to ±2.5% of the interval (at most ±1.5 s), so exporters on many hosts drift apart."""
    spread = min(0.025 * interval, 1.5)
    return (rng or random).uniform(-spread, spread)
