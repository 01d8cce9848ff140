"""A few read connections shared by threads: in WAL mode each reads beside the writer and the others."""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ReadPool:
    """Up to `size` connections, opened on first need; a caller waits only when all are in use.

    Args:
        connect: opens one connection (the store's own settings).
        size: the most connections open at once.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], size: int = 4) -> None:
        self._connect = connect
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards `_all` while connections open and close

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
                conn.execute("PRAGMA query_only = ON")
                with self._lock:
                    self._all.append(conn)
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._idle.put(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        while not self._idle.empty():
            self._idle.get_nowait()
