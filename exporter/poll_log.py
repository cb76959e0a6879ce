"""What a poll tells the log: one line per new problem with advice, repeated rarely while it lasts.

An installation down for a day must stay visible in the log without a line every poll, and a collector that
keeps failing the same way (an action the installation lacks) must not warn every poll either.
"""

from __future__ import annotations

import logging
import time

from exporter.advice import advice
from exporter.config import InstallationConfig
from exporter.errors import WhmcsError
from exporter.snapshot import CollectorState

log = logging.getLogger("exporter.poller")

# While the same failure lasts, it is logged at warning level this often (seconds), at debug level between.
REPEAT_WARNING = 600.0


def human(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class PollLog:
    """The log lines of one installation's polls, and what it already said."""

    def __init__(self, installation: InstallationConfig) -> None:
        self.installation = installation
        self._last_warning: tuple[str, float] | None = None  # (message, monotonic time) of the last one logged
        self._told_skipped = False

    def recovered(self) -> None:
        self._last_warning = None

    def skipped(self, skipped: list[str], elapsed: float, latency: float | None) -> None:
        """Warn when the deadline starts leaving whole collectors out, once until it stops happening."""
        if skipped and not self._told_skipped:
            log.warning("whmcs=%s: poll_deadline %.1fs reached (after %.1fs) before %s could run: left for later "
                        "polls (their series go absent when stale). WHMCS answers slowly (%.2fs per call): raise "
                        "poll_deadline (up to poll_interval) or poll_interval.", self.installation.name,
                        self.installation.deadline, elapsed, ", ".join(skipped), latency or 0.0)
        self._told_skipped = bool(skipped)

    def collector_failure(self, name: str, exc: WhmcsError, previous: CollectorState) -> None:
        if exc.aborts_poll:
            return  # logged once as the poll's failure, with advice
        # Once per change: the first failure, a new reason or a relapse after success is logged.
        level = logging.WARNING if previous.success or previous.reason != exc.reason else logging.DEBUG
        hint = advice(exc)
        log.log(level, "whmcs=%s collector=%s failed: %s%s", self.installation.name, name, exc,
                f" - {hint}" if hint else "")

    def poll_failure(self, exc: WhmcsError) -> None:
        """Warn when the failure is new, and again every REPEAT_WARNING seconds while it lasts; debug between."""
        text, now = str(exc), time.monotonic()
        repeat = self._last_warning is not None and self._last_warning[0] == text \
            and now - self._last_warning[1] < REPEAT_WARNING
        if not repeat:
            self._last_warning = (text, now)
        hint = advice(exc)
        log.log(logging.DEBUG if repeat else logging.WARNING, "whmcs=%s: poll failed: %s%s",
                self.installation.name, exc, f" - {hint}" if hint else "")

    def pause(self, exc: WhmcsError, seconds: float) -> None:
        hint = advice(exc)
        if exc.reason == "auth":
            log.error("whmcs=%s: authentication failed: %s - %s. No further login attempt for %s (WHMCS bans an "
                      "IP after 3 failed logins in 30 minutes); a changed secret file is tried at once.",
                      self.installation.name, exc, hint, human(seconds))
        else:
            log.warning("whmcs=%s: WHMCS is overloaded: %s; pausing polls for %s", self.installation.name,
                        exc, human(seconds))
