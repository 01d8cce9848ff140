"""Readings queries: one series over a window, raw or in steps, from the cheapest tier that holds it.

A step that is a whole number of hours reads `rollups_1h`, of minutes `rollups_1m`, anything else
the raw readings. Where the chosen tier no longer reaches back far enough (retention), the older
part of the window comes from the next coarser tier, in that tier's buckets. Rollups are read
with the raw rows not yet folded into them, so a query sees what the writer committed. Every
statement is a range scan on a key or index of one series.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from enum import Enum
from typing import Any

from storage.chunks import chunks, overlapping, union


class Tier(Enum):
    RAW = ("readings", "", 0)
    MINUTE = ("rollups_1m", "minute", 60)
    HOUR = ("rollups_1h", "hour", 3600)

    def __init__(self, table: str, bucket: str, bucket_s: int) -> None:
        self.table = table
        self.bucket = bucket
        self.bucket_s = bucket_s

    @property
    def coarser(self) -> Tier | None:
        order = list(Tier)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of a query window read from one tier, in buckets of `step_s`."""

    tier: Tier
    since: float
    until: float
    step_s: float


def plan(step_s: float, since: float, until: float, horizons: dict[Tier, float | None]) -> list[Segment]:
    """The segments, oldest first, that answer a stepped query.

    Args:
        horizons: per tier, the oldest time it still holds for the series (None: it holds none,
            so it has lost nothing either).
    """
    tier = Tier.RAW
    for candidate in (Tier.HOUR, Tier.MINUTE):
        if step_s % candidate.bucket_s == 0:
            tier = candidate
            break
    segments: list[Segment] = []
    while True:
        horizon = horizons.get(tier)
        coarser = tier.coarser
        if horizon is None or horizon <= since or coarser is None:
            segments.append(Segment(tier, since, until, _step_for(tier, step_s)))
            break
        # The coarser tier answers up to its first bucket boundary past the horizon, so no
        # bucket of it overlaps the finer buckets after.
        boundary = min(until, math.ceil(horizon / coarser.bucket_s) * coarser.bucket_s)
        if boundary < until:
            segments.append(Segment(tier, boundary, until, _step_for(tier, step_s)))
        until = boundary
        tier = coarser
        if since >= until:
            break
    return segments[::-1]


def _step_for(tier: Tier, step_s: float) -> float:
    """The asked step, rounded up to whole buckets of the tier."""
    if tier.bucket_s == 0:
        return step_s
    return float(math.ceil(step_s / tier.bucket_s) * tier.bucket_s)


_SERIES_IN_WINDOW = "device_id = :device AND metric = :metric AND ts >= :since AND ts < :until"

# Buckets as (bucket, min, max, sum, n, last_ts, last). The window numbers each bucket's rows
# newest first, so `last` costs one sort of the window's rows, not a subquery per bucket.
_RAW_BUCKETS = """
SELECT bucket, MIN(value), MAX(value), SUM(value), COUNT(*), MAX(ts), MAX(CASE WHEN newest = 1 THEN value END)
FROM (
    SELECT CAST(ts / :step AS INTEGER) * :step AS bucket, ts, value,
           ROW_NUMBER() OVER (PARTITION BY CAST(ts / :step AS INTEGER) ORDER BY ts DESC, rid DESC) AS newest
    FROM ({rows})
)
GROUP BY bucket
"""

_ROLLUP_BUCKETS = """
SELECT bucket, MIN(min), MAX(max), SUM(avg * n), SUM(n), MAX(last_ts), MAX(CASE WHEN newest = 1 THEN last END)
FROM (
    SELECT CAST({key} * {size} / :step AS INTEGER) * :step AS bucket, min, max, avg, n, last_ts, last,
           ROW_NUMBER() OVER (PARTITION BY CAST({key} * {size} / :step AS INTEGER) ORDER BY {key} DESC) AS newest
    FROM {table}
    WHERE device_id = :device AND metric = :metric AND {key} >= :low AND {key} < :high
)
GROUP BY bucket
"""

_Bucket = tuple[float, float, float, float, int, float, float]


def read_raw(
    conn: sqlite3.Connection, device_id: str, metric: str, since: float, until: float, limit: int
) -> list[dict[str, float]]:
    """Raw samples in time order. Run it in one read transaction (the chunks and their catalog)."""
    tables = _raw_tables(conn, since, until)
    sql = f"SELECT ts, value FROM ({union(tables, 'ts, value', _SERIES_IN_WINDOW)}) ORDER BY ts LIMIT :limit"
    params = {"device": device_id, "metric": metric, "since": since, "until": until, "limit": limit}
    return [{"ts": ts, "value": value} for ts, value in conn.execute(sql, params)]


def _raw_tables(conn: sqlite3.Connection, since: float, until: float) -> list[str]:
    return [chunk.name for chunk in overlapping(chunks(conn), since, until, _rolled_upto(conn))]


def _rolled_upto(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'rollup_rowid'").fetchone()
    return int(row[0]) if row else 0


def _raw_buckets(
    conn: sqlite3.Connection, params: dict[str, Any], after: int, tables: list[str]
) -> list[_Bucket]:
    rows = union(tables, "rowid AS rid, ts, value", f"{_SERIES_IN_WINDOW} AND rowid > {int(after)}")
    return conn.execute(_RAW_BUCKETS.format(rows=rows), params).fetchall()


def read_steps(
    conn: sqlite3.Connection,
    device_id: str,
    metric: str,
    since: float,
    until: float,
    step_s: float,
    limit: int,
) -> list[dict[str, float]]:
    """Per-step min/max/avg/last. Run it in one read transaction: rollups and the rollup cursor
    must come from the same snapshot, or rows folded meanwhile would count twice."""
    horizons = {tier: _horizon(conn, tier, device_id, metric) for tier in Tier}
    rolled_upto = _rolled_upto(conn)
    all_chunks = chunks(conn)
    buckets: list[_Bucket] = []
    for segment in plan(step_s, since, until, horizons):
        params: dict[str, Any] = {
            "device": device_id,
            "metric": metric,
            "since": segment.since,
            "until": segment.until,
            "step": segment.step_s,
        }
        tables = [c.name for c in overlapping(all_chunks, segment.since, segment.until, rolled_upto)]
        if segment.tier is Tier.RAW:
            buckets += _raw_buckets(conn, params, -1, tables)
            continue
        size = segment.tier.bucket_s
        sql = _ROLLUP_BUCKETS.format(key=segment.tier.bucket, size=size, table=segment.tier.table)
        # A bucket key k covers [k * size, (k + 1) * size): those starting inside the segment.
        bounds = {"low": math.ceil(segment.since / size), "high": math.ceil(segment.until / size)}
        rolled = conn.execute(sql, {**params, **bounds}).fetchall()
        unrolled = [c.name for c in all_chunks if (c.last_rowid or rolled_upto + 1) > rolled_upto]
        pending = _raw_buckets(conn, params, rolled_upto, unrolled)
        buckets += _merge(rolled, pending)
    buckets.sort()
    return [
        {"ts": float(bucket), "min": low, "max": high, "avg": total / n, "last": last}
        for bucket, low, high, total, n, _, last in buckets[:limit]
    ]


def _horizon(conn: sqlite3.Connection, tier: Tier, device_id: str, metric: str) -> float | None:
    if tier is Tier.RAW:
        for chunk in chunks(conn):  # oldest first: the first chunk with the series holds its oldest
            row = conn.execute(
                f"SELECT ts FROM {chunk.name} WHERE device_id = ? AND metric = ? ORDER BY ts LIMIT 1",
                (device_id, metric),
            ).fetchone()
            if row is not None:
                return float(row[0])
        return None
    else:
        sql = (
            f"SELECT {tier.bucket} * {tier.bucket_s} FROM {tier.table} "
            f"WHERE device_id = ? AND metric = ? ORDER BY {tier.bucket} LIMIT 1"
        )
    row = conn.execute(sql, (device_id, metric)).fetchone()
    return None if row is None else float(row[0])


def _merge(rolled: list[_Bucket], pending: list[_Bucket]) -> list[_Bucket]:
    """Rollup buckets with the buckets of raw rows not yet folded into them."""
    if not pending:
        return rolled
    merged = {row[0]: row for row in rolled}
    for row in pending:
        seen = merged.get(row[0])
        if seen is None:
            merged[row[0]] = row
            continue
        newer = row[5] >= seen[5]
        merged[row[0]] = (
            row[0],
            min(row[1], seen[1]),
            max(row[2], seen[2]),
            row[3] + seen[3],
            row[4] + seen[4],
            max(row[5], seen[5]),
            row[6] if newer else seen[6],
        )
    return list(merged.values())
