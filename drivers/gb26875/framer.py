"""Cut a TCP byte stream (or a UDP datagram) into frames, whatever the segment boundaries.

Frames arrive stuck together and split across segments. After a bad candidate the framer
resynchronises on the next `@@` after that candidate's start, never by skipping the length the
candidate claimed: a corrupt length byte would otherwise swallow the good frames behind it.
The output depends only on the bytes fed, never on how they were split (tests check this).
"""

from __future__ import annotations

from drivers.gb26875.errors import FrameRejected, RejectReason
from drivers.gb26875.frame import (
    END,
    HEADER_SIZE,
    MAX_DATA_SIZE,
    START,
    TRAILER_SIZE,
    Frame,
    check_frame,
    checksum,
    data_length,
    parse_header,
)

MAX_GARBAGE_REPORT = 256  # bytes of a garbage run kept in its dead letter


class StreamFramer:
    """Incremental framer: `feed` bytes, get complete frames and rejections in stream order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._garbage = bytearray()
        self._garbage_count = 0
        # After a bad candidate, the bytes up to the next `@@` belong to it, not to a new garbage run.
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame | FrameRejected]:
        self._buffer += data
        out: list[Frame | FrameRejected] = []
        self._drain(out)
        return out

    def expire(self) -> list[Frame | FrameRejected]:
        """Give up on a frame that stopped arriving (the caller decides when: idle, closed).

        The held bytes are rescanned from the byte after the abandoned start, so a good frame
        hidden behind a bogus `@@` with a long claimed length is still found.
        """
        out: list[Frame | FrameRejected] = []
        while self._buffer:
            if self._buffer[:2] == START:
                header = parse_header(self._buffer) if len(self._buffer) >= HEADER_SIZE else None
                out.append(
                    FrameRejected(
                        RejectReason.TRUNCATED,
                        f"stream stopped after {len(self._buffer)} bytes of a frame",
                        bytes(self._buffer[: HEADER_SIZE + MAX_DATA_SIZE + TRAILER_SIZE]),
                        header,
                    )
                )
                self._skip_candidate()
            else:
                # A lone trailing `@` that never became a start marker.
                self._take_garbage(len(self._buffer))
            self._drain(out)
        self._flush_garbage(out)
        return out

    def _drain(self, out: list[Frame | FrameRejected]) -> None:
        buffer = self._buffer
        while buffer:
            start = buffer.find(START)
            if start < 0:
                # Keep a trailing `@`: it may be the first half of the next start marker.
                self._take_garbage(len(buffer) - 1 if buffer[-1:] == b"@" else len(buffer))
                return
            if start:
                self._take_garbage(start)
            self._discarding = False
            self._flush_garbage(out)
            if len(buffer) < HEADER_SIZE:
                return
            length = data_length(buffer)
            if length > MAX_DATA_SIZE:
                out.append(
                    FrameRejected(
                        RejectReason.LENGTH_OVER_LIMIT,
                        f"length {length} > {MAX_DATA_SIZE}",
                        bytes(buffer[:HEADER_SIZE]),
                        parse_header(buffer),
                    )
                )
                self._skip_candidate()
                continue
            total = HEADER_SIZE + length + TRAILER_SIZE
            if len(buffer) < total:
                # A corrupt length, or a stray `@` before a real frame, makes a candidate that
                # claims more bytes than will come; rather than hold the good frames behind it
                # until the stream idles, give it up once a complete, valid frame starts inside it.
                later = _valid_frame_start(buffer)
                if later is None:
                    return
                out.append(
                    FrameRejected(
                        RejectReason.TRUNCATED,
                        f"cut short after {later} bytes by the next frame",
                        bytes(buffer[:later]),
                        parse_header(buffer),
                    )
                )
                del buffer[:later]
                continue
            try:
                out.append(check_frame(buffer[:total]))
            except FrameRejected as rejected:
                out.append(rejected)
                self._skip_candidate()
                continue
            del buffer[:total]

    def _skip_candidate(self) -> None:
        del self._buffer[:1]
        self._discarding = True

    def _take_garbage(self, count: int) -> None:
        if not self._discarding:
            room = MAX_GARBAGE_REPORT - len(self._garbage)
            self._garbage += self._buffer[: min(count, room)]
            self._garbage_count += count
        del self._buffer[:count]

    def _flush_garbage(self, out: list[Frame | FrameRejected]) -> None:
        if self._garbage_count:
            out.append(
                FrameRejected(
                    RejectReason.GARBAGE,
                    f"{self._garbage_count} bytes before a start marker",
                    bytes(self._garbage),
                )
            )
            self._garbage.clear()
            self._garbage_count = 0


def _valid_frame_start(buffer: bytearray) -> int | None:
    """The offset of the first complete frame with a good end marker and checksum after offset 0."""
    start = buffer.find(START, 1)
    while start > 0:
        if len(buffer) - start >= HEADER_SIZE:
            length = int.from_bytes(buffer[start + 24 : start + 26], "little")
            end = start + HEADER_SIZE + length
            if (
                length <= MAX_DATA_SIZE
                and len(buffer) >= end + TRAILER_SIZE
                and buffer[end + 1 : end + 3] == END
                and checksum(buffer[start + 2 : end]) == buffer[end]
            ):
                return start
        start = buffer.find(START, start + 1)
    return None
