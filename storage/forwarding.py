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

Readings come out as text that SQLite builds: one line per device and time, `<prefix>
<metric=value,...> <timestamp>`, all of a batch's lines joined into one string. The per-row work
(grouping, formatting, the prefix of each device) happens in C, off the GIL, beside the gateway's
ingest; Python handles one string a batch, not a tuple a row (values as SQLite prints a REAL: 15
significant digits). The prefixes come from a small in-memory database the read connections
attach (`ReadingLines`), not from a Python function: SQLite would take the GIL for each point,
and each time wait up to the interpreter's switch interval for a busy ingest thread to let go
(measured beside a busy Python thread: 8.6 us a row with a function, 3.7 with the attached
table; alone, 1.2 and 1.4).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from storage.chunks import LIVE, SENTINEL, chunks
from storage.operations import SetMeta

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
    reading_lines: str  # one line per device and time, joined by newlines ("" if none)
    reading_rows: int  # the readings the lines hold
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


@dataclass(frozen=True, slots=True)
class LineFormat:
    """What SQLite writes for a point: `<prefix> metric=value,... <round(ts x ts_scale)>`.

    Args:
        prefixes: device id -> the text before its fields (a sink's measurement and tag set).
        unknown_prefix: for a device not in `prefixes`, followed by its id, escaped as a tag value.
        ts_scale: timestamp units a second (1000 for milliseconds).
    """

    prefixes: Mapping[str, str]
    unknown_prefix: str
    ts_scale: int


# An InfluxDB tag value's escapes (backslash first: the others add backslashes).
_ESCAPED_DEVICE = (
    "replace(replace(replace(replace(r.device_id, '\\', '\\\\'), ',', '\\,'), '=', '\\='), ' ', '\\ ')"
)


class ReadingLines:
    """A `LineFormat` in an in-memory database of its own that read connections attach.

    A connection of the store's read pool is read-only (`query_only`), so it cannot hold a temp
    table; it can attach a shared-cache in-memory database, which `_keeper` creates and keeps.
    """

    def __init__(self, line_format: LineFormat) -> None:
        self.line_format = line_format
        self.schema = f"forward_{uuid.uuid4().hex}"
        self._uri = f"file:{self.schema}?mode=memory&cache=shared"
        self._keeper = sqlite3.connect(self._uri, uri=True, check_same_thread=False, isolation_level=None)
        self._keeper.execute(
            "CREATE TABLE series (device_id TEXT PRIMARY KEY, prefix TEXT NOT NULL) WITHOUT ROWID"
        )
        self._keeper.executemany("INSERT INTO series VALUES (?, ?)", line_format.prefixes.items())

    def attach(self, conn: sqlite3.Connection) -> None:
        """Attach the prefixes to `conn` (outside a transaction), unless it has them already."""
        if any(row[1] == self.schema for row in conn.execute("PRAGMA database_list")):
            return
        conn.execute("ATTACH DATABASE ? AS " + self.schema, (self._uri,))
        # A SQLite built without URI filenames would attach an empty file of that name instead.
        if conn.execute(f"SELECT COUNT(*) FROM {self.schema}.series").fetchone()[0] != len(
            self.line_format.prefixes
        ):
            raise RuntimeError(f"{self._uri} did not attach as the in-memory prefix table")

    def close(self) -> None:
        self._keeper.close()  # connections that attached it keep it until they close


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


def read_batch(
    conn: sqlite3.Connection, cursor: ForwardCursor, limit: int, lines: ReadingLines
) -> ForwardBatch:
    """Up to `limit` records of each stream after `cursor`, oldest first, in one snapshot."""
    lines.attach(conn)
    conn.execute("BEGIN")
    try:
        text, reading_rows, reading_cursor, dropped = _readings_after(conn, cursor.readings, limit, lines)
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
        reading_lines=text,
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


# The lines of the rows after ?1 (at most ?2), oldest first, with the rowids they span; a
# sentinel row is a group of its own (device_id ''), counted among the rows but given no line.
_LINES = """
SELECT MIN(first), MAX(last), SUM(n), SUM(readings), group_concat(line, char(10)) FROM (
    SELECT MIN(rid) AS first, MAX(rid) AS last, COUNT(*) AS n,
        CASE WHEN device_id = '' THEN 0 ELSE COUNT(*) END AS readings,
        CASE WHEN device_id = '' THEN NULL ELSE
            COALESCE((SELECT prefix FROM {schema}.series AS s WHERE s.device_id = r.device_id), ?3 || {escaped})
            || ' ' || group_concat(metric || '=' || CAST(value AS TEXT), ',')
            || ' ' || CAST(ts * ?4 + 0.5 AS INTEGER)
        END AS line
    FROM (SELECT rowid AS rid, device_id, metric, ts, value FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2) AS r
    GROUP BY device_id, ts ORDER BY first
)
"""


def _readings_after(
    conn: sqlite3.Connection, after: int | None, limit: int, lines: ReadingLines
) -> tuple[str, int, int | None, int]:
    """(the lines, readings in them, the last rowid read, readings dropped before them)."""
    all_chunks = chunks(conn)
    start = after
    if start is None:  # never forwarded: start at the oldest row held, nothing before it was dropped
        first = conn.execute(f"SELECT MIN(rowid) FROM {all_chunks[0].name}").fetchone()[0]
        start = (first or 1) - 1
    texts: list[str] = []
    taken = 0  # rows read, sentinels included
    readings = 0
    last = start
    dropped = 0
    sentinels = {chunk.first_rowid for chunk in all_chunks if chunk.first_rowid > 0}
    line_format = lines.line_format
    for chunk in all_chunks:
        if taken >= limit:
            break
        if chunk.last_rowid is not None and chunk.last_rowid <= last:
            continue
        sql = _LINES.format(schema=lines.schema, escaped=_ESCAPED_DEVICE, table=chunk.name)
        first, newest, count, held, text = conn.execute(
            sql, (last, limit - taken, line_format.unknown_prefix, line_format.ts_scale)
        ).fetchone()
        if first is None:
            continue
        # Rows are appended and deleted as prefixes: the only holes are before a chunk's first
        # row (retention, or the previous chunk's end) and its sentinel, always its first row.
        if first > last + 1:
            dropped += first - last - 1 - sum(1 for s in sentinels if last < s < first)
        last = max(last, newest)
        taken += count
        readings += held
        if text:
            texts.append(text)
    return "\n".join(texts), readings, (last if taken or after is not None else None), dropped


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
