"""The read pool closes a connection only once no thread is using it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from storage.connection import connect
from storage.readpool import ReadPool

COUNT_TO = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT COUNT(*) FROM n"
)


def test_closing_while_a_read_runs_lets_it_finish(tmp_path: Path) -> None:
    """Before: close() closed the connection under the running statement and the process died of
    a segfault inside SQLite (a gateway stopping during a maintenance pass's planning read)."""
    path = tmp_path / "r.db"
    connect(path).close()
    pool = ReadPool(lambda: connect(path))
    with pool.connection() as conn:  # one idle connection, closed at once
        conn.execute("SELECT 1")
    results: list[object] = []
    started = threading.Event()

    def long_read() -> None:
        with pool.connection() as conn:
            started.set()
            results.append(conn.execute(COUNT_TO, (3_000_000,)).fetchone()[0])

    reader = threading.Thread(target=long_read)
    reader.start()
    started.wait(5)
    time.sleep(0.05)
    pool.close()
    reader.join(30)
    assert results == [3_000_000]
    with pytest.raises(RuntimeError, match="closed"), pool.connection():
        pass
