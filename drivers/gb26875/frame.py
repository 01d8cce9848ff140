"""GB/T 26875.3-2011 frames: `@@ | control unit | application data | checksum | ##`.

The control unit is serial (2 bytes LE), version (major, minor), time label (6 bytes), source and
destination addresses (6 bytes LE each), application data length (2 bytes LE, at most 1024) and
the command byte. The checksum is the sum modulo 256 of every byte from the serial number through
the application data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import IntEnum

from drivers.gb26875.errors import FrameHeader, FrameRejected, RejectReason

START = b"@@"
END = b"##"
HEADER_SIZE = 27  # start marker + control unit (25 bytes)
TRAILER_SIZE = 3  # checksum + end marker
MIN_FRAME_SIZE = HEADER_SIZE + TRAILER_SIZE
MAX_DATA_SIZE = 1024
ADDRESS_MAX = (1 << 48) - 1


class Command(IntEnum):
    """The control unit's command byte (values 0, 7-127 reserved; 128-255 user defined)."""

    CONTROL = 1
    SEND = 2
    CONFIRM = 3
    REQUEST = 4
    ANSWER = 5
    DENY = 6


_COMMANDS = {command.value: command for command in Command}


def checksum(body: bytes | bytearray | memoryview) -> int:
    """Sum modulo 256 of the bytes from the serial number through the application data."""
    return sum(body) & 0xFF


def _bcd(value: int) -> int:
    return ((value >> 4) * 10) + (value & 0x0F)


def _to_bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


@dataclass(frozen=True, slots=True)
class TimeLabel:
    """A 6-byte time label: second, minute, hour, day, month, year - 2000, in local time.

    Some transmission devices send each byte as BCD (0x58 for 58 minutes); that is a per-model
    quirk chosen in config, never guessed, because 0x10-0x19 are valid in both encodings.
    """

    second: int
    minute: int
    hour: int
    day: int
    month: int
    year: int  # 0-99, meaning 2000-2099

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | memoryview, bcd: bool = False) -> TimeLabel:
        """Parse 6 bytes; raise ValueError if a field is out of range (or not BCD when `bcd`)."""
        if len(raw) != 6:
            raise ValueError(f"a time label is 6 bytes, got {len(raw)}")
        values = list(raw)
        if bcd:
            if any((b >> 4) > 9 or (b & 0x0F) > 9 for b in values):
                raise ValueError(f"time label {bytes(raw).hex(' ')} is not BCD")
            values = [_bcd(b) for b in values]
        label = cls(*values)
        label.to_datetime(None)  # validates day-of-month and every range
        if label.second > 59 or label.year > 99:
            raise ValueError(f"time label {bytes(raw).hex(' ')} is out of range")
        return label

    @classmethod
    def from_datetime(cls, moment: datetime) -> TimeLabel:
        if not 2000 <= moment.year <= 2099:
            raise ValueError(f"year {moment.year} cannot be sent in a time label")
        return cls(moment.second, moment.minute, moment.hour, moment.day, moment.month, moment.year - 2000)

    @classmethod
    def from_timestamp(cls, ts: float, tz: tzinfo) -> TimeLabel:
        return cls.from_datetime(datetime.fromtimestamp(ts, tz))

    def to_bytes(self, bcd: bool = False) -> bytes:
        values = (self.second, self.minute, self.hour, self.day, self.month, self.year)
        return bytes(_to_bcd(v) for v in values) if bcd else bytes(values)

    def to_datetime(self, tz: tzinfo | None) -> datetime:
        try:
            return datetime(
                2000 + self.year, self.month, self.day, self.hour, self.minute, self.second, tzinfo=tz
            )
        except ValueError as exc:
            raise ValueError(f"time label {self} is not a date: {exc}") from None

    def to_timestamp(self, tz: tzinfo) -> float:
        return self.to_datetime(tz).timestamp()


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame, its application data still raw bytes (see `units` for their meaning)."""

    serial: int
    source: int
    destination: int
    command: Command
    data: bytes = b""
    time_label: bytes = bytes(6)  # kept raw: a bad header time must not cost an alarm
    version_major: int = 1
    version_minor: int = 1

    @property
    def header(self) -> FrameHeader:
        return FrameHeader(self.serial, self.source, self.destination, self.version_major, self.version_minor)

    def reply(self, command: Command, time_label: bytes, data: bytes = b"") -> Frame:
        """The answer to this frame: same serial, source and destination swapped."""
        return reply_to(self.header, command, time_label, data)


def reply_to(header: FrameHeader, command: Command, time_label: bytes, data: bytes = b"") -> Frame:
    """A confirm, deny or answer: the standard's replies keep the serial and swap the addresses."""
    return Frame(
        header.serial,
        header.destination,
        header.source,
        command,
        data,
        time_label,
        header.version_major,
        header.version_minor,
    )


def encode_frame(frame: Frame) -> bytes:
    """Serialize a frame; raise ValueError for fields that do not fit."""
    if len(frame.data) > MAX_DATA_SIZE:
        raise ValueError(f"application data is {len(frame.data)} bytes, the limit is {MAX_DATA_SIZE}")
    if not (0 <= frame.source <= ADDRESS_MAX and 0 <= frame.destination <= ADDRESS_MAX):
        raise ValueError("addresses are 6 bytes")
    if len(frame.time_label) != 6:
        raise ValueError("a time label is 6 bytes")
    body = b"".join(
        (
            frame.serial.to_bytes(2, "little"),
            bytes((frame.version_major, frame.version_minor)),
            frame.time_label,
            frame.source.to_bytes(6, "little"),
            frame.destination.to_bytes(6, "little"),
            len(frame.data).to_bytes(2, "little"),
            bytes((int(frame.command),)),
            frame.data,
        )
    )
    return START + body + bytes((checksum(body),)) + END


def parse_header(raw: bytes | bytearray | memoryview) -> FrameHeader:
    """The addressing fields of the first 27 bytes of a frame (start marker included)."""
    return FrameHeader(
        serial=int.from_bytes(raw[2:4], "little"),
        source=int.from_bytes(raw[12:18], "little"),
        destination=int.from_bytes(raw[18:24], "little"),
        version_major=raw[4],
        version_minor=raw[5],
    )


def data_length(raw: bytes | bytearray | memoryview) -> int:
    return int.from_bytes(raw[24:26], "little")


def check_frame(raw: bytes | bytearray | memoryview) -> Frame:
    """Validate one complete candidate (its length taken from its own header) and build the Frame.

    Raises:
        FrameRejected: end marker, checksum or command is wrong (each answered with deny).
    """
    header = parse_header(raw)
    length = data_length(raw)
    end = HEADER_SIZE + length
    if bytes(raw[end + 1 : end + 3]) != END:
        raise FrameRejected(
            RejectReason.BAD_END_MARKER,
            f"end marker is {bytes(raw[end + 1 : end + 3]).hex(' ')}, not 23 23",
            bytes(raw),
            header,
        )
    expected = checksum(raw[2:end])
    if raw[end] != expected:
        raise FrameRejected(
            RejectReason.BAD_CHECKSUM,
            f"checksum {raw[end]:#04x}, computed {expected:#04x}",
            bytes(raw),
            header,
        )
    command = _COMMANDS.get(raw[26])
    if command is None:
        raise FrameRejected(RejectReason.UNKNOWN_COMMAND, f"command byte {raw[26]}", bytes(raw), header)
    return Frame(
        header.serial,
        header.source,
        header.destination,
        command,
        bytes(raw[HEADER_SIZE:end]),
        bytes(raw[6:12]),
        header.version_major,
        header.version_minor,
    )


def decode_frame(raw: bytes) -> Frame:
    """Decode exactly one frame (a UDP datagram holding one frame, a test vector).

    Raises:
        FrameRejected: with the reason code of the first check that fails.
    """
    if len(raw) < HEADER_SIZE or raw[:2] != START:
        raise FrameRejected(RejectReason.GARBAGE, "does not start with @@ and a control unit", raw)
    header = parse_header(raw)
    length = data_length(raw)
    if length > MAX_DATA_SIZE:
        raise FrameRejected(RejectReason.LENGTH_OVER_LIMIT, f"length {length} > {MAX_DATA_SIZE}", raw, header)
    if len(raw) != HEADER_SIZE + length + TRAILER_SIZE:
        raise FrameRejected(
            RejectReason.TRUNCATED,
            f"{len(raw)} bytes, the header claims {HEADER_SIZE + length + TRAILER_SIZE}",
            raw,
            header,
        )
    return check_frame(raw)
