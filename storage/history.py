"""Keeping history in tiers that fit a disk: rollups, retention and the disk budget.

A maintenance pass runs on the writer's connection, so its cost is time the writer does not
write. Every step is therefore incremental and bounded, never a scan of history:

- **Rollups**: raw readings past the `rollup_rowid` cursor (rowids follow arrival) are folded
  into `rollups_1m`, and the same per-minute delta into `rollups_1h`; at most
  `ROLLUP_ROWS_PER_PASS` rows a pass.
- **Raw retention** deletes a prefix of rowids, oldest first, at most `RAW_DELETE_ROWS_PER_PASS`
  a pass, and never past the rollup cursor (a row leaves only once it is rolled up).
- **Rollup retention**: the rollup tables are keyed by series first, so old rows are found per
  series: a cursor in `meta` sweeps `SERIES_PER_PASS` series a pass, each found and trimmed by
  key seeks.
- **Disk budget**: while the pages in use exceed it, raw readings go oldest first beyond their
  retention (logged); the store then holds what fits.

A pass that has more to do says so and leaves it for the next one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROLLUP_ROWS_PER_PASS = 200_000
RAW_DELETE_ROWS_PER_PASS = 100_000
BUDGET_DELETE_MIN_ROWS = 10_000
SERIES_PER_PASS = 250
ROLLUP_DELETE_SPAN = 1440  # buckets one series loses at most per pass (a day of minutes)
DAY_S = 86400.0

_ROLLUP_CURSOR = "rollup_rowid"
_SWEEP_CURSOR = "sweep_{table}"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each tier is kept, and the disk the whole store may use."""

    raw_days: float = 30.0
    rollup_1m_days: float = 90.0
    rollup_1h_days: float = 1095.0
    disk_budget_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one maintenance pass did, and the writer time it took."""

    at: float
    duration_s: float
    rolled_up: int
    raw_deleted: int
    rollups_deleted: int
    over_budget: bool
    more_to_do: bool


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """The store's size against its budget, and how much raw history that holds at today's rate.

    `days_at_current_rate` divides the capacity (the budget, or without one the bytes used plus
    the free disk) by a day of readings at `readings_per_s`, at the bytes the store now uses per
    stored raw row (rollups included, so it errs short).
    """

    bytes_used: int
    file_bytes: int
    budget_bytes: int | None
    capacity_bytes: int
    readings_per_s: float
    raw_rows: int
    raw_days_held: float
    days_at_current_rate: float | None


@dataclass(frozen=True, slots=True)
class _Tier:
    table: str
    bucket: str  # the key column
    bucket_s: int


MINUTE_TIER = _Tier("rollups_1m", "minute", 60)
HOUR_TIER = _Tier("rollups_1h", "hour", 3600)


def _upsert(tier: _Tier) -> str:
    return f"""
INSERT INTO {tier.table} (device_id, metric, {tier.bucket}, min, max, avg, last, n, last_ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device_id, metric, {tier.bucket}) DO UPDATE SET
    min = MIN(min, excluded.min),
    max = MAX(max, excluded.max),
    avg = (avg * n + excluded.avg * excluded.n) / (n + excluded.n),
    n = n + excluded.n,
    last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last ELSE last END,
    last_ts = MAX(last_ts, excluded.last_ts)
"""


# One sort for the whole delta: the window numbers each minute's rows newest first, so `last`
# needs no correlated subquery per group.
_MINUTE_DELTA = """
SELECT device_id, metric, minute, MIN(value), MAX(value), SUM(value), COUNT(*), MAX(ts),
       MAX(CASE WHEN newest = 1 THEN value END)
FROM (
    SELECT device_id, metric, CAST(ts / 60 AS INTEGER) AS minute, ts, value,
           ROW_NUMBER() OVER (
               PARTITION BY device_id, metric, CAST(ts / 60 AS INTEGER) ORDER BY ts DESC, rowid DESC
           ) AS newest
    FROM readings WHERE rowid > ? AND rowid <= ?
)
GROUP BY device_id, metric, minute
"""

# (device_id, metric, bucket, min, max, sum, n, last_ts, last)
_Delta = tuple[str, str, int, float, float, float, int, float, float]


class HistoryMaintainer:
    """Runs maintenance passes on the writer's connection; remembers the write rate between them."""

    def __init__(self, path: Path, policy: RetentionPolicy) -> None:
        self.path = path
        self.policy = policy
        self.last_pass: PassReport | None = None
        self.readings_per_s = 0.0
        self._last_newest: tuple[float, int] | None = None  # (now, newest rowid) at the last pass
        self._over_budget = False

    def run(self, conn: sqlite3.Connection, now: float) -> PassReport:
        """One bounded pass: rollups, raw retention (and budget), rollup retention; one transaction."""
        started = time.perf_counter()
        conn.execute("BEGIN")
        try:
            done = _meta_int(conn, _ROLLUP_CURSOR)
            newest = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM readings").fetchone()[0]
            if newest < done:  # the table was emptied and rowids restarted (a database from before v5)
                done = 0
            upto = min(newest, done + ROLLUP_ROWS_PER_PASS)
            rolled = fold_rollups(conn, done, upto)
            _set_meta(conn, _ROLLUP_CURSOR, str(upto))
            over_budget = self._over_budget_now(conn)
            raw_deleted, raw_more = self._trim_raw(conn, now, rolled, upto, over_budget)
            rollups_deleted = 0
            sweeps_more = False
            for tier, days in (
                (MINUTE_TIER, self.policy.rollup_1m_days),
                (HOUR_TIER, self.policy.rollup_1h_days),
            ):
                deleted, more = sweep_rollups(conn, tier, int((now - days * DAY_S) // tier.bucket_s))
                rollups_deleted += deleted
                sweeps_more = sweeps_more or more
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if self._last_newest is not None and now > self._last_newest[0]:
            self.readings_per_s = max(0, newest - self._last_newest[1]) / (now - self._last_newest[0])
        self._last_newest = (now, newest)
        report = PassReport(
            at=now,
            duration_s=time.perf_counter() - started,
            rolled_up=rolled,
            raw_deleted=raw_deleted,
            rollups_deleted=rollups_deleted,
            over_budget=over_budget,
            more_to_do=upto < newest or raw_more or sweeps_more,
        )
        self.last_pass = report
        return report

    def _over_budget_now(self, conn: sqlite3.Connection) -> bool:
        budget = self.policy.disk_budget_bytes
        over = budget is not None and pages_in_use_bytes(conn) > budget
        if over != self._over_budget:
            if over:
                log.warning(
                    "the store uses more than its disk budget of %.0f MB: raw readings now go oldest "
                    "first before their %.0f-day retention",
                    (budget or 0) / 1e6,
                    self.policy.raw_days,
                )
            else:
                log.info("the store is back within its disk budget")
            self._over_budget = over
        return over

    def _trim_raw(
        self, conn: sqlite3.Connection, now: float, rolled: int, rolled_upto: int, over_budget: bool
    ) -> tuple[int, bool]:
        """Delete the oldest raw rows: those past retention, or (over budget) a chunk regardless."""
        first = conn.execute("SELECT MIN(rowid) FROM readings").fetchone()[0]  # a seek, not a scan
        if first is None:
            return 0, False
        # The row at the rollup cursor stays: with it, new rowids keep counting up from the cursor
        # even when everything older is gone (an emptied table would restart them at 1).
        chunk = RAW_DELETE_ROWS_PER_PASS
        if over_budget:  # outpace what arrives, without one long pass
            chunk = min(chunk, max(BUDGET_DELETE_MIN_ROWS, 2 * rolled))
        end = min(first + chunk, rolled_upto)
        if end <= first:
            return 0, False
        if not over_budget:
            cutoff = now - self.policy.raw_days * DAY_S
            young = conn.execute(
                "SELECT rowid FROM readings WHERE rowid >= ? AND rowid < ? AND ts >= ? ORDER BY rowid LIMIT 1",
                (first, end, cutoff),
            ).fetchone()
            if young is not None:
                end = young[0]
        deleted = conn.execute("DELETE FROM readings WHERE rowid >= ? AND rowid < ?", (first, end)).rowcount
        if over_budget and deleted:
            (oldest,) = conn.execute("SELECT ts FROM readings ORDER BY rowid LIMIT 1").fetchone()
            log.info(
                "disk budget: deleted %d raw readings; raw history now starts %.1f days ago",
                deleted,
                (now - oldest) / DAY_S,
            )
        full_chunk = end == first + chunk and end < rolled_upto
        return deleted, full_chunk

    def disk_usage(self, conn: sqlite3.Connection, now: float) -> DiskUsage:
        """The figures of `DiskUsage`, from O(1) pragmas and rowid seeks (no scan)."""
        used = pages_in_use_bytes(conn)
        file_bytes = sum(
            os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if os.path.exists(p)
        )
        low = conn.execute("SELECT MIN(rowid) FROM readings").fetchone()[0]
        high = conn.execute("SELECT MAX(rowid) FROM readings").fetchone()[0]
        raw_rows = 0 if low is None else high - low + 1  # retention deletes prefixes: no holes
        held = 0.0
        if low is not None:
            (oldest,) = conn.execute("SELECT ts FROM readings WHERE rowid = ?", (low,)).fetchone()
            held = max(0.0, (now - oldest) / DAY_S)
        budget = self.policy.disk_budget_bytes
        capacity = budget if budget is not None else used + shutil.disk_usage(self.path.parent).free
        days: float | None = None
        if raw_rows and self.readings_per_s > 0:
            bytes_per_row = used / raw_rows
            days = capacity / (self.readings_per_s * DAY_S * bytes_per_row)
        return DiskUsage(
            bytes_used=used,
            file_bytes=file_bytes,
            budget_bytes=budget,
            capacity_bytes=capacity,
            readings_per_s=self.readings_per_s,
            raw_rows=raw_rows,
            raw_days_held=held,
            days_at_current_rate=days,
        )


def fold_rollups(conn: sqlite3.Connection, done: int, upto: int) -> int:
    """Merge raw rows with rowid in (done, upto] into both rollup tiers; returns how many."""
    if upto <= done:
        return 0
    minutes: list[_Delta] = conn.execute(_MINUTE_DELTA, (done, upto)).fetchall()
    conn.executemany(_upsert(MINUTE_TIER), [_rollup_row(delta) for delta in minutes])
    conn.executemany(_upsert(HOUR_TIER), [_rollup_row(delta) for delta in _by_hour(minutes)])
    return upto - done


def _rollup_row(delta: _Delta) -> tuple[Any, ...]:
    device_id, metric, bucket, low, high, total, n, last_ts, last = delta
    return (device_id, metric, bucket, low, high, total / n, last, n, last_ts)


def _by_hour(minutes: Sequence[_Delta]) -> list[_Delta]:
    hours: dict[tuple[str, str, int], _Delta] = {}
    for device_id, metric, minute, low, high, total, n, last_ts, last in minutes:
        key = (device_id, metric, minute // 60)
        seen = hours.get(key)
        if seen is None:
            hours[key] = (device_id, metric, minute // 60, low, high, total, n, last_ts, last)
        else:
            newer = last_ts >= seen[7]
            hours[key] = (
                device_id,
                metric,
                minute // 60,
                min(low, seen[3]),
                max(high, seen[4]),
                total + seen[5],
                n + seen[6],
                max(last_ts, seen[7]),
                last if newer else seen[8],
            )
    return list(hours.values())


def sweep_rollups(conn: sqlite3.Connection, tier: _Tier, cutoff_bucket: int) -> tuple[int, bool]:
    """Trim buckets older than `cutoff_bucket` from the next `SERIES_PER_PASS` series.

    Each series costs one seek (its first row is the next key after the previous series, and
    holds its oldest bucket) and, when that bucket is old, one bounded range delete.
    """
    key = _SWEEP_CURSOR.format(table=tier.table)
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    device_id, metric = json.loads(row[0]) if row else ("", "")
    deleted = 0
    more = False
    next_series = (
        f"SELECT device_id, metric, {tier.bucket} FROM {tier.table} "
        "WHERE (device_id, metric) > (?, ?) ORDER BY device_id, metric, " + tier.bucket + " LIMIT 1"
    )
    for _ in range(SERIES_PER_PASS):
        found = conn.execute(next_series, (device_id, metric)).fetchone()
        if found is None:
            device_id, metric = "", ""  # wrap around: the next pass starts at the first series
            break
        device_id, metric, oldest = found
        if oldest < cutoff_bucket:
            upto = min(cutoff_bucket, oldest + ROLLUP_DELETE_SPAN)
            deleted += conn.execute(
                f"DELETE FROM {tier.table} WHERE device_id = ? AND metric = ? AND {tier.bucket} < ?",
                (device_id, metric, upto),
            ).rowcount
            more = more or upto < cutoff_bucket
    _set_meta(conn, key, json.dumps([device_id, metric]))
    return deleted, more


def pages_in_use_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the database's pages that hold data: deleted rows free pages, the file keeps them."""
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (page_count,) = conn.execute("PRAGMA page_count").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    return int((page_count - free) * page_size)


def _meta_int(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
