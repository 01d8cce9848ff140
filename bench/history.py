"""History benchmark: the store with an empty database and with 50 M readings plus a year of rollups.

For each database, through `SqliteStore` as the gateway uses it (default retention 30 / 90 / 1095
days, 1,000 devices x 2 metrics every 5 s = 400 readings/s):
  1. ingest: 500,000 readings in batches of 1,000 at full speed, timed until committed, then a
     maintenance pass (not timed) as the gateway runs every minute. `--trials` (5) of each store,
     alternated empty, full, full, empty, empty, full, ... so that drift on a shared machine falls
     on both alike, after one untimed warm-up trial of each; every trial is printed, the ratio is of the medians. Each empty trial is a
     new database; the full trials share one copy, each writing the same 1,250 s of fleet time
     (so the oldest chunk still expires during step 2), and the store settles (the WAL copied
     back) before each trial;
  2. steady state, time compressed `--speed` times: 400 readings/s of fleet time, a maintenance
     pass every 10 minutes of fleet time (planned on a thread, as the gateway does), and every
     20 ms a small committed write (an audit row and its after-commit callback: the proxy for an
     operator's acknowledge), timed; the writer time of each pass is what its apply took;
  3. readings queries: a 24 h window of one series, at each step (raw, 60, 300, 3600 s) and age
     (1, 15, 60, 365 days back), median and max of 5.

The full database is built directly in SQLite (recursive CTEs, no journal) and cached under
`--cache` (default /tmp/history-bench); each run works on a copy. Its layout, in arrival order and
in chunks of RAW_CHUNK_ROWS as maintenance seals them: one chunk of the whole fleet at the raw retention
edge (30 days back, expiring during the run), 16 probe series (8 devices) at 5 s through the 30
days, and the whole fleet for the last ~1.1 days: 50 M rows.
1-hour rollups: the whole fleet for a year; 1-minute rollups: the probes for 90 days, the fleet
for its last 1.2 days and a band at the 90-day edge. Queries read a probe series.

Usage: python bench/history.py [--rows 50000000] [--speed 20] [--passes 3] [--trials 5] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from storage.chunks import INDEX_COLUMNS, LIVE, RAW_CHUNK_ROWS, index_name
from storage.history import PassReport
from storage.schema import migrate
from storage.sqlite import SqliteStore

DEVICES = 1000
METRICS = ("temperature_c", "humidity_pct")
INTERVAL_S = 5.0
RATE = DEVICES * len(METRICS) / INTERVAL_S  # readings per second of fleet time
PROBES = 8
PROBE = ("sim-temp-0003", "temperature_c")
DAY = 86400.0
EDGE_BAND_S = 40 * 60  # of 1-minute rollups at their retention edge
EDGE_EXPIRES_AFTER_S = 2000.0  # fleet seconds after the build when the oldest chunk expires
MAINTENANCE_INTERVAL_S = 600.0
ACK_EVERY_S = 0.02
STEPS: tuple[float | None, ...] = (None, 60.0, 300.0, 3600.0)
AGES_DAYS = (1, 15, 60, 365)
TARGET_ACK_P99_MS = 50.0
TARGET_QUERY_MS = 150.0
TARGET_MAINTENANCE_MS_PER_MIN = 50.0
TARGET_INGEST_RATIO = 0.85
SETTLE_S = 2.0  # before an ingest trial: the checkpointer copies what the last one left in the WAL


def device_id(n: int) -> str:
    return f"sim-temp-{n:04d}"


# -- building the full database ------------------------------------------------------------------


def build(path: Path, rows: int, built_at: float) -> None:
    """Write the full database at `path` (see the module docstring for its layout)."""
    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    migrate(db)
    db.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-1000000;"
        "PRAGMA temp_store=FILE; PRAGMA threads=2;"
    )
    for (index,) in db.execute("SELECT name FROM pragma_index_list('readings')").fetchall():
        db.execute(f"DROP INDEX {index}")  # indexed after the bulk insert, chunk by chunk
    db.execute("CREATE TEMP TABLE fleet (device_id TEXT, metric TEXT)")
    db.executemany(
        "INSERT INTO fleet VALUES (?, ?)", [(device_id(n), m) for n in range(DEVICES) for m in METRICS]
    )
    db.execute("CREATE TEMP TABLE probes (device_id TEXT, metric TEXT)")
    db.executemany(
        "INSERT INTO probes VALUES (?, ?)", [(device_id(n), m) for n in range(PROBES) for m in METRICS]
    )
    # The oldest chunk is the whole fleet; its newest reading passes raw retention between the
    # first and second measured pass, so one chunk drop falls in the measurement.
    edge_end = built_at - 30 * DAY + EDGE_EXPIRES_AFTER_S
    edge_span = RAW_CHUNK_ROWS // (DEVICES * len(METRICS)) * INTERVAL_S
    edge = edge_end - edge_span
    edge_rows = RAW_CHUNK_ROWS
    dense_steps = max(1, (rows - edge_rows) // (DEVICES * len(METRICS)))
    # Probes fill the 30 days up to the dense part; shrink the dense part by what they take.
    probe_span = built_at - edge_end - dense_steps * INTERVAL_S
    probe_rows = int(probe_span / INTERVAL_S) * PROBES * len(METRICS)
    dense_steps = max(1, (rows - edge_rows - probe_rows) // (DEVICES * len(METRICS)))
    dense_start = built_at - dense_steps * INTERVAL_S
    probe_span = dense_start - edge_end

    def series_over(table: str, start: float, seconds: float) -> None:
        db.execute("BEGIN")
        db.execute(
            f"""
            WITH RECURSIVE t(ts) AS (SELECT ?1 UNION ALL SELECT ts + ?2 FROM t WHERE ts + ?2 < ?1 + ?3)
            INSERT INTO readings
            SELECT s.device_id, s.metric, t.ts, 20.0 + (abs(random()) % 1000) / 100.0
            FROM t CROSS JOIN {table} AS s
            """,
            (start, INTERVAL_S, seconds),
        )
        db.execute("COMMIT")

    series_over("fleet", edge, edge_span)
    series_over("probes", edge_end, probe_span)
    series_over("fleet", dense_start, dense_steps * INTERVAL_S)
    print(f"  raw readings inserted: {time.perf_counter() - started:.0f} s", flush=True)
    split_into_chunks(db)
    print(f"  split into chunks, indexed: {time.perf_counter() - started:.0f} s", flush=True)

    def rollups(table: str, key: str, size: int, series: str, start: float, end: float) -> None:
        db.execute("BEGIN")
        db.execute(
            f"""
            WITH RECURSIVE b(k) AS (SELECT ?1 UNION ALL SELECT k + 1 FROM b WHERE k + 1 < ?2)
            INSERT OR IGNORE INTO {table} (device_id, metric, {key}, min, max, avg, last, n, last_ts)
            SELECT s.device_id, s.metric, b.k, 20.0, 30.0, 25.0, 24.0, ?3, b.k * ?4 + ?4 - ?5
            FROM {series} AS s CROSS JOIN b ORDER BY 1, 2, 3
            """,
            (int(start // size), int(end // size), int(size / INTERVAL_S), size, INTERVAL_S),
        )
        db.execute("COMMIT")

    rollups("rollups_1h", "hour", 3600, "fleet", built_at - 365 * DAY, built_at)
    rollups("rollups_1m", "minute", 60, "probes", built_at - 90 * DAY, built_at)
    rollups("rollups_1m", "minute", 60, "fleet", built_at - 90 * DAY, built_at - 90 * DAY + EDGE_BAND_S)
    rollups("rollups_1m", "minute", 60, "fleet", dense_start, built_at)
    (last,) = db.execute("SELECT MAX(rowid) FROM readings").fetchone()
    db.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_rowid', ?)", (str(last),))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('bench_built_at', ?)", (repr(built_at),))
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    _sync(tmp)
    tmp.rename(path)
    print(f"  built {path} ({path.stat().st_size / 1e9:.1f} GB) in {time.perf_counter() - started:.0f} s")


def split_into_chunks(db: sqlite3.Connection) -> None:
    """Move the rows of `readings` into sealed chunks of RAW_CHUNK_ROWS and a live tail, as
    maintenance would have left them (`storage.chunks`)."""
    db.execute("ALTER TABLE readings RENAME TO staging")
    db.execute("DELETE FROM reading_chunks")
    (last,) = db.execute("SELECT MAX(rowid) FROM staging").fetchone()
    first = 1
    while True:
        sealed = first + RAW_CHUNK_ROWS - 1 <= last
        end = first + RAW_CHUNK_ROWS - 1 if sealed else last
        name = f"readings_{first:012d}" if sealed else LIVE
        db.execute("BEGIN")
        db.execute(
            f"CREATE TABLE {name} (device_id TEXT NOT NULL, metric TEXT NOT NULL, ts REAL NOT NULL, "
            "value REAL NOT NULL)"
        )
        db.execute(
            f"INSERT INTO {name} (rowid, device_id, metric, ts, value) "
            "SELECT rowid, device_id, metric, ts, value FROM staging WHERE rowid BETWEEN ? AND ?",
            (first, end),
        )
        db.execute(f"CREATE INDEX {index_name(first)} ON {name} ({INDEX_COLUMNS})")
        low, high = db.execute(f"SELECT MIN(ts), MAX(ts) FROM {name}").fetchone()
        db.execute(
            "INSERT INTO reading_chunks VALUES (?, ?, ?, ?, ?)",
            (name, first, end if sealed else None, low, high),
        )
        db.execute("COMMIT")
        if not sealed:
            break
        first = end + 1
    db.execute("DROP TABLE staging")


def _sync(path: Path) -> None:
    """Write a freshly written file back now: the store's first fsync must not pay for gigabytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def full_database(cache: Path, rows: int) -> tuple[Path, float]:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"full-{rows}-chunks-{RAW_CHUNK_ROWS}-covering.db"  # the name changes with the layout
    if not path.exists():
        print(f"building the full database ({rows:,} readings) under {cache}", flush=True)
        build(path, rows, float(int(time.time()) // 3600 * 3600))
    db = sqlite3.connect(path)
    (built_at,) = db.execute("SELECT value FROM meta WHERE key = 'bench_built_at'").fetchone()
    db.close()
    return path, float(built_at)


# -- measuring a store ---------------------------------------------------------------------------


@dataclass
class Fleet:
    """The fleet's clock and its next readings: 2,000 readings per 5 s of fleet time."""

    clock: float
    tick: int = 0

    def step(self) -> list[tuple[str, str, float, float]]:
        self.clock += INTERVAL_S
        self.tick += 1
        value = 20.0 + self.tick % 50 / 10
        return [(device_id(n), m, self.clock, value) for n in range(DEVICES) for m in METRICS]


@dataclass
class Figures:
    ingest_trials: list[float] = field(default_factory=list)
    ingest_cpu_trials: list[float] = field(default_factory=list)  # readings per CPU second
    fleet: Fleet = field(default_factory=lambda: Fleet(0.0))
    ack_ms: list[float] = field(default_factory=list)
    idle_ack_ms: list[float] = field(default_factory=list)
    passes: list[PassReport] = field(default_factory=list)
    planning_s: list[float] = field(default_factory=list)
    fleet_minutes: float = 0.0
    queries: dict[tuple[float | None, int], tuple[float, float, int]] = field(default_factory=dict)


def ingest(store: SqliteStore, now: float, rows: int) -> tuple[float, float, Fleet]:
    """Readings per second and per CPU second of this process (writer, checkpointer and this
    loop) of `rows` readings from `now` on, at full speed, until committed; then a maintenance
    pass folds them, as the gateway's next would. Returns the fleet after them too.

    The CPU figure is what the store costs, whatever else the machine runs; the wall-clock one is
    the target's, and on a shared machine it also measures the neighbours."""
    time.sleep(SETTLE_S)
    fleet = Fleet(now)
    batch: list[tuple[str, str, float, float]] = []
    started = time.perf_counter()
    started_cpu = time.process_time()
    sent = 0
    while sent < rows:
        batch += fleet.step()
        while len(batch) >= 1000:
            store.add_readings(batch[:1000])
            batch = batch[1000:]
            sent += 1000
    store.flush(timeout_s=600)
    per_s = sent / (time.perf_counter() - started)
    per_cpu_s = sent / (time.process_time() - started_cpu)
    store.maintain(fleet.clock)
    store.flush(timeout_s=600)
    return per_s, per_cpu_s, fleet


def ingest_trials(
    full: SqliteStore, work: Path, now: float, trials: int, rows: int
) -> tuple[Figures, Figures, SqliteStore]:
    """Alternated ingest trials (empty, full, full, empty, ...); the last empty store stays open.

    One untimed trial of each store first: the first trial after the full store is opened fills
    SQLite's page cache from its 7 GB file (twice the page faults of any later trial, 207-227k
    readings/s against 317-420k in four runs), which a gateway with its store open for months
    has long done; the empty store's warm-up, on a database then discarded, treats both alike."""
    empty_figures, full_figures = Figures(), Figures()
    warm_up = SqliteStore(work / "empty-warm-up.db")
    warm_up.open()
    ingest(warm_up, now, rows)
    _discard(warm_up)
    ingest(full, now, rows)
    empty: SqliteStore | None = None
    order = [name for n in range(trials) for name in (("empty", "full") if n % 2 == 0 else ("full", "empty"))]
    for number, name in enumerate(order, start=1):
        if name == "empty":
            if empty is not None:
                _discard(empty)
            empty = SqliteStore(work / f"empty-{number}.db")
            empty.open()
            per_s, per_cpu_s, empty_figures.fleet = ingest(empty, now, rows)
            empty_figures.ingest_trials.append(per_s)
            empty_figures.ingest_cpu_trials.append(per_cpu_s)
        else:
            per_s, per_cpu_s, full_figures.fleet = ingest(full, now, rows)
            full_figures.ingest_trials.append(per_s)
            full_figures.ingest_cpu_trials.append(per_cpu_s)
        print(
            f"  ingest trial {number} ({name}): {per_s:,.0f} readings/s, {per_cpu_s:,.0f} per CPU second"
            f" (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    assert empty is not None
    return empty_figures, full_figures, empty


def _discard(store: SqliteStore) -> None:
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)


def measure(store: SqliteStore, figures: Figures, now: float, speed: float, passes: int) -> None:
    """Steps 2 and 3 of the module docstring, after the store's ingest trials (`figures.fleet`)."""
    fleet = figures.fleet
    stop = threading.Event()
    idle = threading.Timer(5.0, stop.set)  # first, acknowledges alone: the floor the disk sets
    idle.start()
    acknowledge_until_stopped(store, figures.idle_ack_ms, stop)
    stop.clear()

    def acknowledge() -> None:
        acknowledge_until_stopped(store, figures.ack_ms, stop)

    acks = threading.Thread(target=acknowledge, daemon=True)
    acks.start()
    step_real_s = INTERVAL_S / speed
    next_step = time.perf_counter()
    steps_per_pass = int(MAINTENANCE_INTERVAL_S / INTERVAL_S)
    planners: list[threading.Thread] = []
    for n in range(passes * steps_per_pass):
        store.add_readings(fleet.step())
        if (n + 1) % steps_per_pass == 0:
            at = fleet.clock

            def plan(at: float = at) -> None:
                began = time.perf_counter()
                store.maintain(at)
                figures.planning_s.append(time.perf_counter() - began)

            planner = threading.Thread(target=plan)
            planner.start()
            planners.append(planner)
        next_step += step_real_s
        time.sleep(max(0.0, next_step - time.perf_counter()))
    for planner in planners:
        planner.join()
    store.flush(timeout_s=600)
    stop.set()
    acks.join()
    figures.fleet_minutes = passes * MAINTENANCE_INTERVAL_S / 60
    figures.passes = list(store.history.recent_passes)[-passes:]

    for step in STEPS:
        for age in AGES_DAYS:
            since = now - age * DAY
            timings = []
            points = 0
            for _ in range(5):
                began = time.perf_counter()
                points = len(store.readings(*PROBE, since, since + DAY, step, limit=100000))
                timings.append((time.perf_counter() - began) * 1000)
            figures.queries[(step, age)] = (statistics.median(timings), max(timings), points)


def acknowledge_until_stopped(store: SqliteStore, into: list[float], stop: threading.Event) -> None:
    while not stop.is_set():
        at = time.perf_counter()
        with store.unit(urgent=True) as unit:  # as the API commits an operator's action
            store.audit(time.time(), "bench", "alert", "1", "acknowledge", "")
        unit.future.result(timeout=10)
        into.append((time.perf_counter() - at) * 1000)
        stop.wait(ACK_EVERY_S)


def maintenance_ms_per_minute(figures: Figures) -> float:
    """Writer time per fleet minute: passes as measured, except chunk drops, which a run holds
    at most one of, counted once per RAW_CHUNK_ROWS readings (the steady state's rate)."""
    passes_s = sum(p.duration_s - p.drop_s for p in figures.passes) / figures.fleet_minutes
    drops = [p.drop_s / p.chunks_dropped for p in figures.passes if p.chunks_dropped]
    drop_s = max(drops) if drops else 0.0
    return (passes_s + drop_s / (RAW_CHUNK_ROWS / RATE / 60)) * 1000


def report(name: str, figures: Figures) -> None:
    print(f"\n== {name} store ==")
    print(
        f"ingest: {statistics.median(figures.ingest_trials):,.0f} readings/s (median of trials: "
        + ", ".join(f"{per_s:,.0f}" for per_s in figures.ingest_trials)
        + f"); {statistics.median(figures.ingest_cpu_trials):,.0f} per CPU second (median)"
    )
    idle = sorted(figures.idle_ack_ms)
    print(
        f"acknowledge alone (no ingest, no maintenance): n={len(idle)} p50 {statistics.median(idle):.1f} ms, "
        f"p99 {idle[int(len(idle) * 0.99) - 1]:.1f} ms, max {idle[-1]:.1f} ms"
    )
    acks = sorted(figures.ack_ms)
    p99 = acks[int(len(acks) * 0.99) - 1] if acks else float("nan")
    print(
        f"acknowledge (small committed write) under {RATE:.0f} readings/s fleet time and maintenance: "
        f"n={len(acks)} p50 {statistics.median(acks):.1f} ms, p99 {p99:.1f} ms, max {acks[-1]:.1f} ms"
        f" (target p99 < {TARGET_ACK_P99_MS:.0f})"
    )
    print(
        "maintenance passes (writer ms [of which chunk drops] / rolled up / raw deleted / rollups deleted): "
        + ", ".join(
            f"{p.duration_s * 1000:.0f} [{p.drop_s * 1000:.0f}]/{p.rolled_up}/{p.raw_deleted}/{p.rollups_deleted}"
            for p in figures.passes
        )
    )
    print(
        f"maintenance writer time: {maintenance_ms_per_minute(figures):.1f} ms per minute of fleet time"
        f" (target < {TARGET_MAINTENANCE_MS_PER_MIN:.0f}; chunk drops counted at their steady-state rate, one per"
        f" {RAW_CHUNK_ROWS / RATE / 60:.0f} fleet minutes); planning on the caller's thread "
        f"(includes waiting for the queue to commit): "
        + ", ".join(f"{s * 1000:.0f} ms" for s in figures.planning_s)
    )
    print(f"readings queries, 24 h of {PROBE[0]}/{PROBE[1]} (median / max of 5 ms, points):")
    for step in STEPS:
        cells = []
        for age in AGES_DAYS:
            median, worst, points = figures.queries[(step, age)]
            cells.append(f"{age:>3} d back {median:6.1f} / {worst:6.1f} ({points:>5})")
        print(f"  step {'raw' if step is None else f'{step:.0f} s':>6}: " + " | ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--speed", type=float, default=20.0, help="fleet seconds per real second")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--ingest-rows", type=int, default=500_000)
    parser.add_argument("--trials", type=int, default=5, help="ingest trials of each store")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/history-bench"))
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    full_path, built_at = full_database(args.cache, args.rows)
    with tempfile.TemporaryDirectory(dir=args.cache) as work:
        began = time.perf_counter()
        path = Path(work) / "full.db"
        shutil.copyfile(full_path, path)
        _sync(path)
        print(f"\ncopied the full database in {time.perf_counter() - began:.0f} s", flush=True)
        full_store = SqliteStore(path)
        full_store.open()
        try:
            print(f"ingest, {args.trials} trials of each store, alternated:", flush=True)
            empty, full, empty_store = ingest_trials(
                full_store, Path(work), built_at, args.trials, args.ingest_rows
            )
            try:
                measure(empty_store, empty, built_at, args.speed, args.passes)
            finally:
                _discard(empty_store)
            report("empty", empty)
            measure(full_store, full, built_at, args.speed, args.passes)
        finally:
            full_store.close()
        print(f"full store: {full_store.history.last_pass}")
        report("full", full)
    ratio = statistics.median(full.ingest_trials) / statistics.median(empty.ingest_trials)
    print(
        f"\ningest full/empty: {ratio:.3f} (target >= {TARGET_INGEST_RATIO}; medians; per trial pair: "
        + ", ".join(f"{f / e:.2f}" for e, f in zip(empty.ingest_trials, full.ingest_trials, strict=True))
        + ")"
    )
    cpu_ratio = statistics.median(full.ingest_cpu_trials) / statistics.median(empty.ingest_cpu_trials)
    print(f"ingest full/empty per CPU second (the work a reading costs, whatever the load): {cpu_ratio:.3f}")
    worst_query = max(median for median, _, _ in full.queries.values())
    print(f"slowest query median (full): {worst_query:.1f} ms (target < {TARGET_QUERY_MS:.0f})")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
