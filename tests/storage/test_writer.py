"""The one SQLite writer: a unit commits whole or its faulty parts become dead letters; a failing
disk is retried, never dropped; urgent work overtakes bulk; late alert writes never undo newer."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from analytics.alerts import Alert, Severity
from analytics.sessions import DeviceSession, SessionChanges
from storage.sqlite import SqliteStore
from tests.storage.process_io import bytes_written, requires_io_counters


def _open(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    return store


def _count(store: SqliteStore, sql: str) -> int:
    with sqlite3.connect(store.path) as db:
        return int(db.execute(sql).fetchone()[0])


def test_a_write_the_data_makes_fail_is_dead_lettered_and_the_rest_commits(tmp_path: Path) -> None:
    """Before: the batch rolled back, yet the next commit acknowledged it (0 readings, 0 errors)."""
    store = _open(tmp_path)
    session = DeviceSession("d1", status_ts=2**63)  # SQLite cannot bind an integer this large
    with store.unit() as unit:
        store.add_readings([("d1", "temperature_c", 1.0, 20.0)])
        store.save_sessions(SessionChanges({}, [session]))
    unit.future.result(timeout=5)
    assert _count(store, "SELECT COUNT(*) FROM readings") == 1
    assert _count(store, "SELECT COUNT(*) FROM dead_letters WHERE reason = 'store_refused'") == 1
    assert store.write_errors >= 1 and store.writer.stats.refused == 1 and store.healthy
    store.close()


def test_one_bad_row_costs_only_itself(tmp_path: Path) -> None:
    """Before: a NaN from a Modbus device failed NOT NULL, and 6 of 11 readings of other devices were lost."""
    store = _open(tmp_path)
    rows = [(f"d{n}", "voc_ppm", float(n), float(n)) for n in range(11)]
    rows[4] = ("d4", "voc_ppm", 4.0, float("nan"))  # SQLite stores NaN as NULL
    with store.unit() as unit:
        store.add_readings(rows)
    unit.future.result(timeout=5)
    assert _count(store, "SELECT COUNT(*) FROM readings") == 10
    assert _count(store, "SELECT COUNT(*) FROM dead_letters WHERE device_id = 'd4'") == 1
    store.close()


@requires_io_counters
def test_a_batch_of_readings_writes_no_statement_journal(tmp_path: Path) -> None:
    """Before: each 1,024-row insert first copied every index page it touched to a temporary file
    (SQLite's statement journal): 30 MB written here, 2.3 GB per 500k readings in bench/history.py."""
    store = _open(tmp_path)
    fleet = [(f"d{n:04d}", "temperature_c") for n in range(1024)]
    store.add_readings([(device, metric, 0.0, 20.0) for device, metric in fleet])
    store.flush()  # the series' index pages exist before the batch, as in a running store
    before = bytes_written()
    with store.unit() as unit:  # 40 statements of 1,024 rows, one per series, in one transaction
        store.add_readings(
            [(device, metric, float(ts), 20.0) for ts in range(1, 41) for device, metric in fleet]
        )
    unit.future.result(timeout=10)
    # The WAL frames of the transaction are ~2.6 MB; the checkpointer may copy them once more.
    assert bytes_written() - before < 8_000_000
    assert _count(store, "SELECT COUNT(*) FROM readings") == 41 * 1024
    store.close()


def test_a_read_only_database_is_retried_until_it_is_writable_again(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.flush()
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # the writer cannot get the file: every attempt fails
    with store.unit() as unit:
        store.add_readings([("d1", "m", 1.0, 1.0)])
    deadline = time.monotonic() + 15
    while store.healthy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store.healthy and not unit.future.done()
    holder.execute("COMMIT")
    holder.close()
    unit.future.result(timeout=15)
    assert store.healthy
    assert _count(store, "SELECT COUNT(*) FROM readings") == 1
    store.close()


def test_query_only_connection_is_an_environment_fault(tmp_path: Path) -> None:
    """SQLITE_READONLY (a disk remounted read-only) is retried, not dead-lettered."""
    store = _open(tmp_path)
    store.flush()
    release = threading.Event()
    connect = store.writer._connect  # the writer's own connection, made read-only from here

    def read_only_until_released() -> sqlite3.Connection:
        conn = connect()
        conn.execute("PRAGMA query_only = ON")

        def lift() -> None:
            release.wait(20)
            conn.execute("PRAGMA query_only = OFF")

        threading.Thread(target=lift, daemon=True).start()
        return conn

    store.close()
    store = SqliteStore(tmp_path / "s.db")
    store.writer._connect = read_only_until_released
    store.open()
    with store.unit() as unit:
        store.add_readings([("d1", "m", 1.0, 1.0)])
    deadline = time.monotonic() + 10
    while store.healthy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store.healthy and "readonly" in store.writer.stats.last_error
    release.set()
    unit.future.result(timeout=15)
    assert _count(store, "SELECT COUNT(*) FROM readings") == 1
    assert _count(store, "SELECT COUNT(*) FROM dead_letters") == 0
    store.close()


def test_a_full_disk_is_reported_as_full_and_retried_until_it_has_room(tmp_path: Path) -> None:
    """A statement that meets a full disk without a statement journal (the readings insert, any
    single-row one) makes SQLite roll the whole transaction back itself. Before: the writer's own
    ROLLBACK then failed ("no transaction is active"), hid the full disk and logged a traceback a retry."""
    store = _open(tmp_path)
    store.flush()
    room = threading.Event()
    connect = store.writer._connect

    def full_until_room() -> sqlite3.Connection:
        conn = connect()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: a full disk

        def lift() -> None:
            room.wait(20)
            conn.execute("PRAGMA max_page_count = 1000000")

        threading.Thread(target=lift, daemon=True).start()
        return conn

    store.close()
    store = SqliteStore(tmp_path / "s.db")
    store.writer._connect = full_until_room
    store.open()
    rows = [(f"d{n:04d}", "temperature_c", 1.0, 20.0) for n in range(5000)]
    with store.unit() as unit:
        store.add_readings(rows)
    deadline = time.monotonic() + 10
    while store.healthy and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a retry or two
    assert not store.healthy and "full" in store.writer.stats.last_error
    room.set()
    unit.future.result(timeout=15)
    assert store.healthy
    assert _count(store, "SELECT COUNT(*) FROM readings") == 5000
    assert _count(store, "SELECT COUNT(*) FROM dead_letters") == 0
    store.close()


def test_an_alert_written_late_never_overwrites_a_newer_version(tmp_path: Path) -> None:
    store = _open(tmp_path)
    raised = Alert(1, "panic_pressed", "p1", "p1", Severity.CRITICAL, True, 1.0, 1.0, version=1)
    acked = Alert(
        1,
        "panic_pressed",
        "p1",
        "p1",
        Severity.CRITICAL,
        True,
        1.0,
        1.0,
        acknowledged_at=2.0,
        acknowledged_by="op",
        version=2,
    )
    store.save_alert(acked)  # an operator's write committed first (urgent)...
    store.save_alert(raised)  # ...the ingest write of the raise lands after it
    store.flush()
    assert store.alert(1) == acked
    store.close()


def test_urgent_work_commits_ahead_of_a_bulk_backlog(tmp_path: Path) -> None:
    store = _open(tmp_path)
    for batch in range(100):
        store.add_readings([("d", "m", float(batch * 1000 + n), 1.0) for n in range(1000)])
    with store.unit(urgent=True) as unit:
        store.audit(1.0, "op", "alert", "1", "acknowledged", "")
    unit.future.result(timeout=10)
    assert store.backlog_rows > 0  # committed while most readings still wait
    store.flush(timeout_s=60)
    assert _count(store, "SELECT COUNT(*) FROM readings") == 100_000
    store.close()
