"""Keeping history in tiers that fit a disk: rollups, retention and the disk budget.

Time a pass spends on the writer's connection is time the writer does not write, so a pass is
planned on a read connection (`HistoryMaintainer.plan`: the aggregation and the searches) and
only its writes are applied by the writer (`HistoryMaintainer.apply`). Every step is
incremental and bounded, never a scan of history:

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
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROLLUP_ROWS_PER_PASS = 500_000
RAW_DELETE_ROWS_PER_PASS = 500_000
BUDGET_DELETE_MIN_ROWS = 10_000
SERIES_PER_PASS = 250
ROLLUP_DELETE_ROWS = 1440  # rows one series loses at most per pass (a day of minutes)
_LAST_BUCKET = 2**62
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


@dataclass(frozen=True, slots=True)
class MaintenancePlan:
    """What one pass writes, worked out on a read connection so that the writer only applies it.

    What it reads cannot change under it: rows up to the rollup cursor are never updated, and
    raw rows are only appended. Two plans from the same cursor: the writer applies the first.
    """

    now: float
    cursor: int  # the rollup cursor as read: the plan applies only while it is unchanged
    done: int  # the rowid the fold starts after (the cursor, or 0 once rowids restarted)...
    upto: int  # ...and moves to
    newest: int
    minutes: tuple[_Delta, ...]
    hours: tuple[_Delta, ...]
    raw_delete: tuple[int, int]  # rowids [first, end)
    rollup_deletes: tuple[tuple[_Tier, str, str, int], ...]  # (tier, device, metric, below bucket)
    sweep_cursors: tuple[tuple[_Tier, str, str], ...]
    over_budget: bool
    more_to_do: bool


class HistoryMaintainer:
    """Plans maintenance passes on a reader, applies them on the writer; remembers the write rate."""

    def __init__(self, path: Path, policy: RetentionPolicy) -> None:
        self.path = path
        self.policy = policy
        self.last_pass: PassReport | None = None
        self.recent_passes: deque[PassReport] = deque(maxlen=64)
        self.readings_per_s = 0.0
        self._last_newest: tuple[float, int] | None = None  # (now, newest rowid) at the last pass
        self._over_budget = False

    def plan(self, conn: sqlite3.Connection, now: float) -> MaintenancePlan:
        """Read what the next pass does (in one snapshot of `conn`, a reader)."""
        conn.execute("BEGIN")
        try:
            done = cursor = _meta_int(conn, _ROLLUP_CURSOR)
            newest = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM readings").fetchone()[0]
            if newest < done:  # the table was emptied and rowids restarted (a database from before v5)
                done = 0
            upto = min(newest, done + ROLLUP_ROWS_PER_PASS)
            minutes = minute_delta(conn, done, upto)
            over_budget = self._over_budget_now(conn)
            raw_delete, raw_more = self._raw_to_delete(conn, now, upto - done, upto, over_budget)
            deletes: list[tuple[_Tier, str, str, int]] = []
            cursors: list[tuple[_Tier, str, str]] = []
            sweeps_more = False
            for tier, days in (
                (MINUTE_TIER, self.policy.rollup_1m_days),
                (HOUR_TIER, self.policy.rollup_1h_days),
            ):
                cutoff = int((now - days * DAY_S) // tier.bucket_s)
                found, (device_id, metric), more = sweep_rollups(conn, tier, cutoff)
                deletes += found
                cursors.append((tier, device_id, metric))
                sweeps_more = sweeps_more or more
        finally:
            conn.execute("COMMIT")
        return MaintenancePlan(
            now=now,
            cursor=cursor,
            done=done,
            upto=upto,
            newest=newest,
            minutes=tuple(minutes),
            hours=tuple(_by_hour(minutes)),
            raw_delete=raw_delete,
            rollup_deletes=tuple(deletes),
            sweep_cursors=tuple(cursors),
            over_budget=over_budget,
            more_to_do=upto < newest or raw_more or sweeps_more,
        )

    def apply(self, conn: sqlite3.Connection, plan: MaintenancePlan) -> PassReport | None:
        """Write a plan in one transaction on the writer's connection; None if another came first."""
        started = time.perf_counter()
        conn.execute("BEGIN")
        try:
            if _meta_int(conn, _ROLLUP_CURSOR) != plan.cursor:
                conn.execute("ROLLBACK")
                return None
            conn.executemany(_upsert(MINUTE_TIER), [_rollup_row(delta) for delta in plan.minutes])
            conn.executemany(_upsert(HOUR_TIER), [_rollup_row(delta) for delta in plan.hours])
            _set_meta(conn, _ROLLUP_CURSOR, str(plan.upto))
            raw_deleted = conn.execute(
                "DELETE FROM readings WHERE rowid >= ? AND rowid < ?", plan.raw_delete
            ).rowcount
            rollups_deleted = 0
            for tier, device_id, metric, below in plan.rollup_deletes:
                rollups_deleted += conn.execute(
                    f"DELETE FROM {tier.table} WHERE device_id = ? AND metric = ? AND {tier.bucket} < ?",
                    (device_id, metric, below),
                ).rowcount
            for tier, device_id, metric in plan.sweep_cursors:
                _set_meta(conn, _SWEEP_CURSOR.format(table=tier.table), json.dumps([device_id, metric]))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if plan.over_budget and raw_deleted:
            log.info("disk budget: deleted the %d oldest raw readings", raw_deleted)
        if self._last_newest is not None and plan.now > self._last_newest[0]:
            arrived = max(0, plan.newest - self._last_newest[1])
            self.readings_per_s = arrived / (plan.now - self._last_newest[0])
        self._last_newest = (plan.now, plan.newest)
        report = PassReport(
            at=plan.now,
            duration_s=time.perf_counter() - started,
            rolled_up=plan.upto - plan.done,
            raw_deleted=raw_deleted,
            rollups_deleted=rollups_deleted,
            over_budget=plan.over_budget,
            more_to_do=plan.more_to_do,
        )
        self.last_pass = report
        self.recent_passes.append(report)
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

    def _raw_to_delete(
        self, conn: sqlite3.Connection, now: float, arriving: int, rolled_upto: int, over_budget: bool
    ) -> tuple[tuple[int, int], bool]:
        """The oldest raw rows to delete: those past retention, or (over budget) a chunk regardless."""
        first = conn.execute("SELECT MIN(rowid) FROM readings").fetchone()[0]  # a seek, not a scan
        if first is None:
            return (0, 0), False
        chunk = RAW_DELETE_ROWS_PER_PASS
        if over_budget:  # outpace what arrives, without one long pass
            chunk = min(chunk, max(BUDGET_DELETE_MIN_ROWS, 2 * arriving))
        # The row at the rollup cursor stays: with it, new rowids keep counting up from the cursor
        # even when everything older is gone (an emptied table would restart them at 1).
        end = min(first + chunk, rolled_upto)
        if end <= first:
            return (first, first), False
        if not over_budget:
            cutoff = now - self.policy.raw_days * DAY_S
            young = conn.execute(
                "SELECT rowid FROM readings WHERE rowid >= ? AND rowid < ? AND ts >= ? ORDER BY rowid LIMIT 1",
                (first, end, cutoff),
            ).fetchone()
            if young is not None:
                return (first, young[0]), False
        return (first, end), end == first + chunk and end < rolled_upto

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


def minute_delta(conn: sqlite3.Connection, done: int, upto: int) -> list[_Delta]:
    """Raw rows with rowid in (done, upto], aggregated per series and minute."""
    if upto <= done:
        return []
    return conn.execute(_MINUTE_DELTA, (done, upto)).fetchall()


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


def sweep_rollups(
    conn: sqlite3.Connection, tier: _Tier, cutoff_bucket: int
) -> tuple[list[tuple[_Tier, str, str, int]], tuple[str, str], bool]:
    """The next `SERIES_PER_PASS` series' buckets older than `cutoff_bucket`, and the new cursor.

    Each series costs one seek: its first row is the next key after the previous series, and
    holds its oldest bucket. A series loses at most `ROLLUP_DELETE_ROWS` buckets a pass.
    """
    key = _SWEEP_CURSOR.format(table=tier.table)
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    device_id, metric = json.loads(row[0]) if row else ("", "")
    deletes: list[tuple[_Tier, str, str, int]] = []
    more = False
    # The full key with the largest bucket: SQLite seeks straight past the series (a comparison of
    # the (device_id, metric) prefix alone makes it step through the series' rows).
    next_series = (
        f"SELECT device_id, metric, {tier.bucket} FROM {tier.table} "
        f"WHERE (device_id, metric, {tier.bucket}) > (?, ?, {_LAST_BUCKET}) "
        f"ORDER BY device_id, metric, {tier.bucket} LIMIT 1"
    )
    bounded = (
        f"SELECT {tier.bucket} FROM {tier.table} WHERE device_id = ? AND metric = ? AND {tier.bucket} < ? "
        f"ORDER BY {tier.bucket} LIMIT 1 OFFSET {ROLLUP_DELETE_ROWS}"
    )
    for _ in range(SERIES_PER_PASS):
        found = conn.execute(next_series, (device_id, metric)).fetchone()
        if found is None:
            device_id, metric = "", ""  # wrap around: the next pass starts at the first series
            break
        device_id, metric, oldest = found
        if oldest < cutoff_bucket:
            limit = conn.execute(bounded, (device_id, metric, cutoff_bucket)).fetchone()
            deletes.append((tier, device_id, metric, cutoff_bucket if limit is None else limit[0]))
            more = more or limit is not None
    return deletes, (device_id, metric), more


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
