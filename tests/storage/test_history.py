"""Maintenance: retention tiers, bounded incremental passes, exact 1-hour rollups, the disk budget."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.chunks import INDEX_COLUMNS, LIVE, chunks, seal_live, union
from storage.connection import connect
from storage.history import HistoryMaintainer, PassReport, RetentionPolicy
from storage.schema import migrate
from storage.sqlite import SqliteStore
from tests.storage.process_io import bytes_written, requires_io_counters

DAY = 86400.0
NOW = 1_800_000_000.0  # a fake clock: every pass gets it explicitly


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(tmp_path / "h.db")
    migrate(conn)
    yield conn
    conn.close()


def insert(conn: sqlite3.Connection, rows: list[tuple[str, str, float, float]]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


def raw(conn: sqlite3.Connection) -> list[tuple[int, float, float]]:
    """(rowid, ts, value) of every raw reading in every chunk, in arrival order (no sentinels)."""
    tables = [chunk.name for chunk in chunks(conn)]
    sql = union(tables, "rowid AS rid, ts, value", "device_id <> ''")
    return conn.execute(f"SELECT * FROM ({sql}) ORDER BY rid").fetchall()


def run_pass(history: HistoryMaintainer, conn: sqlite3.Connection, now: float = NOW) -> PassReport:
    report = history.apply(conn, history.plan(conn, now))
    assert report is not None
    return report


def fleet(start: float, minutes: int, devices: int = 20) -> list[tuple[str, str, float, float]]:
    """Two metrics per device, one sample every 15 s, in arrival order."""
    return [
        (f"d{d:03d}", metric, start + second, float(d + second % 7))
        for second in range(0, minutes * 60, 15)
        for d in range(devices)
        for metric in ("temperature_c", "humidity_pct")
    ]


def index_columns(conn: sqlite3.Connection, table: str) -> list[list[str]]:
    """The key columns of each index on `table`."""
    names = [
        name for (name,) in conn.execute("SELECT name FROM pragma_index_list(?) ORDER BY name", (table,))
    ]
    return [
        [column for (column,) in conn.execute("SELECT name FROM pragma_index_info(?)", (n,))] for n in names
    ]


def test_a_fresh_databases_live_table_is_indexed_as_the_ones_a_seal_creates(db: sqlite3.Connection) -> None:
    # The first chunk is measured and read like every later one: same index, covering.
    first = index_columns(db, LIVE)
    insert(db, [("t1", "temperature_c", NOW, 20.0)])
    db.execute("BEGIN")
    sealed = seal_live(db)
    db.execute("COMMIT")
    assert sealed is not None
    assert first == index_columns(db, LIVE) == index_columns(db, sealed)
    assert first == [[column.strip() for column in INDEX_COLUMNS.split(",")]]


def test_each_tier_keeps_its_own_retention(db: sqlite3.Connection, tmp_path: Path) -> None:
    history = HistoryMaintainer(
        tmp_path / "h.db", RetentionPolicy(raw_days=1, rollup_1m_days=3, rollup_1h_days=10)
    )
    ages_days = [12, 8, 5, 2, 0.5]
    insert(db, [("t", "m", NOW - age * DAY, age) for age in ages_days])
    run_pass(history, db)
    run_pass(history, db)  # the sweep sees the rollups the first pass wrote
    kept = [ts for _, ts, _ in raw(db)]
    minutes = [m * 60 for (m,) in db.execute("SELECT minute FROM rollups_1m ORDER BY minute")]
    hours = [h * 3600 for (h,) in db.execute("SELECT hour FROM rollups_1h ORDER BY hour")]
    assert kept == [NOW - 0.5 * DAY]
    assert [round((NOW - m) / DAY) for m in minutes] == [2, 0]  # 0.5 rounds to 0
    assert [round((NOW - h) / DAY) for h in hours] == [8, 5, 2, 0]


def test_retention_never_deletes_what_is_not_rolled_up(db: sqlite3.Connection, tmp_path: Path) -> None:
    history = HistoryMaintainer(tmp_path / "h.db", RetentionPolicy(raw_days=1))
    insert(db, [("t", "m", NOW - 5 * DAY, 1.0)])
    plan = history.plan(db, NOW)
    insert(db, [("t", "m", NOW - 5 * DAY + 1, 2.0)])  # arrives after the plan was made
    history.apply(db, plan)
    assert len(raw(db)) == 2  # the second is not rolled up; the first is the row at the cursor
    run_pass(history, db)
    assert raw(db) == []  # both rolled up and past retention: their chunk is dropped
    [(n,)] = db.execute("SELECT n FROM rollups_1m").fetchall()
    assert n == 2


def test_a_chunk_goes_whole_only_once_its_newest_reading_is_past_retention(
    db: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.history.ROW_DELETE_MAX_ROWS", 0)  # even small chunks go only whole
    history = HistoryMaintainer(tmp_path / "h.db", RetentionPolicy(raw_days=1))
    insert(db, [("t", "m", NOW - 5 * DAY, 1.0), ("t", "m", NOW - 4 * DAY, 2.0)])
    plan = history.plan(db, NOW)
    insert(db, [("t", "m", NOW - 60, 3.0)])  # young, lands in the chunk the pass seals
    history.apply(db, plan)  # the first row goes from the live table; the pass then seals it
    assert [value for _, _, value in raw(db)] == [2.0, 3.0]
    assert [name for (name,) in db.execute("SELECT name FROM reading_chunks ORDER BY first_rowid")] == [
        "readings_000000000000",
        "readings",
    ]
    run_pass(history, db)  # folds the young row: the chunk is not all past retention
    assert [value for _, _, value in raw(db)] == [2.0, 3.0]
    run_pass(history, db, now=NOW + DAY)
    assert raw(db) == []
    assert db.execute("SELECT SUM(n) FROM rollups_1m").fetchone()[0] == 3


def test_a_stale_plan_is_not_applied(db: sqlite3.Connection, tmp_path: Path) -> None:
    history = HistoryMaintainer(tmp_path / "h.db", RetentionPolicy())
    insert(db, fleet(NOW - 600, 5, devices=2))
    first, second = history.plan(db, NOW), history.plan(db, NOW)
    assert history.apply(db, first) is not None
    assert history.apply(db, second) is None  # the same rows folded twice would double every n
    assert db.execute("SELECT SUM(n) FROM rollups_1m").fetchone()[0] == 2 * 2 * 20


def test_a_pass_retires_only_after_its_own_fold(db: sqlite3.Connection, tmp_path: Path) -> None:
    """The store commits a pass's fold and its retention apart (an acknowledge may go between):
    retention must never run for rows its fold did not commit."""
    history = HistoryMaintainer(tmp_path / "h.db", RetentionPolicy(raw_days=1))
    insert(db, fleet(NOW - 2 * DAY, 5, devices=2))
    plan = history.plan(db, NOW)
    assert plan.raw_delete is not None or plan.raw_drops
    assert history.retire(db, plan) is None  # its fold has not run: nothing may be deleted
    assert len(raw(db)) == 2 * 2 * 20
    assert history.fold(db, plan)
    report = history.retire(db, plan)
    assert report is not None and report.raw_deleted > 0
    assert len(raw(db)) == 2 * 2 * 20 - report.raw_deleted
    assert db.execute("SELECT SUM(n) FROM rollups_1m").fetchone()[0] == 2 * 2 * 20


def vm_steps(conn: sqlite3.Connection, work: object) -> int:
    """SQLite virtual-machine steps `work` took: a measure of rows touched that no clock skews."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 100)
    try:
        assert callable(work)
        work()
    finally:
        conn.set_progress_handler(None, 0)
    return steps * 100


def pass_steps(path: Path, history_minutes: int) -> int:
    """VM steps of planning and applying a pass over 400 new rows, after `history_minutes` of fleet."""
    conn = connect(path)
    migrate(conn)
    history = HistoryMaintainer(path, RetentionPolicy(raw_days=1))
    start = NOW - 0.5 * DAY
    insert(conn, fleet(start, history_minutes))  # young: retention deletes none of it
    run_pass(history, conn)
    cursor_before = int(conn.execute("SELECT value FROM meta WHERE key = 'rollup_rowid'").fetchone()[0])
    insert(conn, fleet(start + history_minutes * 60, 5))
    plan = history.plan(conn, NOW)
    assert plan.upto - plan.done == 5 * 4 * 20 * 2 and plan.done == cursor_before
    steps = vm_steps(conn, lambda: (history.plan(conn, NOW), history.apply(conn, plan)))
    assert int(conn.execute("SELECT value FROM meta WHERE key = 'rollup_rowid'").fetchone()[0]) == plan.upto
    conn.close()
    return steps


def test_a_pass_works_on_what_arrived_not_on_history(tmp_path: Path) -> None:
    """The same 400 new rows cost the same with 10x the history; a scan would cost 10x."""
    small = pass_steps(tmp_path / "small.db", 60)
    large = pass_steps(tmp_path / "large.db", 600)
    assert large < 1.5 * small, (large, small)


def test_a_pass_leaves_what_is_beyond_its_bound_for_the_next(
    db: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.history.ROLLUP_ROWS_PER_PASS", 1000)
    monkeypatch.setattr("storage.history.RAW_DELETE_ROWS_PER_PASS", 700)
    monkeypatch.setattr("storage.history.DROP_MAX_ROWS", 5000)  # too big to drop: row by row
    history = HistoryMaintainer(tmp_path / "h.db", RetentionPolicy(raw_days=1))
    insert(db, fleet(NOW - 3 * DAY, 63))  # 10,080 rows, all past raw retention
    reports = [run_pass(history, db) for _ in range(20)]
    assert [r.rolled_up for r in reports[:11]] == [1000] * 10 + [80]
    assert [r.raw_deleted for r in reports[:10]] == [700] * 10  # row by row while too big to drop...
    assert reports[10].raw_deleted == 10_080 - 7000  # ...then whole, once small enough
    assert reports[0].more_to_do and not reports[-1].more_to_do
    assert raw(db) == []  # a sealed chunk keeps no row at the cursor: the live table's sentinel does
    assert db.execute("SELECT SUM(n) FROM rollups_1m").fetchone()[0] == 10_080


def test_rollup_retention_sweeps_a_bounded_number_of_series_per_pass(
    db: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.history.SERIES_PER_PASS", 3)
    history = HistoryMaintainer(tmp_path / "h.db", RetentionPolicy(rollup_1m_days=1))
    old = [(f"d{d}", "m", NOW - 2 * DAY, 1.0) for d in range(7)]
    young = [(f"d{d}", "m", NOW - 60, 1.0) for d in range(7)]
    insert(db, old + young)
    run_pass(history, db)
    deleted = [run_pass(history, db).rollups_deleted for _ in range(4)]
    assert deleted == [3, 3, 1, 0]  # three series, three more, the last one, then a new round
    assert db.execute("SELECT COUNT(*) FROM rollups_1m").fetchone()[0] == 7


def brute_force(
    rows: list[tuple[str, str, float, float]], size: int
) -> dict[tuple[str, str, int], tuple[float, ...]]:
    """min, max, avg, last, n per series and bucket, from the raw rows (last: latest ts, then arrival)."""
    groups: dict[tuple[str, str, int], list[tuple[float, int, float]]] = {}
    for order, (device, metric, ts, value) in enumerate(rows):
        groups.setdefault((device, metric, int(ts // size)), []).append((ts, order, value))
    return {
        key: (
            min(v for _, _, v in group),
            max(v for _, _, v in group),
            sum(v for _, _, v in group) / len(group),
            max(group)[2],
            len(group),
        )
        for key, group in groups.items()
    }


def test_hour_rollups_equal_an_exact_recomputation(db: sqlite3.Connection, tmp_path: Path) -> None:
    history = HistoryMaintainer(tmp_path / "h.db", RetentionPolicy())
    rng = random.Random(7)
    rows = [
        (f"d{rng.randrange(4)}", rng.choice(("a", "b")), NOW - rng.uniform(0, 5 * 3600), rng.uniform(-50, 50))
        for _ in range(3000)
    ]
    for part in range(0, len(rows), 700):  # passes split hours and minutes; samples arrive out of order
        insert(db, rows[part : part + 700])
        run_pass(history, db)
    for table, key, size in (("rollups_1h", "hour", 3600), ("rollups_1m", "minute", 60)):
        stored = {
            (device, metric, bucket): (low, high, avg, last, n)
            for device, metric, bucket, low, high, avg, last, n in db.execute(
                f"SELECT device_id, metric, {key}, min, max, avg, last, n FROM {table}"
            )
        }
        expected = brute_force(rows, size)
        assert stored.keys() == expected.keys()
        for bucket, values in expected.items():
            assert stored[bucket] == pytest.approx(values), (table, bucket)


def test_the_disk_budget_deletes_oldest_raw_first_and_is_reported(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", retention_days=30)
    store.open()
    start = NOW - 3 * 3600
    rows = fleet(start, 120, devices=50)  # 48,000 rows over two hours, young
    store.add_readings(rows[:24_000])
    store.maintain(start + 3600)
    store.add_readings(rows[24_000:])
    store.maintain(start + 7200)
    store.flush()
    usage = store.disk_usage(start + 7200)
    assert usage.budget_bytes is None and usage.raw_rows == 48_000
    assert usage.readings_per_s == pytest.approx(24_000 / 3600)
    assert usage.raw_days_held == pytest.approx(2 / 24)
    assert usage.bytes_used <= usage.file_bytes and usage.capacity_bytes > usage.bytes_used
    assert usage.days_at_current_rate == pytest.approx(
        usage.capacity_bytes / (24_000 / 3600 * DAY * usage.bytes_used / 48_000)
    )
    store.close()

    budget_mb = usage.bytes_used * 0.7 / 1e6
    store = SqliteStore(tmp_path / "s.db", retention_days=30, disk_budget_mb=budget_mb)
    store.open()
    for n in range(1, 11):  # ten passes, a minute apart, a minute of readings each
        store.add_readings([(f"d{d:03d}", "temperature_c", start + 7200 + 60 * n, 1.0) for d in range(400)])
        store.maintain(start + 7200 + 60 * n)
    store.flush()
    report = store.history.last_pass
    assert report is not None and report.raw_deleted == 0 and not report.over_budget
    usage = store.disk_usage(start + 7800)
    assert usage.readings_per_s == pytest.approx(400 / 60)
    assert usage.budget_bytes == int(budget_mb * 1e6) and usage.bytes_used <= usage.budget_bytes
    with store._reading() as conn:
        first_ts = raw(conn)[0][1]
    assert first_ts > rows[0][2] and usage.raw_rows < 48_000  # the oldest went first...
    assert store.readings("d000", "temperature_c", start, start + 60, 60)[0]["ts"] == start  # ...as rollups
    assert usage.days_at_current_rate == pytest.approx(
        usage.capacity_bytes / (usage.readings_per_s * DAY * usage.bytes_used / usage.raw_rows)
    )
    store.close()


@requires_io_counters
def test_dropping_a_chunk_on_the_writer_writes_no_zeroed_pages(tmp_path: Path) -> None:
    """Before: SQLite built with SECURE_DELETE (Debian's) zeroed and wrote every page a DROP freed:
    100 MB of WAL and ~210 ms of writer time for a 1M-row chunk in bench/history.py."""
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    store.transact(
        lambda conn: conn.execute(
            "CREATE TABLE readings_000000000001 AS WITH RECURSIVE n(i) AS "
            "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i, randomblob(300) AS b FROM n"
        )
    )
    with sqlite3.connect(store.path) as conn:  # its ~6 MB copied back before the drop is measured
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    before = bytes_written()
    store.transact(lambda conn: conn.execute("DROP TABLE readings_000000000001"))
    assert bytes_written() - before < 1_000_000
    store.close()
