"""The embedded store: one SQLite file in WAL mode.

Every write is a typed operation (`storage.operations`) applied by the one `SqliteWriter` on its
thread, so the event loop never waits for the disk. Writes made inside `unit()` commit together
in one transaction, and the unit's future completes when they have: the ingest path acknowledges
a batch of QoS 1 messages that way, an operator's action answers that way. Reads use a small
pool of connections, which WAL lets run beside the writer and each other. History (rollups,
retention, disk budget) is kept by `storage.history`, queried by `storage.queries`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from analytics.alerts import Alert, AlertState, Severity
from analytics.device_tracker import DeviceStatus
from analytics.records import DeviceState
from analytics.sessions import DeviceSession, Lane, SeqWindow, SessionChanges
from analytics.uptime import WINDOWS_S, Span, UptimeHistory
from storage import queries
from storage.checkpoint import WAL_RESTART_BYTES, Checkpointer
from storage.chunks import SENTINEL, chunks, union
from storage.connection import connect
from storage.deadband import Deadband, DeadbandFilter
from storage.history import DiskUsage, HistoryMaintainer, RetentionPolicy
from storage.operations import (
    AppendAudit,
    BeatGateway,
    EnqueueNotification,
    InsertDeadLetter,
    InsertEvent,
    InsertReadings,
    InsertStatusChange,
    Maintain,
    ReadingRow,
    SaveAlert,
    SaveDeviceStates,
    SaveRuleState,
    SaveSeqWindows,
    SaveSessionFlags,
    SetMeta,
    Transaction,
)
from storage.readpool import ReadPool
from storage.schema import migrate
from storage.transition_cache import TransitionCache
from storage.writer import RefusedWrite, SqliteWriter, WriteOp

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["AuditEntry", "DeadLetter", "ReadingRow", "SqliteStore", "WriteUnit"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: float
    source: str
    device_id: str
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts: float
    actor: str
    entity: str
    entity_id: str
    action: str
    detail: str


@dataclass(eq=False)
class WriteUnit:
    """Writes that commit together; `future` completes once they have (set when the unit closes)."""

    urgent: bool
    ops: list[WriteOp] = field(default_factory=list)
    rows: int = 0
    future: Future[None] = field(default_factory=Future)


_ALERT_COLUMNS = (
    "id, rule, subject, device_id, severity, state, condition_active, first_seen, last_seen, count, "
    "acknowledged_at, acknowledged_by, cleared_at, resolved_at, resolved_by, resolution_note, details, "
    "version"
)
_SEQ_COLUMNS = {Lane.TELEMETRY.value: "telemetry_seq", Lane.EVENT.value: "event_seq"}


class SqliteStore:
    """Readings, events, device state, dead letters, alerts and audit in one SQLite file.

    Args:
        path: database file; created with its schema when missing.
        retention_days: raw readings older than this are deleted once rolled up.
        rollup_retention_days: 1-minute rollups older than this are deleted.
        rollup_1h_retention_days: 1-hour rollups older than this are deleted.
        disk_budget_mb: while the store uses more, raw readings go oldest first, before retention.
        deadband: per metric, store a reading only when it moved or went quiet (`DeadbandFilter`).
    """

    def __init__(
        self,
        path: Path,
        retention_days: float = 30.0,
        rollup_retention_days: float = 90.0,
        rollup_1h_retention_days: float = 1095.0,
        disk_budget_mb: float | None = None,
        deadband: Mapping[str, Deadband] | None = None,
    ) -> None:
        self.path = path
        self.retention = RetentionPolicy(
            raw_days=retention_days,
            rollup_1m_days=rollup_retention_days,
            rollup_1h_days=rollup_1h_retention_days,
            disk_budget_bytes=None if disk_budget_mb is None else int(disk_budget_mb * 1e6),
        )
        self.history = HistoryMaintainer(path, self.retention)
        self._deadband = DeadbandFilter(deadband or {})
        self.readings_deadbanded = 0
        self._readers: ReadPool | None = None
        self._transitions = TransitionCache(max(WINDOWS_S.values()))
        self._unit: WriteUnit | None = None
        self._unit_thread = 0
        self.checkpointer = Checkpointer(self._connect)
        self.writer = SqliteWriter(
            self._connect,
            _HANDLERS | {Maintain: self._apply_maintain},
            _dead_letter_of,
            between=lambda conn: self.checkpointer.catch_up(conn),
        )

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        migrate(conn)
        conn.close()
        self._transitions.reset()  # a restore may have replaced the file since the last open
        self._readers = ReadPool(self._connect)
        self.writer.start()
        self.checkpointer.start()

    def close(self) -> None:
        """Commit everything submitted, then stop the writer."""
        self.writer.stop()
        self.checkpointer.stop()
        if self._readers is not None:
            self._readers.close()
            self._readers = None

    def _connect(self) -> sqlite3.Connection:
        # QoS 1 messages are acknowledged only after their commit (SPEC 10: not lost to a power cut).
        conn = connect(self.path)
        # The readings indexes outgrow SQLite's default 2 MB page cache within minutes; 64 MB keeps
        # their hot pages in memory and insert speed flat as the file grows.
        conn.execute("PRAGMA cache_size=-65536")
        # Debian builds SQLite with SECURE_DELETE: each page a DROP frees is zeroed and written, so
        # retention's drop of a 1M-row chunk wrote 100 MB of WAL (and its checkpoint as much) and
        # held the writer ~210 ms. FAST zeroes deleted rows only in pages still in use; freed pages
        # keep old readings until reused, which new chunks do within the hour.
        conn.execute("PRAGMA secure_delete=FAST")
        # Checkpoints run on their own thread (storage.checkpoint), never inside the writer's commits.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_RESTART_BYTES}")
        return conn

    # -- writes (any thread; applied in order by the writer) ------------------------------------

    @contextmanager
    def unit(self, urgent: bool = False) -> Iterator[WriteUnit]:
        """Collect the writes made in this block (on this thread) into one transaction.

        Nested units join the outer one. The unit is submitted when the block ends, also when
        it raises: what was done in memory before the error is written, not half-forgotten.
        """
        if self._unit is not None and self._unit_thread == threading.get_ident():
            yield self._unit
            return
        unit = WriteUnit(urgent)
        self._unit, self._unit_thread = unit, threading.get_ident()
        try:
            yield unit
        finally:
            self._unit = None
            future = self.writer.submit(unit.ops, unit.rows, urgent=unit.urgent)
            future.add_done_callback(lambda done: _copy_outcome(done, unit.future))

    def write(self, op: WriteOp, rows: int = 1, urgent: bool = False) -> Future[Any]:
        """Queue `op` in the open unit (its future) or on its own; the future completes on commit."""
        unit = self._unit
        if unit is not None and self._unit_thread == threading.get_ident():
            unit.ops.append(op)
            unit.rows += rows
            return unit.future
        return self.writer.submit((op,), rows, urgent=urgent)

    def transact(self, apply: Callable[[sqlite3.Connection], T], timeout_s: float = 30.0) -> T:
        """Run `apply` in the writer's transaction and return its result once committed.

        Blocks the calling thread: for repositories used from worker threads (tickets, outbox),
        never from the event loop.
        """
        if self._unit is not None and self._unit_thread == threading.get_ident():
            raise RuntimeError("transact() inside a unit would wait for a commit that has not been submitted")
        results = self.writer.submit((Transaction(apply),), urgent=True).result(timeout_s)
        return cast(T, results[0])

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read on the store's read connection (committed data only)."""
        return self._read(sql, params)

    def read(self, apply: Callable[[sqlite3.Connection], T]) -> T:
        """`apply` on a read connection of the pool (committed data; it may open its own snapshot)."""
        with self._reading() as conn:
            return apply(conn)

    def uptime_history(
        self, window: Span, beat_interval_s: float, device_ids: Sequence[str]
    ) -> UptimeHistory:
        """`storage.uptime.read_uptime_history` of committed data, served from the store's cache of
        the last month of transitions."""
        return self._transitions.history(self.read, window, beat_interval_s, device_ids)

    def add_readings(self, rows: Sequence[ReadingRow]) -> None:
        """Store the readings the deadband keeps (rules have seen them all)."""
        kept = self._deadband.filter(rows)
        self.readings_deadbanded += len(rows) - len(kept)
        if kept:
            self.write(InsertReadings(kept), rows=len(kept))

    @property
    def backlog_rows(self) -> int:
        """Rows submitted but not yet committed: what a crash now would leave to the broker."""
        return self.writer.backlog_rows

    @property
    def healthy(self) -> bool:
        """False while writes fail (disk full, I/O error); ingest pauses until they succeed."""
        return self.writer.healthy

    def add_event(self, device_id: str, kind: str, name: str, ts: float, attrs: Mapping[str, Any]) -> None:
        self.write(InsertEvent(device_id, kind, name, ts, json.dumps(attrs, ensure_ascii=False, default=str)))

    def add_status_change(self, device_id: str, online: bool, ts: float, reason: str) -> None:
        self.write(InsertStatusChange(device_id, online, ts, reason))

    def beat(self, started_at: float, ts: float) -> None:
        """The gateway's heartbeat: the run that began at `started_at` is alive at `ts`."""
        self.write(BeatGateway(started_at, ts))

    def add_dead_letter(
        self, received_at: float, source: str, device_id: str, reason: str, detail: str, payload: bytes
    ) -> None:
        self.write(InsertDeadLetter(received_at, source, device_id, reason, detail, payload[:65536]))

    def save_device_states(self, rows: Iterable[DeviceStatus]) -> None:
        values = tuple(
            (
                row.device_id,
                row.kind,
                None if row.online is None else int(row.online),
                row.last_seen,
                row.state_changed_at,
                json.dumps(dict(row.last_values)),
            )
            for row in rows
        )
        if values:
            self.write(SaveDeviceStates(values), rows=len(values))

    def save_sessions(self, changes: SessionChanges) -> None:
        """Persist what changed of the device sessions (in the open unit: with what they guard)."""
        for lane, rows in changes.windows.items():
            if lane is not Lane.STATUS and rows:
                self.write(SaveSeqWindows(lane.value, tuple(rows)), rows=len(rows))
        if changes.flags:
            flags = tuple(
                (
                    session.device_id,
                    int(session.clock_skewed),
                    session.status.value if session.status is not None else None,
                    session.status_ts,
                )
                for session in changes.flags
            )
            self.write(SaveSessionFlags(flags), rows=len(flags))

    def sessions(self) -> list[DeviceSession]:
        rows = self._read(
            "SELECT device_id, telemetry_seq, event_seq, clock_skewed, status, status_ts FROM device_sessions"
        )
        return [
            DeviceSession(
                device_id,
                {
                    lane: SeqWindow.load(text)
                    for lane, text in ((Lane.TELEMETRY, telemetry), (Lane.EVENT, event))
                    if text
                },
                bool(skewed),
                DeviceState(status) if status else None,
                status_ts,
            )
            for device_id, telemetry, event, skewed, status, status_ts in rows
        ]

    def save_alert(self, alert: Alert) -> None:
        self.write(SaveAlert(_alert_row(alert)))

    def audit(self, ts: float, actor: str, entity: str, entity_id: str, action: str, detail: str) -> None:
        self.write(AppendAudit(ts, actor, entity, entity_id, action, detail))

    def set_meta(self, key: str, value: str) -> None:
        self.write(SetMeta(key, value))

    def save_rule_state(self, saved_at: float, state: bytes) -> None:
        self.write(SaveRuleState(saved_at, state))

    def rule_state(self) -> bytes | None:
        rows = self._read("SELECT state FROM rule_state ORDER BY saved_at DESC LIMIT 1")
        return bytes(rows[0][0]) if rows else None

    def maintain(self, now: float) -> None:
        """Plan a pass of rollups, retention and the disk budget on a reader, and have the writer
        apply it.

        The pass covers what was submitted before it; the wait for that and the planning reads
        (tens of ms) are the calling thread's, not the writer's: call it off the event loop.
        """
        with contextlib.suppress(TimeoutError):  # a backlog: what is still queued is the next pass's
            self.flush()
        with self._reading() as conn:
            plan = self.history.plan(conn, now)
        # Two transactions, so that urgent writes (an operator's acknowledge) go in between.
        folded = self.write(Maintain(plan, "fold")).result(timeout=120)
        if folded[0]:
            self.write(Maintain(plan, "retire")).result(timeout=120)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Block until everything submitted so far is committed (tests and shutdown)."""
        self.writer.submit(()).result(timeout_s)

    @property
    def rows_written(self) -> int:
        return self.writer.stats.operations

    @property
    def write_errors(self) -> int:
        return self.writer.stats.write_errors

    def _apply_maintain(self, conn: sqlite3.Connection, op: Maintain) -> object:
        """Apply one stage of a bounded pass of rollups, retention and the disk budget
        (`storage.history`); what it returns says whether it applied."""
        if op.stage == "fold":
            return self.history.fold(conn, op.plan)
        return self.history.retire(conn, op.plan)

    # -- reads (any thread) -----------------------------------------------------------------------

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        with self._reading() as conn:
            return conn.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        if self._readers is None:
            raise RuntimeError("store is not open")
        with self._readers.connection() as conn:
            yield conn

    def disk_usage(self, now: float | None = None) -> DiskUsage:
        """Bytes used against the budget, the write rate and the days of history that holds."""
        with self._reading() as conn:
            return self.history.disk_usage(conn, time.time() if now is None else now)

    def readings(
        self,
        device_id: str,
        metric: str,
        since: float,
        until: float,
        step_s: float | None = None,
        limit: int = 10000,
    ) -> list[dict[str, float]]:
        """Raw samples, or per-step min/max/avg/last from the tier the step and age call for."""
        with self._reading() as conn:
            conn.execute("BEGIN")  # one snapshot: the chunks, the rollups and the cursor between them
            try:
                if step_s is None:
                    return queries.read_raw(conn, device_id, metric, since, until, limit)
                return queries.read_steps(conn, device_id, metric, since, until, step_s, limit)
            finally:
                conn.execute("COMMIT")

    def device_states(self) -> list[DeviceStatus]:
        rows = self._read("SELECT * FROM device_state ORDER BY device_id")
        return [
            DeviceStatus(
                device_id=row[0],
                kind=row[1],
                online=None if row[2] is None else bool(row[2]),
                last_seen=row[3],
                state_changed_at=row[4],
                last_values=json.loads(row[6]),
            )
            for row in rows
        ]

    def alerts(
        self,
        states: Sequence[AlertState] = (),
        severities: Sequence[Severity] = (),
        since: float | None = None,
        device_id: str | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        clauses: list[str] = []
        params: list[Any] = []
        if states:
            clauses.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(state.value for state in states)
        if severities:
            clauses.append(f"severity IN ({', '.join('?' * len(severities))})")
            params.extend(severity.value for severity in severities)
        if since is not None:
            clauses.append("last_seen >= ?")
            params.append(since)
        if device_id is not None:
            clauses.append("device_id = ?")
            params.append(device_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(
            f"SELECT {_ALERT_COLUMNS} FROM alerts {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [_alert_from_row(row) for row in rows]

    def alert(self, alert_id: int) -> Alert | None:
        rows = self._read(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return _alert_from_row(rows[0]) if rows else None

    def open_alerts(self) -> list[Alert]:
        rows = self._read(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE state != 'resolved' ORDER BY id")
        return [_alert_from_row(row) for row in rows]

    def max_alert_id(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM alerts")[0][0])

    def audit_trail(self, entity: str, entity_id: str) -> list[AuditEntry]:
        rows = self._read(
            "SELECT ts, actor, entity, entity_id, action, detail FROM audit WHERE entity = ? AND entity_id = ? "
            "ORDER BY ts, id",  # by time: an operator's write can commit before an earlier ingest one
            (entity, entity_id),
        )
        return [AuditEntry(*row) for row in rows]

    def dead_letters(self, reason: str | None = None, limit: int = 100) -> list[DeadLetter]:
        if reason is None:
            rows = self._read("SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._read(
                "SELECT * FROM dead_letters WHERE reason = ? ORDER BY id DESC LIMIT ?", (reason, limit)
            )
        return [DeadLetter(*row) for row in rows]

    def unknown_devices(self) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT device_id, COUNT(*), MIN(received_at), MAX(received_at), MAX(source) FROM dead_letters "
            "WHERE reason = 'unknown_device' GROUP BY device_id ORDER BY device_id"
        )
        return [
            {
                "device_id": row[0],
                "messages": row[1],
                "first_seen": row[2],
                "last_seen": row[3],
                "last_topic": row[4],
            }
            for row in rows
        ]

    def count(self, table: str) -> int:
        if table not in {
            "readings",
            "events",
            "dead_letters",
            "alerts",
            "audit",
            "status_changes",
            "rollups_1m",
            "rollups_1h",
        }:
            raise ValueError(f"unknown table {table!r}")
        if table == "readings":  # every chunk, without their sentinels
            with self._reading() as conn:
                conn.execute("BEGIN")
                try:
                    tables = [chunk.name for chunk in chunks(conn)]
                    sql = f"SELECT COUNT(*) FROM ({union(tables, 'rowid', 'device_id <> ' + repr(SENTINEL))})"
                    return int(conn.execute(sql).fetchone()[0])
                finally:
                    conn.execute("COMMIT")
        return int(self._read(f"SELECT COUNT(*) FROM {table}")[0][0])

    def events(self, device_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT name, ts, attrs FROM events WHERE device_id = ? ORDER BY id DESC LIMIT ?",
            (device_id, limit),
        )
        return [{"name": name, "ts": ts, "attrs": json.loads(attrs)} for name, ts, attrs in rows]


_ROWS_PER_INSERT = 1024


@functools.cache
def _multi_row_insert(rows: int) -> str:
    # OR FAIL, not the default ABORT: to undo an ABORTed statement's earlier rows, SQLite writes
    # each page the statement touches to a statement journal (a temporary file) first. A
    # 1,024-row insert touches a leaf of the index per series, ~4 MB: 2.3 GB of temporary-file
    # writes per 500k readings, half the insert's CPU. Nothing needs that undo: a failed
    # statement fails its whole transaction (or savepoint) in the writer, which rolls it back.
    return "INSERT OR FAIL INTO readings VALUES " + ", ".join(["(?, ?, ?, ?)"] * rows)


def _insert_readings(conn: sqlite3.Connection, readings: Sequence[ReadingRow]) -> None:
    """Insert in multi-row statements (1,024 rows, then powers of two for the rest): one
    sqlite3_step per statement instead of per row.

    The sqlite3 module lets go of the GIL around every step; per row, that hand-over to the
    event loop thread and back cost more than the insert itself. Powers of two keep the number
    of distinct statements (and SQLite's statement cache) small.
    """
    start, total = 0, len(readings)
    size = _ROWS_PER_INSERT
    while start < total:
        while size > total - start:
            size //= 2
        chunk = readings[start : start + size]
        conn.execute(_multi_row_insert(size), [value for row in chunk for value in row])
        start += size


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    return (
        alert.id,
        alert.rule,
        alert.subject,
        alert.device_id,
        alert.severity.value,
        alert.state.value,
        int(alert.condition_active),
        alert.first_seen,
        alert.last_seen,
        alert.count,
        alert.acknowledged_at,
        alert.acknowledged_by,
        alert.cleared_at,
        alert.resolved_at,
        alert.resolved_by,
        alert.resolution_note,
        json.dumps(dict(alert.details), ensure_ascii=False, default=str),
        alert.version,
    )


def _alert_from_row(row: Sequence[Any]) -> Alert:
    return Alert(
        id=row[0],
        rule=row[1],
        subject=row[2],
        device_id=row[3],
        severity=Severity(row[4]),
        condition_active=bool(row[6]),
        first_seen=row[7],
        last_seen=row[8],
        count=row[9],
        acknowledged_at=row[10],
        acknowledged_by=row[11],
        cleared_at=row[12],
        resolved_at=row[13],
        resolved_by=row[14],
        resolution_note=row[15],
        details=json.loads(row[16]),
        version=row[17],
    )


def _copy_outcome(done: Future[Any], target: Future[None]) -> None:
    error = done.exception()
    if error is None:
        target.set_result(None)
    else:
        target.set_exception(error)


def _insert_readings_op(conn: sqlite3.Connection, op: InsertReadings) -> None:
    _insert_readings(conn, op.rows)


def _insert_event(conn: sqlite3.Connection, op: InsertEvent) -> None:
    conn.execute(
        "INSERT INTO events (device_id, kind, name, ts, attrs) VALUES (?, ?, ?, ?, ?)",
        (op.device_id, op.kind, op.name, op.ts, op.attrs_json),
    )


def _insert_status_change(conn: sqlite3.Connection, op: InsertStatusChange) -> None:
    conn.execute(
        "INSERT INTO status_changes (device_id, online, ts, reason) VALUES (?, ?, ?, ?)",
        (op.device_id, int(op.online), op.ts, op.reason),
    )


def _beat_gateway(conn: sqlite3.Connection, op: BeatGateway) -> None:
    conn.execute(
        "INSERT INTO gateway_runs (started_at, last_beat) VALUES (?, ?) "
        "ON CONFLICT (started_at) DO UPDATE SET last_beat = MAX(last_beat, excluded.last_beat)",
        (op.started_at, op.ts),
    )


# Dead letters are kept for diagnosis, not forever: a device publishing 64 KiB of garbage as fast
# as the broker takes it would otherwise fill the disk. Only the newest rows are kept (at most
# about 650 MB); the counters keep the totals. Every PRUNE_EVERY-th insert deletes what is beyond,
# a bounded chunk at a time so a first prune of an old, large table never stalls the writer.
MAX_DEAD_LETTER_ROWS = 10_000
DEAD_LETTER_PRUNE_EVERY = 1000
_DEAD_LETTER_PRUNE_CHUNK = 5000


def _insert_dead_letter(conn: sqlite3.Connection, op: InsertDeadLetter) -> None:
    cursor = conn.execute(
        "INSERT INTO dead_letters (received_at, source, device_id, reason, detail, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (op.received_at, op.source, op.device_id, op.reason, op.detail, op.payload),
    )
    newest = cursor.lastrowid or 0
    if newest % DEAD_LETTER_PRUNE_EVERY == 0:
        conn.execute(
            "DELETE FROM dead_letters WHERE id IN "
            "(SELECT id FROM dead_letters WHERE id <= ? ORDER BY id LIMIT ?)",
            (newest - MAX_DEAD_LETTER_ROWS, _DEAD_LETTER_PRUNE_CHUNK),
        )


def _save_device_states(conn: sqlite3.Connection, op: SaveDeviceStates) -> None:
    conn.executemany(
        "INSERT INTO device_state (device_id, kind, online, last_seen, state_changed_at, last_values) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind, "
        "online = excluded.online, last_seen = excluded.last_seen, "
        "state_changed_at = excluded.state_changed_at, last_values = excluded.last_values",
        op.rows,
    )


def _save_seq_windows(conn: sqlite3.Connection, op: SaveSeqWindows) -> None:
    column = _SEQ_COLUMNS[op.lane]  # a closed set: the column name is ours, not the device's
    _upsert_many(
        conn,
        f"INSERT INTO device_sessions (device_id, {column}) VALUES ",
        f" ON CONFLICT (device_id) DO UPDATE SET {column} = excluded.{column}",
        op.rows,
        2,
    )


def _save_session_flags(conn: sqlite3.Connection, op: SaveSessionFlags) -> None:
    _upsert_many(
        conn,
        "INSERT INTO device_sessions (device_id, clock_skewed, status, status_ts) VALUES ",
        " ON CONFLICT (device_id) DO UPDATE SET clock_skewed = excluded.clock_skewed, "
        "status = excluded.status, status_ts = excluded.status_ts",
        op.rows,
        4,
    )


def _upsert_many(
    conn: sqlite3.Connection, head: str, tail: str, rows: Sequence[tuple[Any, ...]], width: int
) -> None:
    """One statement per 200 rows (one step, one GIL hand-over), as for readings."""
    placeholders = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), 200):
        chunk = rows[start : start + 200]
        conn.execute(
            f"{head}{', '.join([placeholders] * len(chunk))}{tail}",
            [value for row in chunk for value in row],
        )


def _save_alert(conn: sqlite3.Connection, op: SaveAlert) -> None:
    updates = ", ".join(f"{name} = excluded.{name}" for name in _ALERT_COLUMNS.split(", ")[1:])
    conn.execute(
        f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ({', '.join('?' * 18)}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE excluded.version > alerts.version",
        op.row,
    )


def _append_audit(conn: sqlite3.Connection, op: AppendAudit) -> None:
    conn.execute(
        "INSERT INTO audit (ts, actor, entity, entity_id, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (op.ts, op.actor, op.entity, op.entity_id, op.action, op.detail),
    )


def _save_rule_state(conn: sqlite3.Connection, op: SaveRuleState) -> None:
    conn.execute("DELETE FROM rule_state")
    conn.execute("INSERT INTO rule_state VALUES (?, ?)", (op.saved_at, op.state))


def _set_meta(conn: sqlite3.Connection, op: SetMeta) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (op.key, op.value))


def _enqueue_notification(conn: sqlite3.Connection, op: EnqueueNotification) -> None:
    conn.execute(
        "INSERT INTO notify_outbox (channel, body, alert_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
        (op.channel, op.body, op.alert_id, op.created_at, op.created_at),
    )


def _run_transaction(conn: sqlite3.Connection, op: Transaction) -> Any:
    return op.apply(conn)


_HANDLERS: dict[type, Any] = {
    InsertReadings: _insert_readings_op,
    InsertEvent: _insert_event,
    InsertStatusChange: _insert_status_change,
    BeatGateway: _beat_gateway,
    InsertDeadLetter: _insert_dead_letter,
    SaveDeviceStates: _save_device_states,
    SaveSeqWindows: _save_seq_windows,
    SaveSessionFlags: _save_session_flags,
    SaveAlert: _save_alert,
    AppendAudit: _append_audit,
    SaveRuleState: _save_rule_state,
    SetMeta: _set_meta,
    EnqueueNotification: _enqueue_notification,
    Transaction: _run_transaction,
}


def _dead_letter_of(refused: RefusedWrite) -> list[WriteOp]:
    """What SQLite refused is kept where bad input goes, with the reason, never just logged."""
    op = refused.op
    device_id = str(getattr(op, "device_id", "") or (getattr(op, "rows", None) or [("",)])[0][0])
    return [
        InsertDeadLetter(
            time.time(), "store", device_id, "store_refused", refused.error, repr(op)[:65536].encode()
        )
    ]
