"""The state directory's files: the lock that keeps a second process out, opening the database, and
moving a bad file aside.

The lock is `flock` on `state.lock`: the kernel drops it when the process dies, so a
`kill -9` never leaves a stale lock behind. The database is `state.db` in WAL mode,
created with mode 0600 (SQLite gives its -wal and -shm files the same mode).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import time

from exporter.state.schema import BadStateFile, is_write_failure, prepare

DB_NAME = "state.db"
LOCK_NAME = "state.lock"
SIDE_FILES = ("-wal", "-shm")


class StateLocked(Exception):
    """Another process uses the same storage path."""


class DirectoryLock:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LOCK_NAME)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock. StateLocked if another process holds it; OSError if the file cannot be opened."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS) or not os.path.exists(self.path):
                raise
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)  # a read-only place: still keep others out
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StateLocked(f"another whmcs-ticket-exporter{holder} is using the storage path "
                              f"{os.path.dirname(self.path) or '.'}: give each process its own --storage.path "
                              "(or --storage.path=\"\" to keep state in memory)") from None
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only for the message above

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def open_database(directory: str) -> sqlite3.Connection:
    """Open (or create) the state file, checked and migrated.

    Raises BadStateFile when the file itself is the problem (move it aside), OSError or
    sqlite3.DatabaseError when the place is (read-only, full): keep running from memory."""
    path = os.path.join(directory, DB_NAME)
    if os.path.exists(path):
        try:
            with open(path, "rb") as handle:
                handle.read(100)
        except OSError as exc:
            raise BadStateFile(f"unreadable ({exc.strerror})") from exc
    else:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=2.0)
    try:
        _configure(conn)
        prepare(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection) -> None:
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if is_write_failure(exc):
            raise
        raise BadStateFile(f"unreadable ({exc})") from exc
    if mode != "wal":
        raise sqlite3.OperationalError(f"cannot switch to WAL mode (journal_mode={mode})")
    # FULL: a commit survives a power cut too; one fsync per poll costs nothing at poll intervals.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")


def move_aside(directory: str, now: float | None = None) -> str:
    """Rename the state file (and its WAL) to `<name>.corrupt-<UTC time>`; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    path = os.path.join(directory, DB_NAME)
    target = f"{path}.corrupt-{stamp}"
    os.replace(path, target)
    for suffix in SIDE_FILES:
        side = path + suffix
        if os.path.exists(side):
            if suffix == "-wal":
                os.replace(side, target + suffix)
            else:
                os.unlink(side)  # the shared-memory index is rebuilt from the WAL
    return target


def state_bytes(directory: str) -> int:
    """Size of the state on disk: the database and its WAL."""
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(os.path.join(directory, DB_NAME + suffix))
        except OSError:
            pass
    return total
