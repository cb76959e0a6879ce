"""The state store on its own: round trips, diff writes, migrations, bad files moved aside, the lock,
and a place that cannot be written. The real process across restarts: tests/test_state_restarts.py."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat

import pytest

from exporter.state.files import DB_NAME, StateLocked
from exporter.state.saved import ItemView, SavedCollector, SavedInstallation
from exporter.state.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from exporter.state.store import StateStore


def saved(items: dict[int, tuple], cursor: int = 0, **fields) -> SavedInstallation:
    return SavedInstallation(collectors={"c": SavedCollector(scalars={"cursor": cursor}, items=items)}, **fields)


def rows(directory) -> int:
    with sqlite3.connect(os.path.join(directory, DB_NAME)) as conn:
        return conn.execute("SELECT count(*) FROM item").fetchone()[0]


def test_round_trip_and_file_mode(tmp_path):
    store = StateStore.open(str(tmp_path))
    items = {7: (1.5, 2.0, None, 3.25, False, 1), 9: (4.0, 4.0, 4.0, None, True, 2)}
    assert store.save("k", saved(items, cursor=3, last_success=10.0, backoff_reason="auth", backoff_until=99.0,
                                 backoff_fingerprint="f" * 64))
    store.close()
    again = StateStore.open(str(tmp_path))
    loaded = again.load("k")
    assert loaded == saved(items, cursor=3, last_success=10.0, backoff_reason="auth", backoff_until=99.0,
                           backoff_fingerprint="f" * 64)
    assert again.load("other") is None
    assert stat.S_IMODE(os.stat(again.path).st_mode) == 0o600
    nested = tmp_path / "new" / "dir"
    StateStore.open(str(nested)).close()
    assert stat.S_IMODE(os.stat(nested).st_mode) == 0o700


def test_only_changed_items_are_rewritten(tmp_path, monkeypatch):
    store = StateStore.open(str(tmp_path))
    items = {i: (float(i), float(i), None, None, False, 1) for i in range(1000)}
    store.save("k", saved(items))
    assert rows(tmp_path) == 1000
    written: list[int] = []
    trace = store._conn.set_trace_callback  # every statement SQLite runs, to count row writes
    item_writes = ("INSERT OR REPLACE INTO item", "DELETE FROM item")
    trace(lambda sql: written.append(1) if sql.startswith(item_writes) else None)
    changed = dict(items)
    changed[5] = (5.0, 6.0, 6.0, 6.0, False, 1)
    del changed[6]
    changed[2000] = (9.0, 9.0, None, None, False, 1)
    store.save("k", saved(changed))
    trace(None)
    assert len(written) == 3  # one update, one delete, one insert: not 1000 rows
    store.close()
    assert StateStore.open(str(tmp_path)).load("k").collectors["c"].items == changed


def test_items_made_when_read_are_diffed_too_and_a_reopened_file_rewrites_nothing(tmp_path):
    tracked = {i: [float(i), None, f"dept {i % 3}"] for i in range(500)}  # a collector's live, mutable records
    view = ItemView(tracked, lambda t: tuple(t))
    store = StateStore.open(str(tmp_path))
    store.save("k", saved(view))
    store.close()
    again = StateStore.open(str(tmp_path))
    assert again.load("k").collectors["c"].items == {i: tuple(t) for i, t in tracked.items()}
    written: list[str] = []
    again._conn.set_trace_callback(lambda sql: written.append(sql) if sql.startswith("INSERT OR REPLACE INTO item")
                                   else None)
    again.save("k", saved(view))  # nothing changed since the file was read
    assert written == []
    tracked[7][1] = 70.0
    again.save("k", saved(view))
    assert len(written) == 1
    again._conn.set_trace_callback(None)
    again.close()
    assert StateStore.open(str(tmp_path)).load("k").collectors["c"].items[7] == (7.0, 70.0, "dept 1")


def test_installations_no_longer_configured_are_dropped(tmp_path):
    store = StateStore.open(str(tmp_path))
    store.save("a", saved({1: (1.0,)}))
    store.save("b", saved({2: (2.0,)}))
    store.keep_only(["b"])
    assert store.load("a") is None and store.load("b") is not None
    assert rows(tmp_path) == 1  # its collectors' items went with it


def test_second_process_on_the_same_path_is_refused(tmp_path):
    first = StateStore.open(str(tmp_path))
    # flock belongs to the open file: a second open in this process conflicts just as another process would.
    with pytest.raises(StateLocked, match=r"another whmcs-ticket-exporter \(pid \d+\) is using the storage path"):
        StateStore.open(str(tmp_path))
    first.close()
    StateStore.open(str(tmp_path)).close()  # released: the next one may


def write_garbage(path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def make_foreign(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (email TEXT)")


def make_newer(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.execute("CREATE TABLE future (x)")


def truncate_valid(path) -> None:
    StateStore.open(os.path.dirname(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    with open(path, "r+b") as handle:  # keep the header, destroy the pages
        handle.seek(100)
        handle.write(b"\xff" * 3000)


@pytest.mark.parametrize(("damage", "why"), [
    (lambda p: write_garbage(p, b"this is not a database" * 100), "unreadable"),
    (lambda p: write_garbage(p, os.urandom(8192)), "unreadable"),
    (make_foreign, "not a whmcs-ticket-exporter state file"),
    (make_newer, "written by a newer exporter"),
    (truncate_valid, ""),
])
def test_bad_file_is_moved_aside_and_the_exporter_starts_clean(tmp_path, caplog, damage, why):
    path = os.path.join(tmp_path, DB_NAME)
    damage(path)
    with caplog.at_level(logging.WARNING):
        store = StateStore.open(str(tmp_path))
    aside = [n for n in os.listdir(tmp_path) if n.startswith(f"{DB_NAME}.corrupt-")]
    assert len(aside) == 1, os.listdir(tmp_path)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "moved aside to " + aside[0] in lines[0] and why in lines[0], lines
    assert store.load("k") is None
    assert store.save("k", saved({1: (1.0,)})) and store.load("k") is not None
    assert store.write_failures == 0


def test_every_earlier_schema_version_migrates(tmp_path):
    path = os.path.join(tmp_path, DB_NAME)
    for version in range(SCHEMA_VERSION):  # a file left at each earlier version
        os.makedirs(tmp_path / str(version))
        path = os.path.join(tmp_path, str(version), DB_NAME)
        with sqlite3.connect(path) as conn:
            for step in range(1, version + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            if version:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        store = StateStore.open(os.path.dirname(path))
        assert store.save("k", saved({1: (1.0,)})) and store.load("k") is not None
        store.close()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert not [n for n in os.listdir(os.path.dirname(path)) if ".corrupt-" in n]


def test_full_or_read_only_place_keeps_running_from_memory(tmp_path, caplog):
    store = StateStore.open(str(tmp_path))
    assert store.save("k", saved({1: (1.0,)}))
    last = store.last_write
    store._conn.execute(f"PRAGMA max_page_count = {store._conn.execute('PRAGMA page_count').fetchone()[0]}")
    big = {i: (float(i),) * 6 for i in range(20000)}  # more than the file may grow: SQLITE_FULL, as on a full disk
    with caplog.at_level(logging.WARNING):
        assert not store.save("k", saved(big))
        assert not store.save("k", saved(big))
    assert store.write_failures == 2 and store.last_write == last
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "running from memory" in warnings[0], warnings
    # What is committed stays the last good poll, and writing works again once there is room.
    assert store.load("k").collectors["c"].items == {1: (1.0,)}
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.save("k", saved(big)) and store.load("k").collectors["c"].items == big


# A child that commits poll A, then dies by SIGKILL inside poll B's transaction after `n` statements.
CRASH_MID_WRITE = """
import os, signal, sys
from exporter.state.saved import SavedCollector, SavedInstallation
from exporter.state.store import StateStore
directory, n = sys.argv[1], int(sys.argv[2])
def saved(shift):
    items = {i: (float(i + shift), None, bool(shift), i) for i in range(2000)}
    return SavedInstallation(last_success=float(shift), collectors={"c": SavedCollector({"shift": shift}, items)})
store = StateStore.open(directory)
assert store.save("k", saved(0))
seen = []
def die(sql):
    seen.append(sql)
    if len(seen) >= n if n else sql == "COMMIT":  # n=0: as the commit begins
        os.kill(os.getpid(), signal.SIGKILL)
store._conn.set_trace_callback(die)
store.save("k", saved(1))
"""


@pytest.mark.process
@pytest.mark.parametrize("statements", [1, 2, 5, 100, 1500, 0])
def test_kill_9_in_the_middle_of_a_write_leaves_the_last_committed_poll(tmp_path, statements):
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(tmp_path), str(statements)],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr  # it died inside the transaction, as planned
    loaded = StateStore.open(str(tmp_path)).load("k")
    assert loaded.last_success == 0.0 and loaded.collectors["c"].scalars == {"shift": 0}
    assert loaded.collectors["c"].items == {i: (float(i), None, False, i) for i in range(2000)}
