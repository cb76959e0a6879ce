"""The state store: what each installation's poller saved, read once at start, written once per poll.

One SQLite connection, shared by the pollers behind a mutex; every write is one
transaction, so a crash at any moment leaves the last committed poll. Bad state never
stops the exporter: a bad file is moved aside (`files.move_aside`), a place that cannot
be written (read-only, full) leaves the exporter running from memory, retrying at every
poll and counting failures, with one warning per episode.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from exporter.state.files import DB_NAME, DirectoryLock, StateLocked, move_aside, open_database, state_bytes
from exporter.state.saved import Item, SavedCollector, SavedInstallation
from exporter.state.schema import BadStateFile, transaction

log = logging.getLogger(__name__)

# Per (installation, collector): a fingerprint of each item the file holds, to write only what changed. Not the
# items themselves: with the items made when read (saved.ItemView), no copy of a large cache is kept.
WrittenItems = dict[tuple[str, str], dict[int, int]]


class StateStore:
    """The state under one `--storage.path`. `open()` raises StateLocked if another process uses it."""

    def __init__(self, directory: str, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock
        self.write_failures = 0
        self.last_write: float | None = None
        self._lock = DirectoryLock(directory)
        self._conn: sqlite3.Connection | None = None
        self._mutex = threading.Lock()
        self._written: WrittenItems = {}  # per (installation, collector): fingerprints of the items the file holds
        self._failing = False
        self._closed = False
        self._error: Exception | None = None  # why the place cannot be used, for the warning

    @classmethod
    def open(cls, directory: str, clock: Callable[[], float] = time.time) -> StateStore:
        store = cls(directory, clock)
        with store._mutex:
            if not store._connect(at_start=True):
                store._failed(None)
        return store

    @property
    def path(self) -> str:
        return os.path.join(self.directory, DB_NAME)

    def size(self) -> int:
        return state_bytes(self.directory)

    # -- opening ------------------------------------------------------------------------------------
    def _connect(self, at_start: bool = False) -> bool:
        """Lock the directory and open the file; False (and `_error` set) when the place is unusable.

        At start, another process holding the directory is fatal (StateLocked): two writers must never meet."""
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            if not self._lock.held:
                self._lock.acquire()
            try:
                self._conn = open_database(self.directory)
            except BadStateFile as exc:
                aside = move_aside(self.directory, self.clock())
                log.warning("state file %s is %s: moved aside to %s; starting clean (the first polls re-read "
                            "what the state would have saved)", self.path, exc, os.path.basename(aside))
                self._conn = open_database(self.directory)
        except StateLocked as exc:
            if at_start:
                raise
            self._error = exc
            return False
        except (OSError, sqlite3.DatabaseError, BadStateFile) as exc:
            self._error = exc
            return False
        self._written = {}
        return True

    def _failed(self, exc: Exception | None) -> None:
        self.write_failures += 1
        error = exc or self._error
        if self._failing:
            log.debug("state: write failed again: %s", error)
            return
        self._failing = True
        log.warning("cannot write state to %s: %s; running from memory (a restart now would be a cold start); "
                    "retrying at every poll, whmcs_exporter_state_write_failures_total counts the failures",
                    self.path, error)

    # -- reading ------------------------------------------------------------------------------------
    def load(self, key: str) -> SavedInstallation | None:
        """What the installation saved last, or None (nothing saved, or unreadable: it starts clean)."""
        with self._mutex:
            if self._conn is None:
                return None
            try:
                return self._load(self._conn, key)
            except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
                self._written = {k: v for k, v in self._written.items() if k[0] != key}
                log.warning("state: saved state of one installation is unreadable (%s); it starts clean", exc)
                return None

    def _load(self, conn: sqlite3.Connection, key: str) -> SavedInstallation | None:
        row = conn.execute("SELECT id, last_success, backoff_reason, backoff_until, backoff_fingerprint "
                           "FROM installation WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        collectors = {}
        for cid, name, scalars in conn.execute("SELECT id, name, scalars FROM collector WHERE installation = ?",
                                               (row[0],)).fetchall():
            items = {ident: tuple(json.loads(data))
                     for ident, data in conn.execute("SELECT id, data FROM item WHERE collector = ?", (cid,))}
            collectors[name] = SavedCollector(scalars=json.loads(scalars), items=items)
            self._written[(key, name)] = fingerprints(items)
        return SavedInstallation(last_success=row[1], backoff_reason=row[2], backoff_until=row[3],
                                 backoff_fingerprint=row[4], collectors=collectors)

    # -- writing ------------------------------------------------------------------------------------
    def save(self, key: str, saved: SavedInstallation) -> bool:
        """Write one installation's state in one transaction; False (counted, logged once) if it failed."""
        with self._mutex:
            if self._closed:
                return False
            if self._conn is None and not self._connect():
                self._failed(None)
                return False
            assert self._conn is not None
            try:
                with transaction(self._conn):
                    written = self._write(self._conn, key, saved)
            except sqlite3.DatabaseError as exc:
                self._failed(exc)
                return False
            self._written = {k: v for k, v in self._written.items() if k[0] != key}
            self._written.update(written)
            self.last_write = self.clock()
            if self._failing:
                self._failing = False
                log.info("state: writing to %s works again", self.path)
            return True

    def _write(self, conn: sqlite3.Connection, key: str, saved: SavedInstallation) -> WrittenItems:
        conn.execute(
            "INSERT INTO installation (key, last_success, backoff_reason, backoff_until, backoff_fingerprint, "
            "written) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET last_success = "
            "excluded.last_success, backoff_reason = excluded.backoff_reason, backoff_until = "
            "excluded.backoff_until, backoff_fingerprint = excluded.backoff_fingerprint, written = excluded.written",
            (key, saved.last_success, saved.backoff_reason, saved.backoff_until, saved.backoff_fingerprint,
             self.clock()))
        inst_id = conn.execute("SELECT id FROM installation WHERE key = ?", (key,)).fetchone()[0]
        conn.execute(f"DELETE FROM collector WHERE installation = ? AND name NOT IN "
                     f"({','.join('?' * len(saved.collectors))})", (inst_id, *saved.collectors))
        written: WrittenItems = {}
        for name, collector in saved.collectors.items():
            conn.execute("INSERT INTO collector (installation, name, scalars) VALUES (?, ?, ?) ON CONFLICT "
                         "(installation, name) DO UPDATE SET scalars = excluded.scalars",
                         (inst_id, name, json.dumps(dict(collector.scalars))))
            cid = conn.execute("SELECT id FROM collector WHERE installation = ? AND name = ?",
                               (inst_id, name)).fetchone()[0]
            written[(key, name)] = self._write_items(conn, cid, self._written.get((key, name)), collector.items)
        return written

    @staticmethod
    def _write_items(conn: sqlite3.Connection, cid: int, before: Mapping[int, int] | None,
                     items: Mapping[int, Item]) -> dict[int, int]:
        """Only what changed since the last commit: a steady poll rewrites a handful of rows. Returns the
        fingerprints of what the file now holds."""
        if before is None:
            conn.execute("DELETE FROM item WHERE collector = ?", (cid,))
            before = {}
        now = fingerprints(items)
        conn.executemany("DELETE FROM item WHERE collector = ? AND id = ?",
                         ((cid, ident) for ident in before if ident not in now))
        conn.executemany("INSERT OR REPLACE INTO item (collector, id, data) VALUES (?, ?, ?)",
                         ((cid, ident, json.dumps(items[ident])) for ident, mark in now.items()
                          if before.get(ident) != mark))
        return now

    def keep_only(self, keys: Iterable[str]) -> None:
        """Drop the state of installations no longer configured."""
        wanted = set(keys)
        with self._mutex:
            if self._conn is None:
                return
            try:
                with transaction(self._conn):
                    stored = [k for (k,) in self._conn.execute("SELECT key FROM installation")]
                    gone = [k for k in stored if k not in wanted]
                    self._conn.executemany("DELETE FROM installation WHERE key = ?", ((k,) for k in gone))
            except sqlite3.DatabaseError as exc:
                self._failed(exc)
                return
            if gone:
                log.info("state: dropped the saved state of %d installation(s) no longer configured", len(gone))

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._lock.release()


def fingerprints(items: Mapping[int, Item]) -> dict[int, int]:
    """Item id -> a 64-bit hash of the item (a changed item keeping its hash, ~2**-64 per change, would keep
    its old value in the file). Items read back from the file hold lists where the collector's hold tuples:
    those hash differently and are rewritten once, which is harmless."""
    return {ident: _fingerprint(item) for ident, item in items.items()}


def _fingerprint(item: Item) -> int:
    try:
        return hash(item)
    except TypeError:  # a list inside (read back from JSON, or a collector's own)
        return hash(json.dumps(item))
