"""Tickets in the gateway's SQLite file, with optimistic versioning.

Tickets are few and changed by people, so writes are synchronous on this repository's own
connection (WAL lets it run beside the store's writer thread). A save applies only when the row
is still at the version the caller read: `UPDATE ... WHERE id = ? AND version = ?`; otherwise
it raises `VersionConflict` and nothing is lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from analytics.tickets.errors import TicketNotFound, VersionConflict
from analytics.tickets.model import (
    FieldChanges,
    HazardCategory,
    HazardLevel,
    HistoryEntry,
    Ticket,
    TicketComment,
    TicketDraft,
    TicketPhoto,
    TicketState,
)
from storage.connection import connect
from storage.schema import migrate

_COLUMNS = tuple(item.name for item in fields(Ticket))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM tickets"


class SqliteTicketRepository:
    """The `TicketRepository` port over SQLite; safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(path)
        migrate(self._conn)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # IMMEDIATE takes the write lock up front, so the version check and the update are atomic.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- tickets ---------------------------------------------------------------------------------

    def create(self, draft: TicketDraft, actor: str, alert_ids: Sequence[int]) -> Ticket:
        with self._write() as conn:
            (next_id,) = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM tickets").fetchone()
            ticket = draft.register(int(next_id))
            row = _ticket_row(ticket)
            conn.execute(
                f"INSERT INTO tickets ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(row))})", row
            )
            created = {name: (None, value) for name, value in asdict(ticket).items() if name != "version"}
            _add_history(conn, ticket.id, draft.discovered_at, actor, "create", created)
            for alert_id in alert_ids:
                _link(conn, ticket.id, alert_id, draft.discovered_at, actor)
        return ticket

    def get(self, ticket_id: int) -> Ticket | None:
        rows = self._read(f"{_SELECT} WHERE id = ?", (ticket_id,))
        return _ticket_from_row(rows[0]) if rows else None

    def save(
        self, ticket: Ticket, expected_version: int, actor: str, action: str, changes: FieldChanges
    ) -> Ticket:
        saved = replace(ticket, version=expected_version + 1)
        row = _ticket_row(saved)
        assignments = ", ".join(f"{name} = ?" for name in _COLUMNS[1:])
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE tickets SET {assignments} WHERE id = ? AND version = ?",
                (*row[1:], ticket.id, expected_version),
            )
            if cursor.rowcount != 1:
                found = conn.execute("SELECT version FROM tickets WHERE id = ?", (ticket.id,)).fetchone()
                if found is None:
                    raise TicketNotFound(ticket.id)
                raise VersionConflict(ticket.id, expected_version, int(found[0]))
            _add_history(conn, ticket.id, saved.updated_at, actor, action, changes)
        return saved

    def tickets(
        self,
        states: Sequence[TicketState] = (),
        level: HazardLevel | None = None,
        category: HazardCategory | None = None,
    ) -> list[Ticket]:
        clauses: list[str] = []
        params: list[Any] = []
        if states:
            clauses.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(state.value for state in states)
        if level is not None:
            clauses.append("level = ?")
            params.append(level.value)
        if category is not None:
            clauses.append("category = ?")
            params.append(category.value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return [_ticket_from_row(row) for row in self._read(f"{_SELECT}{where} ORDER BY id", params)]

    # -- links, comments, photos, history ---------------------------------------------------------

    def attach_alert(self, ticket_id: int, alert_id: int, ts: float, actor: str) -> bool:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone() is None:
                raise TicketNotFound(ticket_id)
            return _link(conn, ticket_id, alert_id, ts, actor)

    def alert_ids(self, ticket_id: int) -> list[int]:
        rows = self._read(
            "SELECT alert_id FROM ticket_alerts WHERE ticket_id = ? ORDER BY alert_id", (ticket_id,)
        )
        return [int(row[0]) for row in rows]

    def ticket_id_for_alert(self, alert_id: int) -> int | None:
        """The latest ticket the alert is linked to."""
        rows = self._read(
            "SELECT MAX(ticket_id) FROM ticket_alerts WHERE alert_id = ?",
            (alert_id,),
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def add_comment(self, ticket_id: int, ts: float, actor: str, text: str) -> TicketComment:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO ticket_comments (ticket_id, ts, actor, text) VALUES (?, ?, ?, ?)",
                (ticket_id, ts, actor, text),
            )
            _add_history(conn, ticket_id, ts, actor, "comment", {"comment": (None, text)})
        return TicketComment(int(cursor.lastrowid or 0), ticket_id, ts, actor, text)

    def comments(self, ticket_id: int) -> list[TicketComment]:
        rows = self._read(
            "SELECT id, ticket_id, ts, actor, text FROM ticket_comments WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [TicketComment(*row) for row in rows]

    def add_photo(
        self,
        ticket_id: int,
        ts: float,
        actor: str,
        filename: str,
        content_type: str,
        size_bytes: int,
        stored_name: str,
    ) -> TicketPhoto:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO ticket_photos (ticket_id, ts, actor, filename, content_type, size_bytes, "
                "stored_name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ticket_id, ts, actor, filename, content_type, size_bytes, stored_name),
            )
            _add_history(conn, ticket_id, ts, actor, "photo", {"photo": (None, filename)})
        return TicketPhoto(
            int(cursor.lastrowid or 0), ticket_id, ts, actor, filename, content_type, size_bytes, stored_name
        )

    def photos(self, ticket_id: int) -> list[TicketPhoto]:
        rows = self._read(
            "SELECT id, ticket_id, ts, actor, filename, content_type, size_bytes, stored_name "
            "FROM ticket_photos WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [TicketPhoto(*row) for row in rows]

    def history(self, ticket_id: int) -> list[HistoryEntry]:
        rows = self._read(
            "SELECT ticket_id, ts, actor, action, changes FROM ticket_history WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [
            HistoryEntry(
                ticket_id=row[0],
                ts=row[1],
                actor=row[2],
                action=row[3],
                changes={name: (old, new) for name, (old, new) in json.loads(row[4]).items()},
            )
            for row in rows
        ]

    def record_occurrence(self, rule: str, subject: str, ts: float) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO ticket_occurrences VALUES (?, ?, ?)", (rule, subject, ts))

    def occurrences_since(self, rule: str, subject: str, since_ts: float) -> list[float]:
        rows = self._read(
            "SELECT ts FROM ticket_occurrences WHERE rule = ? AND subject = ? AND ts >= ? ORDER BY ts",
            (rule, subject, since_ts),
        )
        return [float(row[0]) for row in rows]


def _link(conn: sqlite3.Connection, ticket_id: int, alert_id: int, ts: float, actor: str) -> bool:
    cursor = conn.execute("INSERT OR IGNORE INTO ticket_alerts VALUES (?, ?, ?)", (ticket_id, alert_id, ts))
    if cursor.rowcount == 1:
        _add_history(conn, ticket_id, ts, actor, "link_alert", {"alert_ids": (None, alert_id)})
        return True
    return False


def _add_history(
    conn: sqlite3.Connection, ticket_id: int, ts: float, actor: str, action: str, changes: FieldChanges
) -> None:
    payload = {name: [_plain(old), _plain(new)] for name, (old, new) in changes.items()}
    conn.execute(
        "INSERT INTO ticket_history (ticket_id, ts, actor, action, changes) VALUES (?, ?, ?, ?, ?)",
        (ticket_id, ts, actor, action, json.dumps(payload, ensure_ascii=False)),
    )


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _ticket_row(ticket: Ticket) -> tuple[Any, ...]:
    return tuple(_plain(getattr(ticket, name)) for name in _COLUMNS)


def _ticket_from_row(row: Sequence[Any]) -> Ticket:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["category"] = HazardCategory(values["category"])
    values["level"] = HazardLevel(values["level"])
    values["state"] = TicketState(values["state"])
    return Ticket(**values)
