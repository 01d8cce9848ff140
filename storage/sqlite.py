"""The embedded store: one SQLite file in WAL mode.

Writes are queued and applied by one writer thread in batched transactions, so the event loop
never waits for the disk; callbacks queued with `after_commit` run once everything queued before
them is durable (the MQTT driver acknowledges QoS 1 messages that way). Reads use their own
connections from a small pool, which WAL lets run beside the writer and each other. History
(rollups, retention, disk budget) is kept by `storage.history`, queried by `storage.queries`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics.alerts import Alert, AlertState, Severity
from analytics.device_tracker import DeviceStatus
from storage import queries
from storage.chunks import SENTINEL, chunks, union
from storage.connection import connect
from storage.deadband import Deadband, DeadbandFilter
from storage.deadband import ReadingRow as ReadingRow
from storage.history import DiskUsage, HistoryMaintainer, MaintenancePlan, RetentionPolicy
from storage.readpool import ReadPool
from storage.schema import migrate

log = logging.getLogger(__name__)


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


_STOP = object()
_ALERT_COLUMNS = (
    "id, rule, subject, device_id, severity, state, condition_active, first_seen, last_seen, count, "
    "acknowledged_at, acknowledged_by, cleared_at, resolved_at, resolved_by, resolution_note, details"
)


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
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers: ReadPool | None = None
        self.rows_written = 0
        self.write_errors = 0
        self.batches = 0
        # Written by one thread each, so reading their difference needs no lock.
        self._readings_queued = 0
        self._readings_done = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        migrate(conn)
        conn.close()
        self._readers = ReadPool(self._connect)
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Flush everything queued, then stop the writer."""
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
            self._writer = None
        if self._readers is not None:
            self._readers.close()
            self._readers = None

    def _connect(self) -> sqlite3.Connection:
        # QoS 1 messages are acknowledged only after their commit (SPEC 10: not lost to a power cut).
        conn = connect(self.path)
        # The readings indexes outgrow SQLite's default 2 MB page cache within minutes; 64 MB keeps
        # their hot pages in memory and insert speed flat as the file grows.
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    # -- writes (any thread; applied in order by the writer) ------------------------------------

    def add_readings(self, rows: Sequence[ReadingRow]) -> None:
        """Queue the readings the deadband keeps (call from one thread: the gateway's loop)."""
        kept = self._deadband.filter(rows)
        self.readings_deadbanded += len(rows) - len(kept)
        if not kept:
            return
        rows = kept
        self._readings_queued += len(rows)
        self._queue.put(("readings", rows))

    @property
    def backlog_readings(self) -> int:
        """Readings queued but not yet committed: what a crash now would leave to the broker."""
        return self._readings_queued - self._readings_done

    @property
    def backlog_operations(self) -> int:
        """Writes of any kind queued and not yet taken by the writer (a batch of readings is one)."""
        return self._queue.qsize()

    def add_event(self, device_id: str, kind: str, name: str, ts: float, attrs: Mapping[str, Any]) -> None:
        self._queue.put(
            ("event", (device_id, kind, name, ts, json.dumps(attrs, ensure_ascii=False, default=str)))
        )

    def add_status_change(self, device_id: str, online: bool, ts: float, reason: str) -> None:
        self._queue.put(("status", (device_id, int(online), ts, reason)))

    def add_dead_letter(
        self, received_at: float, source: str, device_id: str, reason: str, detail: str, payload: bytes
    ) -> None:
        self._queue.put(("dead", (received_at, source, device_id, reason, detail, payload[:65536])))

    def save_device_states(self, rows: Iterable[DeviceStatus]) -> None:
        values = [
            (
                row.device_id,
                row.kind,
                None if row.online is None else int(row.online),
                row.last_seen,
                row.state_changed_at,
                row.last_seq,
                json.dumps(dict(row.last_values)),
            )
            for row in rows
        ]
        if values:
            self._queue.put(("device_state", values))

    def save_alert(self, alert: Alert) -> None:
        self._queue.put(("alert", _alert_row(alert)))

    def audit(self, ts: float, actor: str, entity: str, entity_id: str, action: str, detail: str) -> None:
        self._queue.put(("audit", (ts, actor, entity, entity_id, action, detail)))

    def set_meta(self, key: str, value: str) -> None:
        self._queue.put(("meta", (key, value)))

    def save_rule_state(self, saved_at: float, state: bytes) -> None:
        self._queue.put(("rule_state", (saved_at, state)))

    def rule_state(self) -> bytes | None:
        rows = self._read("SELECT state FROM rule_state ORDER BY saved_at DESC LIMIT 1")
        return bytes(rows[0][0]) if rows else None

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the writer thread once everything queued so far is committed."""
        self._queue.put(("callback", callback))

    def maintain(self, now: float) -> None:
        """Plan a pass of rollups, retention and the disk budget on a reader, and queue it.

        The pass covers what was queued before it; the wait for that and the planning reads
        (tens of ms) are the calling thread's, not the writer's: call it off the event loop.
        """
        with contextlib.suppress(TimeoutError):  # a backlog: what is still queued is the next pass's
            self.flush()
        with self._reading() as conn:
            plan = self.history.plan(conn, now)
        self._queue.put(("maintain", plan))

    def flush(self, timeout_s: float = 10.0) -> None:
        """Block until everything queued so far is committed (tests and shutdown)."""
        done = threading.Event()
        self.after_commit(done.set)
        if not done.wait(timeout_s):
            raise TimeoutError("the SQLite writer did not catch up in time")

    def _write_loop(self) -> None:
        conn = self._connect()
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                rows = 0
                # Bounded transactions keep commits (and the acknowledgements after them) flowing.
                while len(batch) < 20_000 and rows < 50_000:
                    try:
                        entry = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(entry)
                    if entry is not _STOP and entry[0] == "readings":
                        rows += len(entry[1])
                stop = any(entry is _STOP for entry in batch)
                try:
                    self._apply(conn, [entry for entry in batch if entry is not _STOP])
                except Exception:  # the writer must outlive any one bad batch
                    log.exception("SQLite writer failed on a batch of %d operations", len(batch))
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                if stop:
                    return
        finally:
            conn.close()

    def _apply(self, conn: sqlite3.Connection, batch: list[tuple[str, Any]]) -> None:
        callbacks: list[Callable[[], None]] = []
        maintain_at: MaintenancePlan | None = None
        readings: list[ReadingRow] = []
        try:
            conn.execute("BEGIN")
            for op, payload in batch:
                if op == "readings":
                    readings.extend(payload)
                elif op == "callback":
                    callbacks.append(payload)
                elif op == "maintain":
                    maintain_at = payload
                else:
                    self._apply_one(conn, op, payload)
            if readings:
                _insert_readings(conn, readings)
            conn.execute("COMMIT")
            self.rows_written += len(readings) + len(batch)
            self.batches += 1
            self._readings_done += len(readings)
        except sqlite3.Error:
            self.write_errors += 1
            log.exception("SQLite batch of %d operations failed; retrying them one by one", len(batch))
            conn.execute("ROLLBACK")
            self._apply_singly(conn, batch, readings)
            self._readings_done += len(readings)
        if maintain_at is not None:
            try:
                self._maintain(conn, maintain_at)
            except sqlite3.Error:
                log.exception("rollup/retention pass failed; it is retried at the next maintenance")
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")

    def _apply_singly(
        self, conn: sqlite3.Connection, batch: list[tuple[str, Any]], readings: list[ReadingRow]
    ) -> None:
        # One bad row must not cost the rest of the batch.
        for op, payload in batch:
            if op in ("readings", "callback", "maintain"):
                continue
            try:
                self._apply_one(conn, op, payload)
            except sqlite3.Error:
                log.exception("dropping %s write that SQLite refused: %r", op, payload)
        try:
            conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", readings)
        except sqlite3.Error:
            log.exception("dropping %d readings that SQLite refused", len(readings))

    @staticmethod
    def _apply_one(conn: sqlite3.Connection, op: str, payload: Any) -> None:
        if op == "event":
            conn.execute(
                "INSERT INTO events (device_id, kind, name, ts, attrs) VALUES (?, ?, ?, ?, ?)", payload
            )
        elif op == "status":
            conn.execute(
                "INSERT INTO status_changes (device_id, online, ts, reason) VALUES (?, ?, ?, ?)", payload
            )
        elif op == "dead":
            conn.execute(
                "INSERT INTO dead_letters (received_at, source, device_id, reason, detail, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                payload,
            )
        elif op == "device_state":
            conn.executemany("INSERT OR REPLACE INTO device_state VALUES (?, ?, ?, ?, ?, ?, ?)", payload)
        elif op == "alert":
            conn.execute(
                f"INSERT OR REPLACE INTO alerts ({_ALERT_COLUMNS}) VALUES ({', '.join('?' * 17)})", payload
            )
        elif op == "audit":
            conn.execute(
                "INSERT INTO audit (ts, actor, entity, entity_id, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
                payload,
            )
        elif op == "rule_state":
            conn.execute("DELETE FROM rule_state")
            conn.execute("INSERT INTO rule_state VALUES (?, ?)", payload)
        elif op == "meta":
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", payload)
        else:
            raise ValueError(f"unknown write op {op!r}")

    def _maintain(self, conn: sqlite3.Connection, plan: MaintenancePlan) -> None:
        """Apply one bounded pass of rollups, retention and the disk budget (`storage.history`)."""
        self.history.apply(conn, plan)

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
                last_seq=row[5],
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
            "ORDER BY id",
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


_ROWS_PER_INSERT = 1000
_MULTI_ROW_INSERT = "INSERT INTO readings VALUES " + ", ".join(["(?, ?, ?, ?)"] * _ROWS_PER_INSERT)


def _insert_readings(conn: sqlite3.Connection, readings: list[ReadingRow]) -> None:
    """Insert in statements of 1,000 rows: one sqlite3_step per statement instead of per row.

    The sqlite3 module lets go of the GIL around every step; per row, that hand-over to the
    event loop thread and back cost more than the insert itself.
    """
    whole = len(readings) - len(readings) % _ROWS_PER_INSERT
    for start in range(0, whole, _ROWS_PER_INSERT):
        chunk = readings[start : start + _ROWS_PER_INSERT]
        conn.execute(_MULTI_ROW_INSERT, [value for row in chunk for value in row])
    if whole < len(readings):
        conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", readings[whole:])


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
    )
