"""WAL checkpoints on a thread of their own, never inside the writer's commits.

By default the connection that commits copies the WAL into the database file (and, with
synchronous=FULL, fsyncs it) whenever the WAL has grown past 1,000 pages, inside that COMMIT. On
the one writer that is the slowest part of a busy commit: measured in bench/history.py, a
maintenance pass's COMMIT took 190-480 ms, most of it that copy, and every operator's
acknowledge queued behind it waited as long. The store's connections turn it off
(`wal_autocheckpoint=0`) and this thread checkpoints instead:

- PASSIVE, a few times a second: it copies what it can without taking any lock that the writer
  or a reader waits for, so commits only append to the WAL and fsync it.
- A WAL starts over from its beginning when a write transaction begins with every frame copied
  and no reader using one. Under writes that never pause the writer always begins with the last
  commit's frames not yet copied, and the WAL grows without end. (A RESTART checkpoint from this
  thread is no cure: it holds the write lock while it waits for readers, and the writer waits
  for it holding a read lock: measured, a 5.5 s stall until the busy timeout broke it.) So once
  the WAL holds more than `restart_bytes`, this thread asks the writer to catch up: between two
  of its transactions the writer copies the few frames left (`catch_up`), and its next
  transaction starts the WAL over. The store's connections set `journal_size_limit`, so that also
  gives the file's space back.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.25
WAL_RESTART_BYTES = 64 * 1024 * 1024


@dataclass
class CheckpointStats:
    passive: int = 0
    restarts: int = 0  # catch-ups the writer ran, each starting the WAL over
    errors: int = 0
    last_error: str | None = None


class Checkpointer:
    """Checkpoints the WAL of the database `connect` opens every `interval_s` on its own connection, until stopped."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        interval_s: float = CHECKPOINT_INTERVAL_S,
        restart_bytes: int = WAL_RESTART_BYTES,
    ) -> None:
        self._connect = connect
        self._interval_s = interval_s
        self._restart_bytes = restart_bytes
        self._stop = threading.Event()
        self._catch_up_wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = CheckpointStats()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = self._connect()
        try:
            while not self._stop.wait(self._interval_s):
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One round: passive; if the WAL still holds more than `restart_bytes`, ask the writer to catch up."""
        try:
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.stats.passive += 1
            if frames * self._page_bytes(conn) > self._restart_bytes:
                self._catch_up_wanted.set()
        except sqlite3.Error as exc:  # a full or failing disk: the writer reports it; retry next round
            self.stats.errors += 1
            if self.stats.last_error is None:
                log.warning("WAL checkpoint failed (%s); retrying every %.2f s", exc, self._interval_s)
            self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            if self.stats.last_error is not None:
                log.info("WAL checkpoints succeed again")
            self.stats.last_error = None

    def catch_up(self, conn: sqlite3.Connection) -> None:
        """On the writer's thread, between its transactions: copy what is left when asked to."""
        if not self._catch_up_wanted.is_set():
            return
        self._catch_up_wanted.clear()
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the writer's next commit meets the same fault and reports it
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
            return
        self.stats.restarts += 1

    @staticmethod
    def _page_bytes(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
