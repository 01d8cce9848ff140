"""The InfluxDB v2 sink: committed rows from the store, in order, to a TSDB, at least once.

The store is the buffer: each pass reads the records after the cursor (a reader of the pool),
writes them with influxdb-client's synchronous write API, and only once the server has accepted
them moves the cursor; it persists that (a write through the store's one writer, riding in
ingest's group commits) at most once a `CURSOR_COMMIT_S` while a backlog drains, and at once when
caught up or stopping. A crash sends again what was accepted since the last commit; the TSDB
overwrites a point of the same series and timestamp, so the end result is exactly once. Nothing
is held only in memory.

Batches are read on a thread of the sink's own, niced below ingest (`READER_NICE`). While a full
batch is being written the next one is read there: SQLite builds its lines in C while this
thread waits on the server, so with a core free a replay costs about the slower of the two.

While the server is away (a write failed, the sink waiting to retry) the sink is otherwise idle:
a second thread of the same priority renders the batches after the cursor into a bounded spool
of files (`sinks.spool`, `spool_max_bytes`), so that the server's return finds them ready and the
replay is reading files and sending them. The same CPU in all, but spent during the outage. The
spool is derived data: the cursor still moves only once the server accepted a batch, the spool is
emptied at start, and one that no longer follows the cursor or whose file is not as written is
discarded (logged, counted in `sink_spool_discarded`) and the store read instead. Rendering stops
at the bound, at the newest row, or at the first write the server accepts.

Failures: a refusal that the same batch would meet again (400, 401, 403, 413) dead-letters the
batch (kept in `dead_letters` with the server's message and the cursor range, so it can be
replayed once fixed) and the sink goes on; anything else (no connection, 429, 5xx, timeouts)
is retried with backoff and jitter, after at least the server's `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from sinks.backoff import Backoff, parse_retry_after
from sinks.config import InfluxSinkConfig
from sinks.lines import LineEncoder
from sinks.spool import Rendered, Spool, SpoolCorrupt
from storage.forwarding import (
    Backlog,
    ForwardBatch,
    ForwardCursor,
    ReadingLines,
    backlog,
    cursor_ops,
    load_cursor,
    read_batch,
)
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

NAME = "influx"
PERMANENT_STATUSES = frozenset({400, 401, 403, 413})
BACKLOG_REFRESH_S = 1.0  # while replaying; after a pause (caught up, or a failure) at once
# While a backlog drains the cursor is persisted at most this often, not once a batch: fewer
# writes for the one writer; a crash resends up to this much, which the TSDB overwrites.
CURSOR_COMMIT_S = 1.0
# Batches are read (SQLite building their lines: the sink's CPU) on a thread of lower priority:
# when ingest and the sink want more CPU than there is, ingest gets it and the sink falls behind,
# to catch up after the burst. On Linux a thread's nice value is its own.
READER_NICE = 10


def _lower_priority(nice: int) -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux: the thread keeps the process's
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)


@dataclass
class SinkStats:
    """What health and /metrics report; counters also go to the gateway's `Counters`."""

    rows_sent: int = 0
    batches_sent: int = 0
    retries: int = 0
    rows_dropped: int = 0  # removed by retention before they were forwarded
    batches_dead_lettered: int = 0
    rows_dead_lettered: int = 0
    last_error: str = ""
    last_error_at: float | None = None
    last_sent_at: float | None = None
    backlog: Backlog = field(default_factory=lambda: Backlog(0, None))
    spool_bytes: int = 0
    spool_discarded: int = 0  # times the spool did not follow the cursor or a file was not as written
    spool_rendered_rows: int = 0
    spool_render_s: float = 0.0  # wall time spent rendering ahead, and its CPU
    spool_render_cpu_s: float = 0.0


class WriteRefused(Exception):
    """The server refused the batch for good (its content or our credentials)."""


class WriteFailed(Exception):
    """The write may succeed later; `retry_after_s` is the server's wish, if it said one."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InfluxWriter:
    """influxdb-client's synchronous write API, its outcomes sorted into refused and failed."""

    def __init__(self, config: InfluxSinkConfig) -> None:
        self._config = config
        # retries=False (the client's default too): the sink owns retrying, with the cursor.
        self._client = InfluxDBClient(
            url=config.url,
            token=config.token,
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            retries=False,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, body: str) -> None:
        try:
            self._api.write(
                bucket=self._config.bucket,
                org=self._config.org,
                record=body,  # one string: the client serializes a list line by line
                # The client's WritePrecision is a class of str constants ("ms"), not an Enum.
                write_precision=self._config.precision,  # type: ignore[arg-type]
            )
        except InfluxDBError as exc:
            status = getattr(exc, "status", None)
            message = f"HTTP {status}: {str(exc.message)[:300]}" if status else str(exc)[:300]
            if status in PERMANENT_STATUSES:
                raise WriteRefused(message) from exc
            raise WriteFailed(message, parse_retry_after(exc.retry_after)) from exc
        except Exception as exc:  # urllib3's connection errors, timeouts: the server is away
            raise WriteFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


class InfluxSink:
    """Forwards the store to an InfluxDB v2 write API; `run` on the gateway's loop, `step` in a thread.

    Args:
        config: the `sinks.influx` section.
        store: the open store (read through its pool, cursor written through its writer).
        encoder: line protocol for the campus's devices.
        count: adds to a named gateway counter (`Counters.inc`).
        write: sends a request's body of lines (tests pass their own); by default an `InfluxWriter`.
        reader_nice: how far below the process's priority batches are read (0: at the same).
    """

    def __init__(
        self,
        config: InfluxSinkConfig,
        store: SqliteStore,
        encoder: LineEncoder,
        count: Callable[[str, str, int], None] = lambda name, label, amount: None,
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        reader_nice: int = READER_NICE,
    ) -> None:
        self.config = config
        self._store = store
        self._encoder = encoder
        self._lines = ReadingLines(encoder.reading_format())
        self._count = count
        self._writer: InfluxWriter | None = None
        if write is None:
            self._writer = InfluxWriter(config)
            write = self._writer.write
        self._write = write
        self._clock = clock
        self._backoff = Backoff(config.retry_base_s, config.retry_max_s, rng)
        self._cursor: ForwardCursor | None = None  # accepted upstream
        self._persisted: ForwardCursor | None = None  # of those, submitted to the writer
        self._persisted_at = -math.inf
        self._lock = threading.Lock()  # one step at a time, whoever calls it
        self._backlog_at = -math.inf
        self._committing: Future[None] | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._reader_nice = reader_nice
        self._ahead: tuple[ForwardCursor, Future[Rendered]] | None = None
        self.stats = SinkStats()
        # While the TSDB is away, batches are rendered ahead of the cursor into the spool.
        self._spool: Spool | None = None
        if config.spool_max_bytes > 0:
            directory = store.path.parent / f"{store.path.name}.{NAME}-spool"
            self._spool = Spool(directory, config.spool_max_bytes)
        self._spooler: ThreadPoolExecutor | None = None
        self._spooling: Future[None] | None = None
        self._stop_spooling = threading.Event()

    async def run(self) -> None:
        """Forward until cancelled (a pass that is writing finishes in its thread)."""
        try:
            while True:
                delay_s = await asyncio.to_thread(self.step)
                await asyncio.sleep(delay_s)
        finally:
            await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Persist the accepted cursor, stop reading ahead, close the client."""
        with self._lock:
            with contextlib.suppress(Exception):  # the store may be closing; it commits what it holds
                self._flush()
            self._stop_spooling.set()
            if self._spooler is not None:
                self._spooler.shutdown(wait=True, cancel_futures=True)
                self._spooler, self._spooling = None, None
            if self._reader is not None:
                self._reader.shutdown(wait=True, cancel_futures=True)
                self._reader, self._ahead = None, None
            self._lines.close()
            if self._writer is not None:
                self._writer.close()

    def step(self) -> float:
        """One pass: read a batch, write it, move the cursor; returns the seconds to wait."""
        with self._lock:
            try:
                delay_s = self._step()
                if time.monotonic() - self._backlog_at >= BACKLOG_REFRESH_S or delay_s > 0:
                    self._backlog_at = time.monotonic()
                    cursor = self._cursor or ForwardCursor()
                    self.stats.backlog = self._store.read(lambda conn: backlog(conn, cursor))
                return delay_s
            except Exception as exc:  # the store closing, a bug: logged, counted, tried again
                log.exception("influx sink: pass failed")
                self._failed(f"{type(exc).__name__}: {exc}")
                return self._backoff.next_delay()

    def _step(self) -> float:
        started = time.monotonic()
        if self._cursor is None:
            self._cursor = self._persisted = self._store.read(lambda conn: load_cursor(conn, NAME))
        cursor = self._cursor
        batch = self._next_batch(cursor)
        if not batch.rows:  # caught up: persist, also a cursor an earlier pass left queued
            self._advance(batch, persist=True)
            return self.config.poll_interval_s
        spooled_next = self._spooled_at(batch.cursor)
        full = batch.largest >= self.config.batch_rows or spooled_next  # more are waiting
        if full and not spooled_next:  # read them while this batch is on its way
            self._ahead = (batch.cursor, self._reading().submit(self._read, batch.cursor))
        # The batch says how far behind this campus is, as of the last look (at most a second old).
        behind = self.stats.backlog
        now = self._clock()
        age = None if behind.oldest_unsent_ts is None else max(0.0, now - behind.oldest_unsent_ts)
        status = self._encoder.sink_status(behind.rows_behind, age, now)
        body = f"{batch.records}\n{status}" if batch.records else status
        try:
            self._write(body)
        except WriteRefused as exc:
            self._stop_spooling.set()
            self._sent_spooled(batch)
            self._dead_letter(batch, body, str(exc))
        except WriteFailed as exc:
            self._persist()  # what was accepted before this failure: not to be sent again after a crash
            self.stats.retries += 1
            self._count("sink_retries", NAME, 1)
            self._failed(str(exc))
            delay_s = self._backoff.next_delay(exc.retry_after_s)
            log.warning("influx sink: write failed (%s); retrying in %.1f s", exc, delay_s)
            self._spool_ahead()
            return delay_s
        else:
            self._stop_spooling.set()  # the server is back: rendering ahead is for its absence
            self._sent_spooled(batch)
            self._advance(batch, persist=not full or time.monotonic() - self._persisted_at >= CURSOR_COMMIT_S)
            self.stats.rows_sent += batch.rows
            self.stats.batches_sent += 1
            self.stats.last_sent_at = self._clock()
            self._count("sink_rows_sent", NAME, batch.rows)
            self._backoff.reset()
        # Paced: a replay takes at most `max_rows_per_s`; a short batch means caught up.
        paced_s = batch.rows / self.config.max_rows_per_s - (time.monotonic() - started)
        return max(paced_s, 0.0 if full else self.config.poll_interval_s)

    def flush(self) -> None:
        """Persist the accepted cursor and wait for it to commit."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        self._persist(wait=True)
        committing, self._committing = self._committing, None
        if committing is not None:  # a failure is raised once: the next cursor move supersedes it
            committing.result(timeout=60)

    def _reading(self) -> ThreadPoolExecutor:
        """The thread that reads batches, below ingest's priority (`READER_NICE`)."""
        if self._reader is None:
            self._reader = self._niced_thread("influx-sink-reader")
        return self._reader

    def _niced_thread(self, name: str) -> ThreadPoolExecutor:
        """One thread at the reader's priority: the reader's, and the spool's renderer."""
        return ThreadPoolExecutor(1, name, initializer=_lower_priority, initargs=(self._reader_nice,))

    def _read(self, cursor: ForwardCursor) -> Rendered:
        batch = self._store.read(lambda conn: read_batch(conn, cursor, self.config.batch_rows, self._lines))
        return self._render(cursor, batch)

    def _render(self, start: ForwardCursor, batch: ForwardBatch) -> Rendered:
        lines = [
            *([batch.reading_lines] if batch.reading_lines else []),
            *self._encoder.events(batch.events),
            *self._encoder.alert_changes(batch.alert_changes),
        ]
        return Rendered("\n".join(lines), batch.rows, batch.largest, start, batch.cursor, batch.dropped)

    def _next_batch(self, cursor: ForwardCursor) -> Rendered:
        """The batch after `cursor`: the spool's if it holds it, else the one read ahead if it
        starts there (the last write succeeded), else read now."""
        if self._spool is not None:
            try:
                spooled = self._spool.take(cursor)
            except SpoolCorrupt as exc:
                self._spool_discarded(str(exc))
            else:
                if spooled is not None:
                    return spooled
            finally:
                self.stats.spool_bytes = self._spool.bytes
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            start, future = ahead
            if start == cursor:
                return future.result()
            with contextlib.suppress(Exception):  # read from a cursor the failed write did not reach
                future.result()
        return self._reading().submit(self._read, cursor).result()

    # --- the spool: rendering ahead while the server is away ------------------------------------

    def _spooled_at(self, cursor: ForwardCursor) -> bool:
        return self._spool is not None and self._spool.holds(cursor)

    def _sent_spooled(self, batch: Rendered) -> None:
        if self._spool is not None and batch.rows:
            self._spool.pop(batch.start)
            self.stats.spool_bytes = self._spool.bytes

    def _spool_ahead(self) -> None:
        """Render batches ahead into the spool, on a thread of the reader's priority, unless it is
        at it already; it stops at the spool's bound, at the newest row, or once a write succeeds."""
        if self._spool is None or (self._spooling is not None and not self._spooling.done()):
            return
        if self._spooler is None:
            self._spooler = self._niced_thread("influx-sink-spooler")
        self._stop_spooling.clear()
        self._spooling = self._spooler.submit(self._fill_spool, self._spool)

    @property
    def spooling(self) -> bool:
        """Whether batches are being rendered into the spool now."""
        return self._spooling is not None and not self._spooling.done()

    def _fill_spool(self, spool: Spool) -> None:
        started, cpu = time.monotonic(), time.thread_time()
        try:
            while not self._stop_spooling.is_set():
                start = spool.end() or self._cursor
                if start is None:
                    return
                batch = self._read(start)
                if self._stop_spooling.is_set():  # a write succeeded meanwhile: this may be behind it
                    return
                if not batch.rows or not spool.add(batch):
                    return
                self.stats.spool_rendered_rows += batch.rows
                self.stats.spool_bytes = spool.bytes
                if batch.largest < self.config.batch_rows:
                    return  # caught up: a later failure renders what arrived since
        except Exception:  # the store closing, a full disk: the sink reads the store as without one
            log.exception("influx sink: rendering ahead into the spool failed")
        finally:
            self.stats.spool_render_s += time.monotonic() - started
            self.stats.spool_render_cpu_s += time.thread_time() - cpu

    def _spool_discarded(self, reason: str) -> None:
        self.stats.spool_discarded += 1
        self._count("sink_spool_discarded", NAME, 1)
        log.warning("influx sink: spool discarded (%s); reading the store instead", reason)

    def _advance(self, batch: Rendered, persist: bool, dead_letter: tuple[str, bytes] | None = None) -> None:
        """Move the cursor past `batch`, accepted upstream; persist it now if asked (and a dead
        letter always, in the same transaction as the cursor that passes its batch)."""
        self._cursor = batch.cursor
        if persist or dead_letter is not None:
            self._persist(dead_letter)
        if batch.dropped:  # counted once the cursor passes them (a failed write reads them again)
            self.stats.rows_dropped += batch.dropped
            self._count("sink_rows_dropped", NAME, batch.dropped)
            log.warning(
                "influx sink: %d readings were deleted by retention before they were forwarded", batch.dropped
            )

    def _persist(self, dead_letter: tuple[str, bytes] | None = None, wait: bool = False) -> None:
        """Submit the accepted cursor (with a dead letter) to the writer, unless it is there already.

        On the bulk lane: the cursor rides in ingest's next group commit rather than adding a
        commit (an fsync) of its own ahead of it. Nothing waits for it: while the last one is still
        queued behind ingest's rows, the newer cursor is left to a later pass (one outstanding at
        most; `wait` and a dead letter wait for it instead).
        """
        cursor = self._cursor
        if cursor is None or (cursor == self._persisted and dead_letter is None):
            return
        committing = self._committing
        if committing is not None:
            if not committing.done() and not wait and dead_letter is None:
                return
            self._committing = None
            committing.result(timeout=60)  # a failure is raised once: this cursor move supersedes it
        with self._store.unit() as unit:
            for op in cursor_ops(NAME, cursor):
                self._store.write(op)
            if dead_letter is not None:
                detail, payload = dead_letter
                self._store.add_dead_letter(
                    self._clock(), f"sink:{NAME}", "", "sink_refused", detail, payload
                )
        self._committing = unit.future
        self._persisted, self._persisted_at = cursor, time.monotonic()

    def _dead_letter(self, batch: Rendered, body: str, error: str) -> None:
        old = self._cursor or ForwardCursor()
        detail = (
            f"{error}; readings rowid {old.readings}..{batch.cursor.readings}, events id {old.events}.."
            f"{batch.cursor.events}, alert audit id {old.alerts}..{batch.cursor.alerts}"
        )
        self._advance(batch, persist=True, dead_letter=(detail, body.encode()[:65536]))
        self.stats.batches_dead_lettered += 1
        self.stats.rows_dead_lettered += batch.rows
        self._count("sink_batches_dead_lettered", NAME, 1)
        self._count("sink_rows_dead_lettered", NAME, batch.rows)
        self._failed(error)
        log.error(
            "influx sink: the server refused a batch of %d records (%s); dead-lettered", batch.rows, error
        )

    def _failed(self, error: str) -> None:
        self.stats.last_error = error
        self.stats.last_error_at = self._clock()

    def health(self) -> dict[str, Any]:
        stats = self.stats
        oldest = stats.backlog.oldest_unsent_ts
        return {
            "url": self.config.url,
            "rows_behind": stats.backlog.rows_behind,
            "oldest_unsent_age_s": None if oldest is None else round(max(0.0, self._clock() - oldest), 1),
            "rows_sent": stats.rows_sent,
            "retries": stats.retries,
            "rows_dropped": stats.rows_dropped,
            "batches_dead_lettered": stats.batches_dead_lettered,
            "rows_dead_lettered": stats.rows_dead_lettered,
            "last_error": stats.last_error,
            "last_error_at": stats.last_error_at,
            "last_sent_at": stats.last_sent_at,
            "spool_bytes": stats.spool_bytes,
            "spool_discarded": stats.spool_discarded,
        }
