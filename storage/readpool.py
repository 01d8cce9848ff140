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
        self._lock = threading.Lock()  # orders `close()` against connections coming and going
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                if self._closed:  # a close() racing this one still closes it when it comes back
                    raise RuntimeError("the read pool is closed") from None
                conn = self._connect()
                conn.execute("PRAGMA query_only = ON")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                with self._lock:
                    if self._closed:  # close() left this one to its user
                        conn.close()
                    else:
                        self._idle.put(conn)

    def close(self) -> None:
        """Close the idle connections now and the ones in use when their users are done with them.

        Closing a connection while another thread runs a statement on it crashes the process (a
        segfault inside SQLite, measured: a shutdown during a maintenance pass's planning read).
        """
        with self._lock:
            self._closed = True
            while not self._idle.empty():
                self._idle.get_nowait().close()
