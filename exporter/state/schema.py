"""The state file's layout: versioned with `PRAGMA user_version`, marked with `PRAGMA application_id`.

`MIGRATIONS[n]` brings a file from version n-1 to n; a file of any earlier version is
migrated step by step in one transaction. A file with another application id (someone
else's database) or a newer version (a downgrade) is not ours to change: `BadStateFile`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

APPLICATION_ID = 0x57484D43  # "WHMC"
SCHEMA_VERSION = 1

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE installation (
               id INTEGER PRIMARY KEY,
               key TEXT NOT NULL UNIQUE,
               last_success REAL,
               backoff_reason TEXT,
               backoff_until REAL,
               backoff_fingerprint TEXT,
               written REAL NOT NULL)""",
        """CREATE TABLE collector (
               id INTEGER PRIMARY KEY,
               installation INTEGER NOT NULL REFERENCES installation(id) ON DELETE CASCADE,
               name TEXT NOT NULL,
               scalars TEXT NOT NULL,
               UNIQUE (installation, name))""",
        """CREATE TABLE item (
               collector INTEGER NOT NULL REFERENCES collector(id) ON DELETE CASCADE,
               id INTEGER NOT NULL,
               data TEXT NOT NULL,
               PRIMARY KEY (collector, id)) WITHOUT ROWID""",
    ),
}


class BadStateFile(Exception):
    """The file cannot be used as it is: it is moved aside and the exporter starts clean."""


def prepare(conn: sqlite3.Connection) -> int:
    """Check that the file is ours and sound, migrate it to SCHEMA_VERSION; returns the version found."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BadStateFile(f"unreadable ({exc})") from exc
    if check != "ok":
        raise BadStateFile(f"damaged ({check})")
    if app_id != APPLICATION_ID and (app_id != 0 or tables):
        raise BadStateFile("not a whmcs-ticket-exporter state file")
    if version > SCHEMA_VERSION:
        raise BadStateFile(f"written by a newer exporter (schema {version}, this one knows {SCHEMA_VERSION})")
    if version < SCHEMA_VERSION:
        migrate(conn, version)
    return version


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """All steps in one transaction (the connection is in autocommit mode: DDL is transactional in SQLite)."""
    try:
        with transaction(conn):
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.DatabaseError as exc:
        if is_write_failure(exc):
            raise
        raise BadStateFile(f"cannot be migrated from schema {version} ({exc})") from exc


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk does that)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def is_write_failure(exc: sqlite3.DatabaseError) -> bool:
    """A full disk or a read-only file: the file is fine, the place is not."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
                    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_PERM)
