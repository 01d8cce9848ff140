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
import math
import os
import shutil
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.chunks import (
    LIVE,
    RAW_CHUNK_ROWS,
    RAW_CHUNK_SPAN_S,
    Chunk,
    chunks,
    drop_sentinel,
    seal_live,
    union,
    widen,
)

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
    chunks_dropped: int
    drop_s: float  # of `duration_s`, the time its chunk drops took (with the commit, if any)
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
               PARTITION BY device_id, metric, CAST(ts / 60 AS INTEGER) ORDER BY ts DESC, rid DESC
           ) AS newest
    FROM ({rows})
)
GROUP BY device_id, metric, minute
"""
_IN_RANGE = "rowid > :done AND rowid <= :upto AND device_id <> ''"
# Chunks sealed when RAW_CHUNK_ROWS was 1 M still go whole; a larger chunk (from before chunks)
# loses its rows one by one.
DROP_MAX_ROWS = 2_000_000
ROW_DELETE_MAX_ROWS = 100_000  # a sealed chunk this small may lose rows before it expires whole

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
    ts_ranges: tuple[tuple[str, float, float], ...]  # (chunk, min ts, max ts) of the rows folded
    raw_drops: tuple[str, ...]  # sealed chunks dropped whole...
    raw_delete: tuple[str, int, int] | None  # ...or rowids [first, end) deleted from one
    raw_dropped_rows: int
    seal: bool
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
        self._fold_s = 0.0  # writer time of the last fold, reported with its retire

    def plan(self, conn: sqlite3.Connection, now: float) -> MaintenancePlan:
        """Read what the next pass does (in one snapshot of `conn`, a reader)."""
        conn.execute("BEGIN")
        try:
            done = cursor = _meta_int(conn, _ROLLUP_CURSOR)
            all_chunks = chunks(conn)
            live = all_chunks[-1]
            newest = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {LIVE}").fetchone()[0]
            if newest < done:  # the table was emptied and rowids restarted (a database from before v5)
                done = 0
            upto = min(newest, done + ROLLUP_ROWS_PER_PASS)
            folding = [
                c.name for c in all_chunks if (c.last_rowid or newest) > done and c.first_rowid <= upto
            ]
            minutes = minute_delta(conn, folding, done, upto)
            ts_ranges = []
            for name in folding:
                low, high = conn.execute(
                    f"SELECT MIN(ts), MAX(ts) FROM {name} WHERE {_IN_RANGE}", {"done": done, "upto": upto}
                ).fetchone()
                if low is not None:
                    ts_ranges.append((name, low, high))
            over_budget = self._over_budget_now(conn)
            raw_drops, raw_dropped_rows, raw_delete, raw_more = self._raw_to_delete(
                conn,
                all_chunks,
                {name: high for name, _, high in ts_ranges},
                now,
                upto - done,
                upto,
                over_budget,
            )
            live_rows = newest - live.first_rowid + 1
            live_since = min([live.min_ts or now] + [low for name, low, _ in ts_ranges if name == LIVE])
            seal = live_rows >= RAW_CHUNK_ROWS or now - live_since >= RAW_CHUNK_SPAN_S
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
            ts_ranges=tuple(ts_ranges),
            raw_drops=raw_drops,
            raw_delete=raw_delete,
            raw_dropped_rows=raw_dropped_rows,
            seal=seal,
            rollup_deletes=tuple(deletes),
            sweep_cursors=tuple(cursors),
            over_budget=over_budget,
            more_to_do=upto < newest or raw_more or sweeps_more,
        )

    def apply(self, conn: sqlite3.Connection, plan: MaintenancePlan) -> PassReport | None:
        """Both stages of a plan in one transaction; None if another pass came first."""
        return self.retire(conn, plan) if self.fold(conn, plan) else None

    def fold(self, conn: sqlite3.Connection, plan: MaintenancePlan) -> bool:
        """The first stage, in a writer transaction of its own: fold the plan's raw rows into the
        rollups and move the cursor past them. False if another pass came first.

        The store commits the two stages apart, so an operator's write queued behind a pass
        waits for one of them, not both.
        """
        started = time.perf_counter()
        if _meta_int(conn, _ROLLUP_CURSOR) != plan.cursor:
            return False
        conn.executemany(_upsert(MINUTE_TIER), [_rollup_row(delta) for delta in plan.minutes])
        conn.executemany(_upsert(HOUR_TIER), [_rollup_row(delta) for delta in plan.hours])
        _set_meta(conn, _ROLLUP_CURSOR, str(plan.upto))
        for name, low, high in plan.ts_ranges:
            widen(conn, name, low, high)
        self._fold_s = time.perf_counter() - started
        return True

    def retire(self, conn: sqlite3.Connection, plan: MaintenancePlan) -> PassReport | None:
        """The second stage, after the plan's fold committed: retention, the disk budget and the
        live chunk's seal. None unless the cursor is where this plan's fold left it (a later pass
        came first, or the fold did not commit)."""
        started = time.perf_counter()
        if _meta_int(conn, _ROLLUP_CURSOR) != plan.upto:
            return None
        raw_deleted = 0
        dropping = time.perf_counter()
        for name in plan.raw_drops:
            conn.execute(f"DROP TABLE {name}")
            conn.execute("DELETE FROM reading_chunks WHERE name = ?", (name,))
        drop_s = time.perf_counter() - dropping
        raw_deleted = plan.raw_dropped_rows
        if plan.raw_delete is not None:
            table, first, end = plan.raw_delete
            raw_deleted = conn.execute(
                f"DELETE FROM {table} WHERE rowid >= ? AND rowid < ?", (first, end)
            ).rowcount
        rollups_deleted = 0
        for tier, device_id, metric, below in plan.rollup_deletes:
            rollups_deleted += conn.execute(
                f"DELETE FROM {tier.table} WHERE device_id = ? AND metric = ? AND {tier.bucket} < ?",
                (device_id, metric, below),
            ).rowcount
        for tier, device_id, metric in plan.sweep_cursors:
            _set_meta(conn, _SWEEP_CURSOR.format(table=tier.table), json.dumps([device_id, metric]))
        drop_sentinel(conn)
        if plan.seal:
            seal_live(conn)
        if plan.over_budget and raw_deleted:
            log.info("disk budget: deleted the %d oldest raw readings", raw_deleted)
        if self._last_newest is not None and plan.now > self._last_newest[0]:
            arrived = max(0, plan.newest - self._last_newest[1])
            self.readings_per_s = arrived / (plan.now - self._last_newest[0])
        self._last_newest = (plan.now, plan.newest)
        report = PassReport(
            at=plan.now,
            duration_s=self._fold_s + time.perf_counter() - started,
            rolled_up=sum(delta[6] for delta in plan.minutes),
            raw_deleted=raw_deleted,
            rollups_deleted=rollups_deleted,
            chunks_dropped=len(plan.raw_drops),
            drop_s=drop_s,
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
        self,
        conn: sqlite3.Connection,
        all_chunks: list[Chunk],
        folding: dict[str, float],
        now: float,
        arriving: int,
        rolled_upto: int,
        over_budget: bool,
    ) -> tuple[tuple[str, ...], int, tuple[str, int, int] | None, bool]:
        """What goes: the oldest chunks whole (dropped), or a prefix of rows of the oldest one.

        Args:
            folding: per chunk, the newest ts among its rows this pass rolls up.
        Returns (chunks to drop, their rows, (chunk, first, end) rowids to delete, more to do).
        """
        cutoff = now - self.policy.raw_days * DAY_S
        drops: list[str] = []
        dropped = 0
        oldest = all_chunks[-1]
        first = None
        for chunk in all_chunks[:-1]:
            oldest = chunk
            first = conn.execute(f"SELECT MIN(rowid) FROM {chunk.name}").fetchone()[0]  # a seek
            assert chunk.last_rowid is not None
            if first is None:
                drops.append(chunk.name)
                continue
            rows = chunk.last_rowid - first + 1
            newest_ts = max(chunk.max_ts or -math.inf, folding.get(chunk.name, -math.inf))
            whole = rows <= DROP_MAX_ROWS and chunk.max_ts is not None and chunk.last_rowid <= rolled_upto
            if not (whole and (newest_ts < cutoff or over_budget)):
                break
            if drops and dropped + rows > DROP_MAX_ROWS:
                return tuple(drops), dropped, None, True
            drops.append(chunk.name)
            dropped += rows
            if over_budget:
                return tuple(drops), dropped, None, True  # a chunk a pass, then measure again
        else:
            oldest = all_chunks[-1]
            first = conn.execute(f"SELECT MIN(rowid) FROM {LIVE}").fetchone()[0]
        if drops or first is None:
            return tuple(drops), dropped, None, False
        if oldest.last_rowid is not None:
            rows = oldest.last_rowid - first + 1
            if ROW_DELETE_MAX_ROWS < rows <= DROP_MAX_ROWS and oldest.max_ts is not None:
                return (), 0, None, False  # it goes whole once all of it is past retention
            # Rows up to the cursor are rolled up; a sealed chunk needs no row to hold rowids.
            limit = min(rolled_upto, oldest.last_rowid) + 1
        else:
            # The row at the rollup cursor stays: with it, new rowids keep counting up from the
            # cursor even when everything older is gone (an emptied table would restart them at 1).
            limit = rolled_upto
        chunk_rows = RAW_DELETE_ROWS_PER_PASS
        if over_budget:  # outpace what arrives, without one long pass
            chunk_rows = min(chunk_rows, max(BUDGET_DELETE_MIN_ROWS, 2 * arriving))
        end = min(first + chunk_rows, limit)
        if end <= first:
            return (), 0, None, False
        if not over_budget:
            young = conn.execute(
                f"SELECT rowid FROM {oldest.name} WHERE rowid >= ? AND rowid < ? AND ts >= ? "
                "ORDER BY rowid LIMIT 1",
                (first, end, cutoff),
            ).fetchone()
            if young is not None:
                return (), 0, (oldest.name, first, young[0]), False
        return (), 0, (oldest.name, first, end), end == first + chunk_rows and end < limit

    def disk_usage(self, conn: sqlite3.Connection, now: float) -> DiskUsage:
        """The figures of `DiskUsage`, from O(1) pragmas and rowid seeks (no scan)."""
        used = pages_in_use_bytes(conn)
        file_bytes = sum(
            os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if os.path.exists(p)
        )
        oldest_chunk = chunks(conn)[0].name
        low = conn.execute(f"SELECT MIN(rowid) FROM {oldest_chunk} WHERE device_id <> ''").fetchone()[0]
        high = conn.execute(f"SELECT MAX(rowid) FROM {LIVE}").fetchone()[0]
        # Retention deletes prefixes and drops the oldest chunks: no holes to count.
        raw_rows = 0 if low is None else high - low + 1
        held = 0.0
        if low is not None:
            (oldest,) = conn.execute(f"SELECT ts FROM {oldest_chunk} WHERE rowid = ?", (low,)).fetchone()
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


def minute_delta(conn: sqlite3.Connection, tables: Sequence[str], done: int, upto: int) -> list[_Delta]:
    """Raw rows with rowid in (done, upto] of these chunks, aggregated per series and minute."""
    if upto <= done or not tables:
        return []
    rows = union(tables, "rowid AS rid, device_id, metric, ts, value", _IN_RANGE)
    return conn.execute(_MINUTE_DELTA.format(rows=rows), {"done": done, "upto": upto}).fetchall()


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
