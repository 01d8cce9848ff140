"""The gateway as the monitoring centre: what to answer, record and reject for each frame.

Pure and clock-injected (every call takes the receive time): the TCP and UDP adapters in
`receiver` only move bytes, and send a frame's confirm once what it caused has committed. A
transmission device retries a "send data" whose confirm it did not get with the same serial
number, so (source, serial, data) seen recently is confirmed again but yields no records twice.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import tzinfo

from analytics.records import DeviceKind, DeviceState, Record, StatusChange
from drivers.gb26875.config import Gb26875Settings
from drivers.gb26875.errors import FrameRejected, RejectReason
from drivers.gb26875.frame import Command, Frame, TimeLabel, reply_to
from drivers.gb26875.mapping import BoundTransmitter, PanelMapper
from drivers.gb26875.units import ClockSync, Unreadable, decode_unit, encode_unit, unit_of


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """What a transmission device's clock said, for the ingest validator to check."""

    device_id: str
    kind: DeviceKind
    ts: float


@dataclass(slots=True)
class Outcome:
    """What one frame (or one rejected candidate) leads to.

    `replies` go out at once; `confirm` (of a "send data") only once `records` have committed,
    or, for a `duplicate`, once the first copy's records have.
    """

    replies: list[Frame] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    rejected: list[FrameRejected] = field(default_factory=list)
    confirm: Frame | None = None
    duplicate: bool = False
    clock: DeviceClock | None = None


@dataclass(slots=True)
class _Liveness:
    offline_after_s: float
    last_heard: float = 0.0
    online: bool = False


class MonitoringCentre:
    """Answers transmission devices, maps their data, tracks their duplicates and their silence.

    Args:
        mapper: the inventory's panel points and transmitters, and the edge state.
        settings: the gb26875 section.
        tz: the campus time zone, for the time labels the centre sends.
    """

    def __init__(self, mapper: PanelMapper, settings: Gb26875Settings, tz: tzinfo) -> None:
        self._mapper = mapper
        self._settings = settings
        self._tz = tz
        self._recent: dict[int, OrderedDict[int, bytes]] = {}
        self._liveness = {
            bound.device.id: _Liveness(settings.offline_after_s or 3.0 * bound.device.reporting_interval_s)
            for bound in mapper.transmitters
        }
        self._serials: dict[int, int] = {}
        self._unknown_heard: set[int] = set()
        self.counters: Counter[str] = Counter()

    def on_frame(self, frame: Frame, received_at: float) -> Outcome:
        outcome = Outcome()
        self.counters["frames"] += 1
        transmitter = self._mapper.transmitter(frame.source)
        if transmitter is None:
            self._unknown(frame, outcome)
        else:
            self._heard(transmitter, received_at, frame, outcome)
        if frame.command is Command.SEND:
            outcome.confirm = self._reply(frame, Command.CONFIRM, transmitter, received_at)
            if self._is_retry(frame):
                self.counters["duplicates_dropped"] += 1
                outcome.duplicate = True
                return outcome
        elif frame.command is not Command.ANSWER:
            # Confirms and denies of our control commands; a device sends no control or request.
            self.counters[f"command_{frame.command.name.lower()}"] += 1
            return outcome
        if transmitter is not None and frame.data:
            self._map(transmitter, frame, received_at, outcome)
        return outcome

    def on_rejected(self, rejected: FrameRejected, received_at: float) -> Outcome:
        """A candidate the framer refused: deny it when the standard says so, and dead-letter it."""
        outcome = Outcome(rejected=[rejected])
        self.counters[f"rejected_{rejected.reason}"] += 1
        header = rejected.header
        transmitter = self._mapper.transmitter(header.source) if header is not None else None
        if transmitter is not None and not rejected.device_id:
            rejected.device_id = transmitter.device.id
        if rejected.deniable and header is not None:
            outcome.replies.append(reply_to(header, Command.DENY, self._time_label(transmitter, received_at)))
            self.counters["denies"] += 1
        return outcome

    def forget(self, address: int, serial: int) -> None:
        """The records of this frame were not committed: its next retry is taken as new."""
        recent = self._recent.get(address)
        if recent is not None:
            recent.pop(serial, None)

    def transmitter_known(self, address: int) -> bool:
        return self._mapper.transmitter(address) is not None

    def clock_sync(self, address: int, now: float) -> Frame:
        """A control command setting the device's clock to `now` (type 90)."""
        transmitter = self._mapper.transmitter(address)
        bcd = transmitter.model.bcd_time if transmitter else False
        label = TimeLabel.from_timestamp(now, self._tz)
        serial = self._serials[address] = (self._serials.get(address, -1) + 1) & 0xFFFF
        data = encode_unit(unit_of(ClockSync(label)), bcd)
        return Frame(
            serial, self._settings.centre_address, address, Command.CONTROL, data, label.to_bytes(bcd)
        )

    def tick(self, now: float) -> list[Record]:
        """Transmission devices silent for too long go offline (they come back with their next frame)."""
        records: list[Record] = []
        for bound in self._mapper.transmitters:
            state = self._liveness[bound.device.id]
            if state.online and now - state.last_heard >= state.offline_after_s:
                state.online = False
                records.append(
                    StatusChange(bound.device.id, bound.device.kind, DeviceState.OFFLINE, now, "silent")
                )
        return records

    def _heard(
        self, transmitter: BoundTransmitter, received_at: float, frame: Frame, outcome: Outcome
    ) -> None:
        state = self._liveness[transmitter.device.id]
        state.last_heard = max(state.last_heard, received_at)
        if not state.online:
            state.online = True
            reason = "heartbeat" if frame.command is Command.SEND and not frame.data else "frame"
            device = transmitter.device
            outcome.records.append(
                StatusChange(device.id, device.kind, DeviceState.ONLINE, received_at, reason)
            )

    def _unknown(self, frame: Frame, outcome: Outcome) -> None:
        # Every data frame is dead-lettered; of heartbeats only the first, or 2 a minute would be.
        if frame.data or frame.source not in self._unknown_heard:
            self._unknown_heard.add(frame.source)
            outcome.rejected.append(
                FrameRejected(
                    RejectReason.UNKNOWN_DEVICE,
                    f"transmission device address {frame.source} is not under gb26875.transmitters",
                    frame.data,
                    frame.header,
                    device_id=f"gb26875.{frame.source}",
                )
            )

    def _is_retry(self, frame: Frame) -> bool:
        recent = self._recent.setdefault(frame.source, OrderedDict())
        if recent.get(frame.serial) == frame.data:
            return True
        recent[frame.serial] = frame.data
        recent.move_to_end(frame.serial)
        if len(recent) > self._settings.duplicate_window:
            recent.popitem(last=False)
        return False

    def _map(self, transmitter: BoundTransmitter, frame: Frame, received_at: float, outcome: Outcome) -> None:
        model = transmitter.model
        try:
            unit = decode_unit(frame.data, model.bcd_time, model.vendor_types)
        except Unreadable as exc:
            # The frame itself is intact, so it stays confirmed (a deny would only bring the
            # same bytes back three times); its content is dead-lettered.
            outcome.rejected.append(
                FrameRejected(
                    RejectReason.BAD_APP_DATA, str(exc), frame.data, frame.header, transmitter.device.id
                )
            )
            return
        records, rejected = self._mapper.map_unit(transmitter, unit, frame.data, received_at)
        outcome.records.extend(records)
        outcome.rejected.extend(rejected)
        if (device_ts := self._mapper.device_clock(unit)) is not None:
            outcome.clock = DeviceClock(transmitter.device.id, transmitter.device.kind, device_ts)

    def _reply(
        self, frame: Frame, command: Command, transmitter: BoundTransmitter | None, now: float
    ) -> Frame:
        return frame.reply(command, self._time_label(transmitter, now))

    def _time_label(self, transmitter: BoundTransmitter | None, now: float) -> bytes:
        bcd = transmitter.model.bcd_time if transmitter else False
        try:
            return TimeLabel.from_timestamp(now, self._tz).to_bytes(bcd)
        except ValueError:
            return bytes(6)
