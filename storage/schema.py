"""SQLite schema, versioned: migration N brings a database from user_version N-1 to N."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_LEGACY_LIVE_INDEX = "readings_device_metric_ts"
_REINDEX_MAX_ROWS = 1_000_000  # ~3 s once, at the upgrade


def _covering_first_live_index(conn: sqlite3.Connection) -> None:
    """Give a database's first live table the index every later live table gets (migration 9).

    A fresh database's first chunk then has the same schema as every later one (the same insert
    cost, the same index-only series reads). A live table that has never been sealed is
    reindexed if it is at most a chunk's size; a larger one (history from before chunks, not yet
    sealed) is left as it is, since maintenance seals it on its next pass and the table that
    follows it has the covering index. Tables already sealed keep their index: retention drops
    them whole. The columns and the name are written out, not taken from storage.chunks, so that
    this migration means the same whatever later versions change there.
    """
    legacy = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ? AND tbl_name = 'readings'",
        (_LEGACY_LIVE_INDEX,),
    ).fetchone()
    if legacy is None:
        return
    (first,) = conn.execute("SELECT first_rowid FROM reading_chunks WHERE name = 'readings'").fetchone()
    (newest,) = conn.execute("SELECT MAX(rowid) FROM readings").fetchone()
    if newest is not None and newest - first + 1 > _REINDEX_MAX_ROWS:
        return
    conn.execute(
        f"CREATE INDEX readings_{first:012d}_device_metric_ts ON readings (device_id, metric, ts, value)"
    )
    conn.execute(f"DROP INDEX {_LEGACY_LIVE_INDEX}")


# A migration is an SQL script, or a function for one that depends on what the database holds
# (run in one transaction with the version's update, as a script is).
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    """
    CREATE TABLE readings (
        device_id TEXT NOT NULL, metric TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL
    );
    CREATE INDEX readings_device_metric_ts ON readings (device_id, metric, ts);
    CREATE INDEX readings_ts ON readings (ts);
    CREATE TABLE rollups_1m (
        device_id TEXT NOT NULL, metric TEXT NOT NULL, minute INTEGER NOT NULL,
        min REAL NOT NULL, max REAL NOT NULL, avg REAL NOT NULL, last REAL NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (device_id, metric, minute)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        ts REAL NOT NULL, attrs TEXT NOT NULL
    );
    CREATE INDEX events_device_ts ON events (device_id, ts);
    CREATE TABLE device_state (
        device_id TEXT PRIMARY KEY, kind TEXT NOT NULL, online INTEGER, last_seen REAL,
        state_changed_at REAL, last_seq INTEGER, last_values TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE status_changes (
        id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, online INTEGER NOT NULL, ts REAL NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX status_changes_device_ts ON status_changes (device_id, ts);
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY, received_at REAL NOT NULL, source TEXT NOT NULL, device_id TEXT NOT NULL,
        reason TEXT NOT NULL, detail TEXT NOT NULL, payload BLOB NOT NULL
    );
    CREATE INDEX dead_letters_reason ON dead_letters (reason, received_at);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY, rule TEXT NOT NULL, subject TEXT NOT NULL, device_id TEXT NOT NULL,
        severity TEXT NOT NULL, state TEXT NOT NULL, condition_active INTEGER NOT NULL,
        first_seen REAL NOT NULL, last_seen REAL NOT NULL, count INTEGER NOT NULL,
        acknowledged_at REAL, acknowledged_by TEXT, cleared_at REAL,
        resolved_at REAL, resolved_by TEXT, resolution_note TEXT, details TEXT NOT NULL
    );
    CREATE INDEX alerts_state ON alerts (state, severity);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, actor TEXT NOT NULL, entity TEXT NOT NULL,
        entity_id TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL
    );
    CREATE INDEX audit_entity ON audit (entity, entity_id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY, version INTEGER NOT NULL, title TEXT NOT NULL, category TEXT NOT NULL,
        level TEXT NOT NULL, state TEXT NOT NULL, location TEXT NOT NULL, discovered_at REAL NOT NULL,
        discovered_by TEXT NOT NULL, source TEXT NOT NULL, rule TEXT NOT NULL, subject TEXT NOT NULL,
        device_id TEXT NOT NULL, responsible_id TEXT, verifier_id TEXT, measures TEXT NOT NULL,
        funds_cny REAL, deadline_ts REAL, contingency_plan TEXT NOT NULL, updated_at REAL NOT NULL,
        closed_at REAL, escalated_at REAL
    );
    CREATE INDEX tickets_state_level ON tickets (state, level);
    CREATE INDEX tickets_condition ON tickets (rule, subject, state);
    CREATE TABLE ticket_alerts (
        ticket_id INTEGER NOT NULL REFERENCES tickets (id), alert_id INTEGER NOT NULL,
        linked_at REAL NOT NULL, PRIMARY KEY (ticket_id, alert_id)
    ) WITHOUT ROWID;
    CREATE INDEX ticket_alerts_alert ON ticket_alerts (alert_id);
    CREATE TABLE ticket_history (
        id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL, ts REAL NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, changes TEXT NOT NULL
    );
    CREATE INDEX ticket_history_ticket ON ticket_history (ticket_id, id);
    CREATE TABLE ticket_comments (
        id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL, ts REAL NOT NULL, actor TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_id, id);
    CREATE TABLE ticket_photos (
        id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL, ts REAL NOT NULL, actor TEXT NOT NULL,
        filename TEXT NOT NULL, content_type TEXT NOT NULL, size_bytes INTEGER NOT NULL,
        stored_name TEXT NOT NULL
    );
    CREATE INDEX ticket_photos_ticket ON ticket_photos (ticket_id, id);
    CREATE TABLE ticket_occurrences (rule TEXT NOT NULL, subject TEXT NOT NULL, ts REAL NOT NULL);
    CREATE INDEX ticket_occurrences_condition ON ticket_occurrences (rule, subject, ts);
    """,
    """
    DROP INDEX readings_ts;
    ALTER TABLE rollups_1m ADD COLUMN last_ts REAL NOT NULL DEFAULT 0;
    """,
    """
    CREATE TABLE rule_state (saved_at REAL NOT NULL, state BLOB NOT NULL);
    """,
    # One writer: alert rows carry a version so a write that commits late never undoes a newer
    # one; device sessions (seen seqs per lane, skew, last reported status) commit with the
    # records they guard; the notification outbox moves into this file, so a notification
    # commits with the alert change that caused it.
    """
    ALTER TABLE alerts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE device_sessions (
        device_id TEXT PRIMARY KEY, telemetry_seq TEXT, event_seq TEXT,
        clock_skewed INTEGER NOT NULL DEFAULT 0, status TEXT, status_ts REAL
    ) WITHOUT ROWID;
    CREATE TABLE notify_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, body BLOB NOT NULL,
        alert_id INTEGER, created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
        last_error TEXT NOT NULL DEFAULT '', sent_at REAL
    );
    CREATE INDEX notify_outbox_due ON notify_outbox (state, next_attempt_at);
    """,
    """
    CREATE TABLE rollups_1h (
        device_id TEXT NOT NULL, metric TEXT NOT NULL, hour INTEGER NOT NULL,
        min REAL NOT NULL, max REAL NOT NULL, avg REAL NOT NULL, last REAL NOT NULL, n INTEGER NOT NULL,
        last_ts REAL NOT NULL, PRIMARY KEY (device_id, metric, hour)
    ) WITHOUT ROWID;
    INSERT INTO rollups_1h
    SELECT device_id, metric, hour, MIN(min), MAX(max), SUM(avg * n) / SUM(n),
           MAX(CASE WHEN newest = 1 THEN last END), SUM(n), MAX(last_ts)
    FROM (
        SELECT device_id, metric, minute / 60 AS hour, min, max, avg, last, n, last_ts,
               ROW_NUMBER() OVER (PARTITION BY device_id, metric, minute / 60 ORDER BY minute DESC) AS newest
        FROM rollups_1m
    )
    GROUP BY device_id, metric, hour;
    """,
    """
    CREATE TABLE reading_chunks (
        name TEXT PRIMARY KEY, first_rowid INTEGER NOT NULL, last_rowid INTEGER, min_ts REAL, max_ts REAL
    );
    INSERT INTO reading_chunks VALUES ('readings', 0, NULL, NULL, NULL);
    """,
    # The gateway's own running intervals (one row per run, its last heartbeat moving on), so the
    # time it was down is unknown to the uptime maths rather than online or offline.
    """
    CREATE TABLE gateway_runs (started_at REAL PRIMARY KEY, last_beat REAL NOT NULL) WITHOUT ROWID;
    """,
    # The first live table of a database had the index of migration 1, (device_id, metric, ts);
    # every table a chunk seal creates has the covering one (storage.chunks.INDEX_COLUMNS).
    _covering_first_live_index,
]


SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer gateway; migrations only go forward."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"database schema version {version} was written by a newer gateway (this one knows up to "
            f"{SCHEMA_VERSION}); a downgrade is not supported: install that newer version again, or "
            "restore a backup made by this version (campus-gateway restore)"
        )
        self.version = version


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen; returns the resulting version."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise SchemaTooNewError(version)
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        if isinstance(step, str):
            conn.executescript(f"BEGIN;\n{step}\nPRAGMA user_version = {number};\nCOMMIT;")
            continue
        conn.execute("BEGIN")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(MIGRATIONS)
