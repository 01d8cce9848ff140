"""Per-device ingest sessions: which `seq` each lane has seen, clock skew, last reported status.

A session is what duplicate detection and clock-skew flagging remember about a device. It is
persisted with the records it guards, in the same transaction, so after a crash the gateway
knows exactly which messages it already stored: a redelivery is dropped, a message that never
committed is processed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from analytics.records import DeviceState

# How many seqs below the highest one a lane remembers individually. A late message inside the
# window is accepted once; one further below is a device that restarted its counter.
SEQ_WINDOW = 1024


class Lane(StrEnum):
    """The broker sessions a device's messages travel in; each keeps its own seq order."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


@dataclass
class SeqWindow:
    """The seqs one lane has seen: the highest, and the ones below it (within `SEQ_WINDOW`) that
    have not arrived yet.

    A high-water mark alone drops a message resent out of order (24, 31, 25 ... 30) as a
    duplicate; the window remembers each gap, so only a real repeat is dropped. Devices send in
    order almost always, so the gaps are few and the usual step is one comparison. A seq below
    the first one a fresh window saw (within the window) is taken for a redelivery: it may have
    been processed before the window's memory began.
    """

    high: int = -1  # -1: nothing seen yet
    missing: set[int] = field(default_factory=set)  # below `high`, within the window, not yet seen

    def admit(self, seq: int) -> bool:
        """Mark `seq` seen; False if it was seen before (a redelivery)."""
        high = self.high
        if seq == high + 1:
            self.high = seq
            if self.missing:
                self._forget_below(seq - SEQ_WINDOW)
            return True
        if seq > high:
            if high >= 0:
                self.missing.update(range(max(high + 1, seq - SEQ_WINDOW + 1), seq))
            self.high = seq
            self._forget_below(seq - SEQ_WINDOW)
            return True
        if high - seq >= SEQ_WINDOW:  # far below: the device restarted its counter
            self.high, self.missing = seq, set()
            return True
        if seq in self.missing:
            self.missing.discard(seq)
            return True
        return False

    def reset(self) -> None:
        self.high, self.missing = -1, set()

    def _forget_below(self, floor: int) -> None:
        if self.missing and min(self.missing) <= floor:
            self.missing = {seq for seq in self.missing if seq > floor}

    def dump(self) -> str:
        if not self.missing:
            return str(self.high)
        return f"{self.high}:{','.join(map(str, sorted(self.missing)))}"

    @classmethod
    def load(cls, text: str | None) -> SeqWindow:
        if not text:
            return cls()
        high, _, missing = text.partition(":")
        return cls(int(high), {int(seq) for seq in missing.split(",")} if missing else set())


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


@dataclass(frozen=True, slots=True)
class SessionChanges:
    """What of the sessions changed since the last save: per lane, each device's window dump;
    and the devices whose flags (clock skew, reported status) changed."""

    windows: Mapping[Lane, Sequence[tuple[str, str]]]
    flags: Sequence[DeviceSession]

    def __bool__(self) -> bool:
        return bool(self.windows or self.flags)
