"""The notification outbox: every message is written to SQLite before it is sent, so a restart
or a receiver that is down for hours loses nothing; delivered rows are pruned after a while.

A table of the gateway's database, written through its one writer: `add` joins the unit of work
of the alert change that caused it (the message is durable exactly when the alert is), and the
sender's updates run from a worker thread, which waits for their commit.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from storage.operations import EnqueueNotification
from storage.sqlite import SqliteStore


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
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def add(self, channel: str, body: bytes, now: float, alert_id: int | None = None) -> Future[Any]:
        """Queue a message; the future completes once it is committed (and can be sent)."""
        return self._store.write(EnqueueNotification(channel, body, alert_id, now), urgent=True)

    def due(self, now: float, limit: int = 64) -> list[OutboxEntry]:
        """Pending entries whose next attempt is due, oldest first."""
        return self._select(
            "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?", (now, limit)
        )

    def next_attempt_at(self) -> float | None:
        rows = self._store.query("SELECT MIN(next_attempt_at) FROM notify_outbox WHERE state = 'pending'")
        return None if rows[0][0] is None else float(rows[0][0])

    def mark_sent(self, entry_id: int, now: float) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE notify_outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?, last_error = '' "
                "WHERE id = ?",
                (now, entry_id),
            )

        self._store.transact(update)

    def mark_failed(self, entry_id: int, error: str, retry_at: float | None) -> None:
        """Count a failed attempt; `retry_at` None gives up on the entry."""

        def update(conn: sqlite3.Connection) -> None:
            if retry_at is None:
                conn.execute(
                    "UPDATE notify_outbox SET state = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
                    (error[:500], entry_id),
                )
            else:
                conn.execute(
                    "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                    "WHERE id = ?",
                    (error[:500], retry_at, entry_id),
                )

        self._store.transact(update)

    def entries(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        if state is None:
            return self._select("ORDER BY id", ())
        return self._select("WHERE state = ? ORDER BY id", (state.value,))

    def prune(self, sent_before: float) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM notify_outbox WHERE state = 'sent' AND sent_at < ?", (sent_before,)
            ).rowcount

        return self._store.transact(delete)

    def _select(self, where: str, args: tuple[object, ...]) -> list[OutboxEntry]:
        rows = self._store.query(f"SELECT {_COLUMNS} FROM notify_outbox {where}", args)
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
