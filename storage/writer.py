"""The one writer of a SQLite file: every write of the gateway goes through it.

Writes are small typed operations (frozen dataclasses), applied by handlers registered per type,
on one thread, in group-committed transactions. A caller submits the operations that belong
together and gets a future that completes when *their* transaction has committed, so a device
is acknowledged, or an operator answered, only once what they caused is durable.

Failures are of two kinds:
- a fault of the data (a constraint, a value SQLite cannot bind, a bug in a handler): the
  submission is retried one operation at a time, and what still fails is written as a dead
  letter with the reason, so nothing accepted is lost and the rest of the group commits (an
  operation marked `refusal_to_caller`, such as a ticket's checked update, fails its future
  instead);
- a fault of the disk (full, I/O error, read-only, locked): nothing is dropped. The whole group
  is rolled back and retried with backoff; meanwhile `healthy` is False, which pauses ingest
  (messages wait at the broker, unacknowledged), and it turns True by itself once a retry commits.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class WriteOp(Protocol):
    """An operation for the writer: a frozen dataclass with a handler registered for its type."""

    def split(self) -> Sequence[WriteOp]:
        """Smaller operations that together do the same (one row each); () when indivisible."""
        ...


Handler = Callable[[sqlite3.Connection, Any], Any]

# SQLite's primary result codes that mean the disk, not the data, is at fault: retrying later
# can succeed, and nothing is to be given up in the meantime.
_ENVIRONMENT_CODES = frozenset(
    {
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
    }
)
MAX_GROUP_OPERATIONS = 5_000
MAX_GROUP_ROWS = 50_000
RETRY_MIN_S = 0.05
RETRY_MAX_S = 5.0


def is_environment_error(exc: BaseException) -> bool:
    """True when `exc` says the disk or the file failed, not the data written."""
    if isinstance(exc, OSError | MemoryError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in _ENVIRONMENT_CODES


@dataclass(frozen=True, slots=True)
class RefusedWrite:
    """An operation the data itself made fail, kept as a dead letter instead of being lost."""

    op: WriteOp
    error: str


@dataclass(eq=False)
class Submission:
    ops: Sequence[WriteOp]
    rows: int
    future: Future[list[Any]] = field(default_factory=Future)
    results: list[Any] = field(default_factory=list)  # each operation's handler's return value
    error: Exception | None = None


@dataclass
class WriterStats:
    transactions: int = 0
    operations: int = 0
    refused: int = 0  # operations the data made fail, written as dead letters
    write_errors: int = 0  # failed attempts of any kind
    last_error: str = ""
    failing_since: float | None = None


class SqliteWriter:
    """One thread that applies every write to one SQLite file.

    Args:
        connect: opens the writer's connection (on the writer thread).
        handlers: the function that applies each operation type, given the connection.
        on_refused: turns an operation the data made fail into operations that record it (a dead
            letter); they are applied in the same transaction.
        clock: for `failing_since`.
        between: run on the writer's connection after each committed group, outside any
            transaction (the WAL checkpoint's catch-up, `storage.checkpoint`).
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        handlers: Mapping[type, Handler],
        on_refused: Callable[[RefusedWrite], Sequence[WriteOp]],
        clock: Callable[[], float] = time.time,
        between: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self._connect = connect
        self._between = between
        self._handlers = dict(handlers)
        self._on_refused = on_refused
        self._clock = clock
        self._urgent: deque[Submission] = deque()
        self._bulk: deque[Submission] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = WriterStats()
        self.healthy = True
        # Rows submitted and not yet committed; written under the condition's lock.
        self.backlog_rows = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Commit everything submitted so far, then end the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def submit(self, ops: Sequence[WriteOp], rows: int = 0, urgent: bool = False) -> Future[list[Any]]:
        """Queue `ops` to commit in one transaction; the future completes once they have, with
        each handler's return value (or the error of an operation that refuses to the caller).

        `urgent` submissions (an operator's action, alarms) are taken before bulk ones (telemetry):
        they must not wait behind a backlog of readings. Each queue keeps its own order.
        """
        submission = Submission(tuple(ops), max(rows, len(ops)))
        with self._wake:
            if self._stopping and self._thread is None:
                raise RuntimeError("the SQLite writer is stopped")
            (self._urgent if urgent else self._bulk).append(submission)
            self.backlog_rows += submission.rows
            self._wake.notify()
        return submission.future

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                group = self._take_group()
                if not group:
                    return
                self._commit_group(conn, group)
                if self._between is not None and self.healthy:
                    self._between(conn)
                if self._stopping and not self.healthy:
                    return
        finally:
            conn.close()

    def _take_group(self) -> list[Submission]:
        with self._wake:
            while not self._urgent and not self._bulk:
                if self._stopping:
                    return []
                self._wake.wait()
            group: list[Submission] = []
            operations = rows = 0
            # Urgent work commits on its own, so a group of bulk rows never delays it.
            lane = self._urgent or self._bulk
            while lane and operations < MAX_GROUP_OPERATIONS and rows < MAX_GROUP_ROWS:
                submission = lane.popleft()
                group.append(submission)
                operations += len(submission.ops)
                rows += submission.rows
            return group

    def _commit_group(self, conn: sqlite3.Connection, group: list[Submission]) -> None:
        delay_s = RETRY_MIN_S
        while True:
            try:
                self._apply_group(conn, group)
                break
            except Exception as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.debug("rollback after a failed commit failed too", exc_info=True)
                self._failed(exc)
                if self._stopping:
                    # Shutting down with a disk that still fails: give up on these writes. Their
                    # futures fail, so nothing is acknowledged; the broker keeps the messages.
                    self._abandon(group, exc)
                    return
                with self._wake:
                    self._wake.wait(delay_s)  # woken early by stop()
                delay_s = min(delay_s * 2, RETRY_MAX_S)
        if not self.healthy:
            log.warning(
                "SQLite writes succeed again after %.0f s; ingest resumes",
                self._clock() - (self.stats.failing_since or self._clock()),
            )
        self.healthy = True
        self.stats.failing_since = None
        with self._wake:
            self.backlog_rows -= sum(submission.rows for submission in group)
        for submission in group:
            if submission.error is not None:
                submission.future.set_exception(submission.error)
            else:
                submission.future.set_result(submission.results)

    def _abandon(self, group: list[Submission], exc: Exception) -> None:
        pending = list(group)
        with self._wake:
            pending += [*self._urgent, *self._bulk]
            self._urgent.clear()
            self._bulk.clear()
            self.backlog_rows = 0
        log.error("SQLite writer stopping with %d uncommitted submissions abandoned (%s)", len(pending), exc)
        for submission in pending:
            submission.future.set_exception(RuntimeError(f"not committed: {self.stats.last_error}"))

    def _apply_group(self, conn: sqlite3.Connection, group: list[Submission]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Optimistic: data faults are rare, so no savepoints (two statements, two GIL
            # hand-overs per submission) unless one happens.
            for submission in group:
                submission.error = None
                submission.results = [self._handlers[type(op)](conn, op) for op in submission.ops]
        except Exception as exc:
            # A full disk or an I/O error in a statement without a statement journal (the readings
            # insert is OR FAIL) makes SQLite roll the whole transaction back itself.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if is_environment_error(exc):
                raise
            conn.execute("BEGIN IMMEDIATE")
            for submission in group:
                self._apply_submission(conn, submission)
        conn.execute("COMMIT")
        self.stats.transactions += 1
        self.stats.operations += sum(len(submission.ops) for submission in group)

    def _apply_submission(self, conn: sqlite3.Connection, submission: Submission) -> None:
        """Apply a submission in a savepoint, so a data fault rolls back only this submission."""
        submission.error = None
        conn.execute("SAVEPOINT submission")
        try:
            submission.results = [self._handlers[type(op)](conn, op) for op in submission.ops]
        except Exception as exc:
            if not conn.in_transaction:  # SQLite rolled it all back (see `_apply_group`)
                raise
            conn.execute("ROLLBACK TO submission")
            conn.execute("RELEASE submission")
            if is_environment_error(exc):
                raise
            self.stats.write_errors += 1
            if any(getattr(op, "refusal_to_caller", False) for op in submission.ops):
                submission.error = exc  # the caller decides (a ticket's version conflict)
            else:
                self._salvage(conn, submission.ops)
            return
        conn.execute("RELEASE submission")

    def _salvage(self, conn: sqlite3.Connection, ops: Sequence[WriteOp]) -> None:
        """Apply `ops` one at a time (split further where they fail); what still fails is refused."""
        for op in ops:
            conn.execute("SAVEPOINT piece")
            try:
                self._handlers[type(op)](conn, op)
            except Exception as exc:
                if not conn.in_transaction:
                    raise
                conn.execute("ROLLBACK TO piece")
                conn.execute("RELEASE piece")
                if is_environment_error(exc):
                    raise
                parts = op.split()
                if parts:
                    self._salvage(conn, parts)
                else:
                    self._refuse(conn, op, exc)
                continue
            conn.execute("RELEASE piece")

    def _refuse(self, conn: sqlite3.Connection, op: WriteOp, exc: Exception) -> None:
        self.stats.refused += 1
        log.error("SQLite refused a %s (%s); kept as a dead letter", type(op).__name__, exc)
        for record in self._on_refused(RefusedWrite(op, f"{type(exc).__name__}: {exc}"[:500])):
            self._handlers[type(record)](conn, record)

    def _failed(self, exc: Exception) -> None:
        self.stats.write_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self.healthy:
            self.healthy = False
            self.stats.failing_since = self._clock()
            log.error(
                "SQLite writes fail (%s); ingest pauses and the writes are retried until they succeed",
                self.stats.last_error,
            )
        elif not is_environment_error(exc):
            log.exception("SQLite writer failed unexpectedly; retrying")
