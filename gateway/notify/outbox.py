"""The notification outbox: every message is written to SQLite before it is sent, so a restart
or a receiver that is down for hours loses nothing; delivered rows are pruned after a while.

Its own database file, so the outbox never waits on the reading store's writer. Methods are
thread-safe (one connection behind a lock): `add` runs on the event loop (one small insert per
message, a handful per alert), the sender calls the rest from a worker thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from storage.connection import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    body BLOB NOT NULL,
    alert_id INTEGER,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT NOT NULL DEFAULT '',
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (state, next_attempt_at);
"""


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # gave up: refused by the receiver, or out of attempts; kept for inspection


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    channel: str
    body: bytes
    alert_id: int | None
    created_at: float
    attempts: int
    next_attempt_at: float
    state: OutboxState
    last_error: str
    sent_at: float | None


_COLUMNS = "id, channel, body, alert_id, created_at, attempts, next_attempt_at, state, last_error, sent_at"


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, channel: str, body: bytes, now: float, alert_id: int | None = None) -> int:
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO notify_outbox (channel, body, alert_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                (channel, body, alert_id, now, now),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def due(self, now: float, limit: int = 64) -> list[OutboxEntry]:
        """Pending entries whose next attempt is due, oldest first."""
        return self._select(
            "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?", (now, limit)
        )

    def next_attempt_at(self) -> float | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(next_attempt_at) FROM notify_outbox WHERE state = 'pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, entry_id: int, now: float) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE notify_outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?, last_error = '' "
                "WHERE id = ?",
                (now, entry_id),
            )

    def mark_failed(self, entry_id: int, error: str, retry_at: float | None) -> None:
        """Count a failed attempt; `retry_at` None gives up on the entry."""
        with self._lock:
            if retry_at is None:
                self._conn.execute(
                    "UPDATE notify_outbox SET state = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
                    (error[:500], entry_id),
                )
            else:
                self._conn.execute(
                    "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                    "WHERE id = ?",
                    (error[:500], retry_at, entry_id),
                )

    def entries(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        if state is None:
            return self._select("ORDER BY id", ())
        return self._select("WHERE state = ? ORDER BY id", (state.value,))

    def prune(self, sent_before: float) -> int:
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM notify_outbox WHERE state = 'sent' AND sent_at < ?", (sent_before,)
            )
        return cursor.rowcount

    def _select(self, where: str, args: tuple[object, ...]) -> list[OutboxEntry]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM notify_outbox {where}", args).fetchall()
        return [
            OutboxEntry(
                row[0],
                row[1],
                bytes(row[2]),
                row[3],
                row[4],
                row[5],
                row[6],
                OutboxState(row[7]),
                row[8],
                row[9],
            )
            for row in rows
        ]
