"""Tickets in the gateway's SQLite file, with optimistic versioning.

Every write runs in the store's one writer (`SqliteStore.transact`) and the caller waits for its
commit, so this repository is for worker threads (the gateway's ticket desk), never the event
loop. A save applies only when the row is still at the version the caller read: `UPDATE ... WHERE
id = ? AND version = ?`; otherwise it raises `VersionConflict` and nothing is lost.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
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
from storage.sqlite import SqliteStore

_COLUMNS = tuple(item.name for item in fields(Ticket))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM tickets"


class SqliteTicketRepository:
    """The `TicketRepository` port over the gateway's store; safe to call from any worker thread.

    Args:
        store: the gateway's open store, or a database path for a repository of its own (reports,
            tests), which then opens and closes its own store.
    """

    def __init__(self, store: SqliteStore | Path) -> None:
        self._owns_store = isinstance(store, Path)
        if isinstance(store, Path):
            store = SqliteStore(store)
            store.open()
        self._store = store

    def close(self) -> None:
        if self._owns_store:
            self._store.close()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._store.query(sql, params)

    # -- tickets ---------------------------------------------------------------------------------

    def create(self, draft: TicketDraft, actor: str, alert_ids: Sequence[int]) -> Ticket:
        def insert(conn: sqlite3.Connection) -> Ticket:
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

        return self._store.transact(insert)

    def get(self, ticket_id: int) -> Ticket | None:
        rows = self._read(f"{_SELECT} WHERE id = ?", (ticket_id,))
        return _ticket_from_row(rows[0]) if rows else None

    def save(
        self, ticket: Ticket, expected_version: int, actor: str, action: str, changes: FieldChanges
    ) -> Ticket:
        saved = replace(ticket, version=expected_version + 1)
        row = _ticket_row(saved)
        assignments = ", ".join(f"{name} = ?" for name in _COLUMNS[1:])

        def update(conn: sqlite3.Connection) -> None:
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

        self._store.transact(update)
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
        def link(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone() is None:
                raise TicketNotFound(ticket_id)
            return _link(conn, ticket_id, alert_id, ts, actor)

        return self._store.transact(link)

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
        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO ticket_comments (ticket_id, ts, actor, text) VALUES (?, ?, ?, ?)",
                (ticket_id, ts, actor, text),
            )
            _add_history(conn, ticket_id, ts, actor, "comment", {"comment": (None, text)})
            return int(cursor.lastrowid or 0)

        return TicketComment(self._store.transact(insert), ticket_id, ts, actor, text)

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
        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO ticket_photos (ticket_id, ts, actor, filename, content_type, size_bytes, "
                "stored_name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ticket_id, ts, actor, filename, content_type, size_bytes, stored_name),
            )
            _add_history(conn, ticket_id, ts, actor, "photo", {"photo": (None, filename)})
            return int(cursor.lastrowid or 0)

        photo_id = self._store.transact(insert)
        return TicketPhoto(photo_id, ticket_id, ts, actor, filename, content_type, size_bytes, stored_name)

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
        self._store.transact(
            lambda conn: conn.execute("INSERT INTO ticket_occurrences VALUES (?, ?, ?)", (rule, subject, ts))
        )

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
