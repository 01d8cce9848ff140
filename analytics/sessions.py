"""Per-device ingest sessions: which `seq` each lane has seen, clock skew, last reported status.

A session is what duplicate detection and clock-skew flagging remember about a device. It is
persisted with the records it guards, in the same transaction, so after a crash the gateway
knows exactly which messages it already stored: a redelivery is dropped, a message that never
committed is processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from analytics.records import DeviceState

# How many seqs below the highest one a lane remembers individually. A late message inside the
# window is accepted once; one further below is a device that restarted its counter.
SEQ_WINDOW = 1024
_WINDOW_MASK = (1 << SEQ_WINDOW) - 1


class Lane(StrEnum):
    """The broker sessions a device's messages travel in; each keeps its own seq order."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


@dataclass
class SeqWindow:
    """The seqs one lane has seen: the highest, and a bit for each of the `SEQ_WINDOW` below it.

    A high-water mark alone drops a message resent out of order (24, 31, 25 ... 30) as a
    duplicate; the window remembers each seq, so only a real repeat is dropped.
    """

    high: int = -1  # -1: nothing seen yet
    seen: int = 0  # bit i: seq `high - i` was seen

    def seen_before(self, seq: int) -> bool:
        offset = self.high - seq
        return self.high >= 0 and 0 <= offset < SEQ_WINDOW and bool(self.seen >> offset & 1)

    def mark(self, seq: int) -> None:
        if self.high < 0 or seq > self.high:
            shift = seq - self.high if self.high >= 0 else SEQ_WINDOW
            self.seen = (self.seen << shift | 1) & _WINDOW_MASK if shift < SEQ_WINDOW else 1
            self.high = seq
        elif self.high - seq >= SEQ_WINDOW:  # far below: the device restarted its counter
            self.high, self.seen = seq, 1
        else:
            self.seen |= 1 << (self.high - seq)

    def dump(self) -> str:
        return f"{self.high}:{self.seen:x}"

    @classmethod
    def load(cls, text: str | None) -> SeqWindow:
        if not text:
            return cls()
        high, _, seen = text.partition(":")
        return cls(int(high), int(seen or "0", 16))


@dataclass
class DeviceSession:
    device_id: str
    windows: dict[Lane, SeqWindow] = field(default_factory=dict)
    clock_skewed: bool = False
    status: DeviceState | None = None  # as the device last reported it (status lane)
    status_ts: float | None = None

    def window(self, lane: Lane) -> SeqWindow:
        window = self.windows.get(lane)
        if window is None:
            window = self.windows[lane] = SeqWindow()
        return window
