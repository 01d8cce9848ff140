"""Raw readings in chunks: the writer appends to `readings`; a full one is sealed and later dropped whole.

At 50 M rows deleting a reading costs ~4 us (its index entry is sought and removed, on pages
long out of cache); dropping a sealed chunk costs ~0.4 us a row. So retention drops chunks:
once `readings` holds `RAW_CHUNK_ROWS` rows (or a day), maintenance renames it
`readings_<first rowid>` and creates a new, empty `readings`, so the writer's statements (which
name `readings`) need no change. Rowids stay global and in arrival order across chunks: the new
table starts with a sentinel row (device_id '') right after the sealed chunk's last rowid, deleted
once a reading follows it. The catalog `reading_chunks` holds each chunk's rowid and time range.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

LIVE = "readings"
SENTINEL = ""  # the device_id of a sentinel row: never a real device (ids are validated non-empty)
# ~21 min of 1,000 devices x 2 metrics; dropped in ~0.2 s. Not larger: an insert touches a leaf of
# the live index per series, and once each series fills leaves of its own (~250 rows a series,
# ~500k rows for 2,000 series) every transaction rewrites ~2 leaves per series, so a chunk's
# second half costs ~1.5-2x the WAL pages and ~30 % more CPU per reading than its first.
RAW_CHUNK_ROWS = 500_000
RAW_CHUNK_SPAN_S = 86400.0
# Covering: a series' window is read from the index alone. In a chunk its rows are one in every
# few thousand, so looking each value up in the table would read a page per reading.
INDEX_COLUMNS = "device_id, metric, ts, value"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One table of raw readings; the live one has no last rowid yet."""

    name: str
    first_rowid: int
    last_rowid: int | None
    min_ts: float | None  # of its rows rolled up so far; None: not known (rows from before chunks)
    max_ts: float | None

    @property
    def sealed(self) -> bool:
        return self.last_rowid is not None


def chunks(conn: sqlite3.Connection) -> list[Chunk]:
    """Every chunk, oldest first; the last is the live table."""
    rows = conn.execute(
        "SELECT name, first_rowid, last_rowid, min_ts, max_ts FROM reading_chunks ORDER BY first_rowid"
    ).fetchall()
    return [Chunk(*row) for row in rows]


def overlapping(all_chunks: Sequence[Chunk], since: float, until: float, rolled_upto: int) -> list[Chunk]:
    """The chunks that may hold readings with `since <= ts < until`.

    A chunk's time range covers only its rows rolled up so far: a chunk with rows past the
    rollup cursor, or with no known range, is always read.
    """
    return [
        chunk
        for chunk in all_chunks
        if chunk.last_rowid is None
        or chunk.last_rowid > rolled_upto
        or chunk.min_ts is None
        or chunk.max_ts is None
        or (chunk.min_ts < until and chunk.max_ts >= since)
    ]


def seal_live(conn: sqlite3.Connection) -> str | None:
    """Seal the live table under its own name and start a new one (in the caller's transaction)."""
    (newest,) = conn.execute(f"SELECT MAX(rowid) FROM {LIVE}").fetchone()
    (first,) = conn.execute("SELECT first_rowid FROM reading_chunks WHERE name = ?", (LIVE,)).fetchone()
    if newest is None:
        return None
    name = f"readings_{first:012d}"
    following = newest + 1
    conn.execute(f"ALTER TABLE {LIVE} RENAME TO {name}")
    conn.execute(
        f"CREATE TABLE {LIVE} (device_id TEXT NOT NULL, metric TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL)"
    )
    conn.execute(f"CREATE INDEX {index_name(following)} ON {LIVE} ({INDEX_COLUMNS})")
    conn.execute(
        f"INSERT INTO {LIVE} (rowid, device_id, metric, ts, value) VALUES (?, ?, '', 0, 0)",
        (following, SENTINEL),
    )
    conn.execute("UPDATE reading_chunks SET name = ?, last_rowid = ? WHERE name = ?", (name, newest, LIVE))
    conn.execute("INSERT INTO reading_chunks VALUES (?, ?, NULL, NULL, NULL)", (LIVE, following))
    return name


def index_name(first_rowid: int) -> str:
    return f"readings_{first_rowid:012d}_device_metric_ts"


def drop_sentinel(conn: sqlite3.Connection) -> None:
    """Delete the live table's sentinel once a reading follows it (two seeks)."""
    conn.execute(
        f"DELETE FROM {LIVE} WHERE device_id = ? AND rowid = (SELECT MIN(rowid) FROM {LIVE}) "
        f"AND (SELECT MAX(rowid) FROM {LIVE}) > (SELECT MIN(rowid) FROM {LIVE})",
        (SENTINEL,),
    )


def widen(conn: sqlite3.Connection, name: str, min_ts: float, max_ts: float) -> None:
    conn.execute(
        "UPDATE reading_chunks SET min_ts = MIN(COALESCE(min_ts, ?1), ?1), max_ts = MAX(COALESCE(max_ts, ?2), ?2) "
        "WHERE name = ?3",
        (min_ts, max_ts, name),
    )


def union(tables: Sequence[str], select: str, where: str) -> str:
    """`SELECT {select} FROM t WHERE {where}` for every table, as one UNION ALL."""
    return " UNION ALL ".join(f"SELECT {select} FROM {table} WHERE {where}" for table in tables)
