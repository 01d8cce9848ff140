"""WAL checkpoints happen on their own thread: the writer's commits only append to the WAL, and the
WAL stays bounded under writes that never pause."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from storage.checkpoint import Checkpointer
from storage.sqlite import SqliteStore

PAGE = 4096


def _write(store: SqliteStore, batches: int, rows: int = 2000) -> None:
    for batch in range(batches):
        store.add_readings(
            [(f"d{n % 500}", "temperature_c", batch * 10.0 + n * 0.001, 20.0) for n in range(rows)]
        )
    store.flush(timeout_s=60)


def _wal_frames(path: Path) -> tuple[int, int]:
    """(frames in the WAL, frames already copied into the database), without copying any."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames), int(copied)


def test_the_writer_never_checkpoints_inside_its_commits(tmp_path: Path) -> None:
    """Before: every commit that left the WAL past 1,000 pages copied it into the database inside
    that COMMIT (measured: 190-480 ms commits of a maintenance pass, acknowledges queued behind)."""
    store = SqliteStore(tmp_path / "s.db")
    store.checkpointer = Checkpointer(store._connect, interval_s=3600)  # never, here
    store.open()
    try:
        _write(store, 40)
        wal = (tmp_path / "s.db-wal").stat().st_size
        assert wal > 1000 * PAGE  # past SQLite's default autocheckpoint: nothing copied it back
        store.checkpointer.checkpoint(store._connect())
        frames, copied = _wal_frames(store.path)
        assert frames == copied > 1000
    finally:
        store.close()


def test_the_wal_stays_bounded_under_writes_that_never_pause(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    limit = 4 * 1024 * 1024  # the store's connections truncate a reset WAL to 64 MB
    store.checkpointer = Checkpointer(store._connect, interval_s=0.02, restart_bytes=limit)
    store.open()
    try:
        largest = 0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            _write(store, 5)
            largest = max(largest, (tmp_path / "s.db-wal").stat().st_size)
        stats = store.checkpointer.stats
        assert stats.passive > 10 and stats.errors == 0
        assert stats.restarts > 0
        assert largest < 64 * 1024 * 1024 + 8 * limit, f"WAL grew to {largest / 1e6:.0f} MB"
    finally:
        store.close()
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0] > 0
