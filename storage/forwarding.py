"""Reading the store in commit order for a forwarder (an upstream sink), from its persisted cursor.

The one writer commits transactions one after another and rowids grow with each insert, so a
reader's snapshot always holds a prefix of the rowid order: reading `rowid > cursor` oldest first
never skips a row that commits later. Raw readings span the chunk tables of `storage.chunks`
(rowids stay global across them); events and alert changes (the audit trail of alerts) are
tables of their own with their own ids. A forwarder keeps one cursor per stream in `meta` and
moves it (`cursor_ops`, through the writer) only after upstream accepted what it read.

Retention deletes raw readings oldest first whether or not they were forwarded. Rowids have no
holes except the chunks' sentinel rows, so a jump in rowids past the cursor is rows that retention
took before they were sent: `ForwardBatch.dropped` counts them (a sentinel whose chunk was
already dropped is not known any more, so the count can be one high per such chunk, 1 in 10^6).

Readings come out grouped by SQLite, one per device and time with their `metric=value` pairs
joined: the per-row work happens in C, off the GIL, beside the gateway's ingest, instead of in
a Python loop per row (values as SQLite prints a REAL: 15 significant digits).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from storage.chunks import LIVE, SENTINEL, chunks
from storage.operations import SetMeta

# (device_id, ts, "metric=value,metric=value"): the readings of one device at one time
ForwardPoint = tuple[str, float, str]
# (id, device_id, kind, name, ts)
ForwardEvent = tuple[int, str, str, str, float]
# (audit id, ts, action, alert id, rule, severity, device_id)
ForwardAlertChange = tuple[int, float, str, int, str, str, str]


@dataclass(frozen=True, slots=True)
class ForwardCursor:
    """The last id of each stream that upstream accepted; None: the stream was never forwarded."""

    readings: int | None = None
    events: int | None = None
    alerts: int | None = None


@dataclass(frozen=True, slots=True)
class ForwardBatch:
    points: list[ForwardPoint]
    reading_rows: int  # the readings the points hold
    events: list[ForwardEvent]
    alert_changes: list[ForwardAlertChange]
    cursor: ForwardCursor  # where the cursor goes once upstream accepted this batch
    dropped: int  # readings retention deleted between the old cursor and this batch

    @property
    def rows(self) -> int:
        return self.reading_rows + len(self.events) + len(self.alert_changes)

    @property
    def largest(self) -> int:
        """Rows of the fullest stream: a batch of `limit` means more are waiting."""
        return max(self.reading_rows, len(self.events), len(self.alert_changes))


@dataclass(frozen=True, slots=True)
class Backlog:
    rows_behind: int
    oldest_unsent_ts: float | None  # the record's own time (device time for readings)


def _key(name: str, stream: str) -> str:
    return f"forward/{name}/{stream}"


def load_cursor(conn: sqlite3.Connection, name: str) -> ForwardCursor:
    found = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (f"forward/{name}/%",)))

    def get(stream: str) -> int | None:
        value = found.get(_key(name, stream))
        return None if value is None else int(value)

    return ForwardCursor(get("readings"), get("events"), get("alerts"))


def cursor_ops(name: str, cursor: ForwardCursor) -> list[SetMeta]:
    """The writes that persist `cursor` (submit them in one unit: the streams move together)."""
    streams = (("readings", cursor.readings), ("events", cursor.events), ("alerts", cursor.alerts))
    return [SetMeta(_key(name, stream), str(value)) for stream, value in streams if value is not None]


def read_batch(conn: sqlite3.Connection, cursor: ForwardCursor, limit: int) -> ForwardBatch:
    """Up to `limit` records of each stream after `cursor`, oldest first, in one snapshot."""
    conn.execute("BEGIN")
    try:
        points, reading_rows, reading_cursor, dropped = _readings_after(conn, cursor.readings, limit)
        events = conn.execute(
            "SELECT id, device_id, kind, name, ts FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (cursor.events or 0, limit),
        ).fetchall()
        changes = conn.execute(
            "SELECT audit.id, audit.ts, audit.action, alerts.id, alerts.rule, alerts.severity, alerts.device_id "
            "FROM audit JOIN alerts ON alerts.id = CAST(audit.entity_id AS INTEGER) "
            "WHERE audit.id > ? AND audit.entity = 'alert' ORDER BY audit.id LIMIT ?",
            (cursor.alerts or 0, limit),
        ).fetchall()
        # The alert stream's cursor passes audit rows of other entities too, up to the last read.
        last_audit = cursor.alerts
        if len(changes) == limit:
            last_audit = changes[-1][0]
        else:
            last_audit = conn.execute("SELECT MAX(id) FROM audit").fetchone()[0] or last_audit
    finally:
        conn.execute("COMMIT")
    return ForwardBatch(
        points=points,
        reading_rows=reading_rows,
        events=events,
        alert_changes=changes,
        cursor=ForwardCursor(
            reading_cursor,
            events[-1][0] if events else cursor.events,
            last_audit,
        ),
        dropped=dropped,
    )


# Oldest first within the rowid range; a sentinel row is a group of its own (device_id '').
_POINTS = """
SELECT MIN(rid), MAX(rid), COUNT(*), device_id, ts, group_concat(metric || '=' || CAST(value AS TEXT), ',')
FROM (SELECT rowid AS rid, device_id, metric, ts, value FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?)
GROUP BY device_id, ts ORDER BY MIN(rid)
"""


def _readings_after(
    conn: sqlite3.Connection, after: int | None, limit: int
) -> tuple[list[ForwardPoint], int, int | None, int]:
    """(points, readings in them, the last rowid read, readings dropped before them)."""
    all_chunks = chunks(conn)
    start = after
    if start is None:  # never forwarded: start at the oldest row held, nothing before it was dropped
        first = conn.execute(f"SELECT MIN(rowid) FROM {all_chunks[0].name}").fetchone()[0]
        start = (first or 1) - 1
    points: list[ForwardPoint] = []
    taken = 0  # rows read, sentinels included
    readings = 0
    last = start
    dropped = 0
    sentinels = {chunk.first_rowid for chunk in all_chunks if chunk.first_rowid > 0}
    for chunk in all_chunks:
        if taken >= limit:
            break
        if chunk.last_rowid is not None and chunk.last_rowid <= last:
            continue
        groups = conn.execute(_POINTS.format(table=chunk.name), (last, limit - taken)).fetchall()
        if not groups:
            continue
        # Rows are appended and deleted as prefixes: the only holes are before a chunk's first
        # row (retention, or the previous chunk's end) and its sentinel, always its first row.
        first = groups[0][0]
        if first > last + 1:
            dropped += first - last - 1 - sum(1 for s in sentinels if last < s < first)
        for _, newest, count, device_id, ts, fields in groups:
            last = max(last, newest)
            taken += count
            if device_id != SENTINEL:
                points.append((device_id, ts, fields))
                readings += count
    return points, readings, (last if taken or after is not None else None), dropped


def backlog(conn: sqlite3.Connection, cursor: ForwardCursor) -> Backlog:
    """How far behind the forwarder is: records after the cursor, and the oldest one's time."""
    conn.execute("BEGIN")
    try:
        all_chunks = chunks(conn)
        newest = conn.execute(f"SELECT MAX(rowid) FROM {LIVE}").fetchone()[0] or 0
        after = cursor.readings
        if after is None:
            first = conn.execute(f"SELECT MIN(rowid) FROM {all_chunks[0].name}").fetchone()[0]
            after = (first or 1) - 1
        oldest: tuple[int | None, float | None] = (None, None)
        for chunk in all_chunks:
            if chunk.last_rowid is None or chunk.last_rowid > after:
                oldest = conn.execute(
                    f"SELECT MIN(rowid), ts FROM {chunk.name} WHERE rowid > ? AND device_id <> ?",
                    (after, SENTINEL),
                ).fetchone()
                if oldest[0] is not None:
                    break
        # Rows retention took past the cursor are not behind: the sink counts them as dropped.
        base = after if oldest[0] is None else max(after, oldest[0] - 1)
        sentinels = sum(1 for c in all_chunks if c.first_rowid > base)
        readings_behind = max(0, newest - base - sentinels)
        events_behind, events_ts = conn.execute(
            "SELECT COUNT(*), MIN(ts) FROM events WHERE id > ?", (cursor.events or 0,)
        ).fetchone()
        alerts_behind, alerts_ts = conn.execute(
            "SELECT COUNT(*), MIN(ts) FROM audit WHERE id > ? AND entity = 'alert'", (cursor.alerts or 0,)
        ).fetchone()
    finally:
        conn.execute("COMMIT")
    times = [t for t in (oldest[1], events_ts, alerts_ts) if t is not None]
    return Backlog(readings_behind + events_behind + alerts_behind, min(times) if times else None)
