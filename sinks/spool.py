"""Request bodies rendered ahead of the sink's cursor while the TSDB is away, one file a batch.

Derived data, never a second source of truth: the store's persisted cursor still says what was
sent. A segment names the cursor it starts at and the one it ends at; the sink sends the head
segment only when it starts exactly at the sink's cursor, and anything else (a segment that no
longer follows the cursor, a file that is short, altered or unreadable) discards the whole spool,
after which the sink reads the store as it would without one. The spool is emptied when the
sink starts, so a crash never replays what a spool held: the store is read again.

A segment file: one JSON header line (the cursors, the batch's counts, the body's length and
CRC-32), then the body, the batch's records as line protocol. Written to a temporary name and
renamed. The files' bytes together never exceed `max_bytes`: rendering stops at the bound.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from storage.forwarding import ForwardCursor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A batch as a request carries it: its records' lines, and where it moves the cursor."""

    records: str  # line protocol, one record a line ("" if none)
    rows: int
    largest: int  # rows of the fullest stream (a full batch: more are waiting)
    start: ForwardCursor
    cursor: ForwardCursor
    dropped: int  # readings retention deleted between `start` and this batch


@dataclass(frozen=True, slots=True)
class _Segment:
    path: Path
    start: ForwardCursor
    end: ForwardCursor
    size: int


def _cursor_list(cursor: ForwardCursor) -> list[int | None]:
    return [cursor.readings, cursor.events, cursor.alerts]


def _passed(end: ForwardCursor, cursor: ForwardCursor) -> bool:
    """Whether a segment ending at `end` was sent by the time the sink is at `cursor`."""
    return all(
        mine is None or (theirs is not None and mine <= theirs)
        for mine, theirs in zip(_cursor_list(end), _cursor_list(cursor), strict=True)
    )


class SpoolCorrupt(Exception):
    pass


class Spool:
    """Segments in `directory`, oldest first; thread-safe (one thread renders, another sends).

    Args:
        directory: the spool's own folder (emptied now).
        max_bytes: the bound on the segment files' bytes together.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._segments: deque[_Segment] = deque()
        self._bytes = 0
        self._next = 0
        self._lock = threading.Lock()
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def segments(self) -> int:
        return len(self._segments)

    def holds(self, start: ForwardCursor) -> bool:
        """Whether a segment starts at `start`."""
        with self._lock:
            return any(segment.start == start for segment in self._segments)

    def end(self) -> ForwardCursor | None:
        """Where the newest segment ends (None: the spool is empty)."""
        with self._lock:
            return self._segments[-1].end if self._segments else None

    def add(self, batch: Rendered) -> bool:
        """Append `batch` as a segment; False (nothing written) if the bound or the chain forbids it."""
        body = batch.records.encode()
        header = json.dumps(
            {
                "start": _cursor_list(batch.start),
                "end": _cursor_list(batch.cursor),
                "rows": batch.rows,
                "largest": batch.largest,
                "dropped": batch.dropped,
                "length": len(body),
                "crc32": zlib.crc32(body),
            }
        ).encode()
        size = len(header) + 1 + len(body)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                return False
            if self._segments and self._segments[-1].end != batch.start:
                return False
            path = self.directory / f"{self._next:010d}.lp"
            self._next += 1
        temporary = path.with_suffix(".tmp")
        try:
            with temporary.open("wb") as file:
                file.write(header + b"\n" + body)
            os.replace(temporary, path)
        except OSError:  # a full disk: nothing of it stays
            temporary.unlink(missing_ok=True)
            raise
        with self._lock:
            if self._segments and self._segments[-1].end != batch.start:  # discarded meanwhile
                path.unlink(missing_ok=True)
                return False
            self._segments.append(_Segment(path, batch.start, batch.cursor, size))
            self._bytes += size
        return True

    def take(self, cursor: ForwardCursor) -> Rendered | None:
        """The head segment if it starts at `cursor` (ones that end at or before it were sent: they go).

        Raises SpoolCorrupt (after discarding everything) for a segment that does not follow the
        cursor or whose file is not what was written.
        """
        with self._lock:
            while self._segments and _passed(self._segments[0].end, cursor):
                self._drop_head()
            if not self._segments:
                return None
            head = self._segments[0]
        if head.start != cursor:
            self.discard()
            raise SpoolCorrupt(f"its head segment starts at {head.start}, the cursor is at {cursor}")
        try:
            raw = head.path.read_bytes()
            header_text, _, body = raw.partition(b"\n")
            header = json.loads(header_text)
            start = ForwardCursor(*header["start"])
            end = ForwardCursor(*header["end"])
            if (start, end) != (head.start, head.end):
                raise ValueError(f"its header names {start}..{end}")
            if len(body) != header["length"] or zlib.crc32(body) != header["crc32"]:
                raise ValueError(f"{len(body)} body bytes of {header['length']}, or their CRC differs")
            return Rendered(body.decode(), header["rows"], header["largest"], start, end, header["dropped"])
        except (OSError, ValueError, KeyError, TypeError) as exc:  # JSON and UTF-8 errors are ValueErrors
            self.discard()
            raise SpoolCorrupt(f"segment {head.path.name}: {type(exc).__name__}: {exc}") from exc

    def pop(self, start: ForwardCursor) -> None:
        """Remove the head segment once sent, if it is the one that starts at `start`."""
        with self._lock:
            if self._segments and self._segments[0].start == start:
                self._drop_head()

    def discard(self) -> None:
        """Remove every segment."""
        with self._lock:
            while self._segments:
                self._drop_head()

    def _drop_head(self) -> None:
        head = self._segments.popleft()
        head.path.unlink(missing_ok=True)
        self._bytes -= head.size
