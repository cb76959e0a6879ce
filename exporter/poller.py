"""Polling one installation: run its collectors on schedule, publish a snapshot, respect back-offs.

One `InstallationPoller` per installation, each in its own thread, so one
installation's outage or slowness never delays another's. A poll runs the
enabled collectors in order; a failure that concerns one action (permission,
unsupported, odd answer) fails that collector only, a failure that concerns
WHMCS itself (auth, HTTP, timeout, connection) ends the poll. Scrapes never
trigger calls: they read the last published snapshot.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType

from exporter.backoff import jitter_for, next_poll_time, pause_after
from exporter.client import CallStats, WhmcsClient
from exporter.collectors.base import Collector, PollContext
from exporter.collectors.pacing import CallLatency, Pace, TimedClient
from exporter.collectors.registry import CAN_WAIT, build_collectors
from exporter.config import InstallationConfig, credentials_digest
from exporter.errors import ShapeError, WhmcsError, scrub_secrets
from exporter.poll_log import PollLog, human
from exporter.snapshot import CollectorState, InstallationSnapshot, SnapshotStore
from exporter.state.resume import restore_collectors, resumed_snapshot, saved_installation
from exporter.state.saved import SavedInstallation, installation_key
from exporter.state.store import StateStore

log = logging.getLogger(__name__)

# WHMCS bans an IP after 3 failed logins within this many seconds.
BAN_WINDOW = 1800.0


def credential_fingerprint(client: WhmcsClient) -> str | None:
    """A digest of the current credentials, to notice a rotated secret without keeping it around."""
    try:
        creds = client.credentials()
    except OSError:
        return None
    return credentials_digest(creds)


class InstallationPoller:
    def __init__(self, installation: InstallationConfig, store: SnapshotStore, *,
                 client: WhmcsClient | None = None, collectors: list[Collector] | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 state: StateStore | None = None) -> None:
        self.installation = installation
        self.store = store
        self.stats = client.stats if client else CallStats()
        self.client = client or WhmcsClient(installation, stats=self.stats)
        self.collectors = collectors if collectors is not None else build_collectors(installation)
        self.clock = clock
        self.rng = rng or random.Random()
        self.snapshot = InstallationSnapshot(name=installation.name, max_age=installation.max_age)
        self.latency = CallLatency()  # seconds per API call, carried from poll to poll to size deferrable work
        self._overload_streak = 0
        self._auth_fingerprint: str | None = None
        self.log = PollLog(installation)
        if installation.auth_backoff <= BAN_WINDOW / 2:
            log.warning("whmcs=%s: auth_backoff %s allows 3 failed logins within 30 minutes: WHMCS would ban this "
                        "host's IP on wrong credentials; use more than 15 minutes", installation.name,
                        human(installation.auth_backoff))
        self.state = state
        self._state_key = installation_key(installation)
        if state is not None:
            self._restore(state.load(self._state_key))
        store.put(self.snapshot)

    # -- one poll -----------------------------------------------------------------------------------
    def poll_once(self) -> InstallationSnapshot:
        """Poll now (unless paused) and publish the result. Returns the published snapshot."""
        snap = self.snapshot
        now = self.clock()
        if snap.backoff_until is not None and now < snap.backoff_until and not self._credentials_changed():
            return snap
        if snap.backoff_reason == "auth" and snap.backoff_until is not None and now < snap.backoff_until:
            log.info("whmcs=%s: credentials changed, trying them before the auth back-off ends", snap.name)

        started = time.monotonic()
        calls_before = sum(self.stats.totals()[0].values())
        states, fatal = self._run_collectors(now)
        duration = time.monotonic() - started
        up = fatal is None and any(state.success for state in states.values())
        error = str(fatal) if fatal else None
        if not up and fatal is None:
            error = "every collector failed: " + "; ".join(s.error or "" for s in states.values() if not s.success)
        backoff_reason, backoff_until = self._plan_pause(fatal)
        if up and not snap.up and snap.polls:
            log.info("whmcs=%s: poll succeeded again", snap.name)
        if up:
            self.log.recovered()
        requests, failures = self.stats.totals()
        published = self._publish(replace(
            snap,
            collectors=MappingProxyType(states),
            up=up,
            error=error,
            polls=snap.polls + 1,
            poll_failures=snap.poll_failures + (0 if up else 1),
            last_poll_time=now,
            last_success_time=now if up else snap.last_success_time,
            poll_duration=duration,
            poll_api_calls=sum(requests.values()) - calls_before,
            backoff_reason=backoff_reason,
            backoff_until=backoff_until,
            requests=MappingProxyType(requests),
            failures=MappingProxyType(failures),
        ))
        self._save()
        return published

    def _run_collectors(self, now: float) -> tuple[dict[str, CollectorState], WhmcsError | None]:
        """Each enabled collector's new state, and the failure that ended the poll (None if none did).

        After such a failure the remaining collectors are not polled (no call is wasted on a broken WHMCS).
        The collectors that can wait share the time left before the poll's deadline; once it has passed,
        they are deferred to the next poll."""
        pace = Pace(clock=self.clock, deadline=now + self.installation.deadline, latency=self.latency)
        ctx = PollContext(client=TimedClient(self.client, pace), now=now, installation=self.installation, pace=pace)
        states = dict(self.snapshot.collectors)
        fatal: WhmcsError | None = None
        skipped: list[str] = []
        for index, collector in enumerate(self.collectors):
            previous = states.get(collector.name, CollectorState())
            can_wait = collector.name in CAN_WAIT
            if fatal is not None:
                states[collector.name] = replace(previous, success=False, reason=fatal.reason,
                                                 error=f"not polled: {fatal}", duration=0.0, deferred=False)
                continue
            if can_wait and pace.poll_over():
                states[collector.name] = replace(previous, success=previous.success or previous.reason is None,
                                                 deferred=True, duration=0.0)  # not a failure: its part stays
                skipped.append(collector.name)
                continue
            if can_wait:
                pace.share(1 + _wanting_time(self.collectors[index + 1:], now))
            states[collector.name], failure = self._run_one(collector, ctx, previous)
            if can_wait and states[collector.name].success:
                states[collector.name] = replace(states[collector.name], deferred=pace.cut)
            fatal = failure
        self.log.skipped(skipped, pace.clock() - now, self.latency.seconds)
        return states, fatal

    def _run_one(self, collector: Collector, ctx: PollContext,
                 previous: CollectorState) -> tuple[CollectorState, WhmcsError | None]:
        """One collector's new state, and the failure that ends the poll (None when there is none)."""
        started = time.monotonic()
        try:
            part = collector.poll(ctx)
        except WhmcsError as exc:
            if isinstance(exc, ShapeError):
                self.stats.record_failure(exc.action, exc.reason)
                exc = self._scrubbed(exc)  # raised by a collector quoting an answer: the client never saw it
            self.log.collector_failure(collector.name, exc, previous)
            # Only a failure that ends the poll is passed on: any other one's traceback would keep the frames
            # (and the answer they parsed) alive while the next collector reads its own answer.
            return replace(previous, success=False, reason=exc.reason, error=str(exc), deferred=False,
                           duration=time.monotonic() - started), exc if exc.aborts_poll else None
        except Exception as exc:  # a bug in one collector costs that collector, never the poll or the thread
            log.exception("whmcs=%s collector=%s: unexpected error (a bug: please report it)",
                          self.installation.name, collector.name)
            return replace(previous, success=False, reason="internal", error=f"internal error: {type(exc).__name__}",
                           deferred=False, duration=time.monotonic() - started), None
        ctx.parts[collector.name] = part
        arrived = self.clock()
        return CollectorState(part=part, updated=arrived, success=True,
                              sample_ratio=getattr(part, "sample_ratio", None), last_success=arrived,
                              duration=time.monotonic() - started), None

    def _plan_pause(self, fatal: WhmcsError | None) -> tuple[str | None, float | None]:
        """(reason, until) of the pause the poll's failure calls for, or (None, None) to poll on schedule."""
        if fatal is None:
            self._overload_streak = 0
            return None, None
        self._overload_streak = self._overload_streak + 1 if fatal.overloaded else 0
        pause = pause_after(fatal, interval=self.installation.poll_interval,
                            auth_backoff=self.installation.auth_backoff,
                            max_backoff=self.installation.max_backoff,
                            overload_streak=self._overload_streak, rng=self.rng)
        if pause is None:
            self.log.poll_failure(fatal)
            return None, None
        self._auth_fingerprint = credential_fingerprint(self.client) if pause.reason == "auth" else None
        self.log.pause(fatal, pause.seconds)
        # Counted from the failed answer, not from the poll's start: Retry-After means "after this answer".
        return pause.reason, self.clock() + pause.seconds

    # -- state across restarts ----------------------------------------------------------------------------
    def _restore(self, saved: SavedInstallation | None) -> None:
        """Take over what the last run saved: the collectors' state, the last success, a running back-off."""
        if saved is None:
            return
        restore_collectors(self.collectors, saved, self.installation.name)
        now = self.clock()
        self.snapshot = resumed_snapshot(self.snapshot, saved, self.installation, now)
        if self.snapshot.backoff_until is None:
            return
        self._auth_fingerprint = saved.backoff_fingerprint
        if self.snapshot.backoff_reason == "auth" and self._credentials_changed():
            return  # the first poll tries the new credentials (and says so)
        log.warning("whmcs=%s: %s back-off from before the restart runs %s more: no call to WHMCS until then",
                    self.installation.name, saved.backoff_reason, human(self.snapshot.backoff_until - now))

    def _save(self) -> None:
        if self.state is not None:
            self.state.save(self._state_key, saved_installation(self.snapshot, self._auth_fingerprint,
                                                                self.collectors))

    def _publish(self, snapshot: InstallationSnapshot) -> InstallationSnapshot:
        self.snapshot = snapshot
        self.store.put(snapshot)
        return snapshot

    def _scrubbed(self, exc: WhmcsError) -> WhmcsError:
        """A collector's error quotes field values; an answer echoing the request must not put a secret in the log."""
        try:
            secrets = self.client.secret_values(self.client.credentials())
        except (OSError, AttributeError):  # a secret file went missing; a test double without credentials
            return exc
        return scrub_secrets(exc, secrets)

    def _credentials_changed(self) -> bool:
        if self.snapshot.backoff_reason != "auth":
            return False
        current = credential_fingerprint(self.client)
        return current is not None and current != self._auth_fingerprint

    # -- the thread ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event, first_poll_delay: float = 0.0) -> None:
        interval = self.installation.poll_interval
        if first_poll_delay > 0:
            self.snapshot = replace(self.snapshot, next_poll_time=self.clock() + first_poll_delay)
            self.store.put(self.snapshot)
            stop.wait(first_poll_delay)
        while not stop.is_set():
            started = self.clock()
            try:
                snap = self.poll_once()
            except Exception as exc:  # a bug must not kill the poller thread; it is logged and the next poll runs
                log.exception("whmcs=%s: unexpected error during poll", self.installation.name)
                # Publish the failure: a frozen "up" snapshot would hide it, and /readyz needs a completed poll.
                snap = self.snapshot = replace(
                    self.snapshot, up=False, error=f"internal error: {type(exc).__name__}",
                    polls=self.snapshot.polls + 1, poll_failures=self.snapshot.poll_failures + 1,
                    last_poll_time=started)
            finished = self.clock()
            due = next_poll_time(started, finished, interval, jitter_for(interval, self.rng))
            # During an auth pause the thread still wakes on schedule (to notice a changed secret file), but
            # the next real poll is the pause's end; during a rate-limit pause it simply sleeps until then.
            planned = due
            if snap.backoff_until is not None and snap.backoff_until > due:
                planned = snap.backoff_until
                if snap.backoff_reason != "auth":
                    due = snap.backoff_until
            if finished - started > interval:
                log.warning("whmcs=%s: poll took %.1fs, longer than poll_interval %.0fs; next poll in %.0fs",
                            self.installation.name, finished - started, interval, due - finished)
            self.snapshot = replace(self.snapshot, next_poll_time=planned)
            self.store.put(self.snapshot)
            stop.wait(max(0.0, due - self.clock()))


def first_poll_delays(intervals: list[float]) -> list[float]:
    """Seconds each poller waits before its first poll: the i-th of n at i/n of its interval.

    Started together, many installations would all make their first, most expensive polls (the first
    response collector's catch-up) in the same second, and every scrape would wait on their parsing;
    spread over the first interval, the exporter's load is even from the start. One installation polls
    at once."""
    n = len(intervals)
    return [interval * i / n for i, interval in enumerate(intervals)]


def _wanting_time(collectors: list[Collector], now: float) -> int:
    """How many of `collectors` can wait and want a share of the poll's time: one with nothing pending
    (`wants_share(now)` False, e.g. flow with an empty queue) leaves its share to the ones before it."""
    return sum(1 for c in collectors if c.name in CAN_WAIT and getattr(c, "wants_share", lambda at: True)(now))


def start_pollers(pollers: list[InstallationPoller], stop: threading.Event) -> list[threading.Thread]:
    threads = []
    delays = first_poll_delays([p.installation.poll_interval for p in pollers])
    for poller, delay in zip(pollers, delays):
        thread = threading.Thread(target=poller.run, args=(stop, delay), name=f"poll-{poller.installation.name}",
                                  daemon=True)
        thread.start()
        threads.append(thread)
    return threads
