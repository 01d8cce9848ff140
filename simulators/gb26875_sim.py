"""A simulated user information transmission device speaking GB/T 26875.3 over TCP.

It behaves as the standard asks of a device: every "send data" waits for the centre's confirm
and is sent again, with the same serial number, up to `retries` times if none arrives within
`confirm_timeout_s`; it confirms the centre's control commands (clock sync, roll-call). Scenarios
(panel fire alarm, fault and restore, analog values, heartbeat, sticky and split frames, corrupt
checksum, vendor types) are plain functions in `SCENARIOS`.

Run `python -m simulators.gb26875_sim --help` for the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from zoneinfo import ZoneInfo

from drivers.gb26875.flags import ComponentFlag
from drivers.gb26875.frame import Command, Frame, TimeLabel, encode_frame
from drivers.gb26875.framer import StreamFramer
from drivers.gb26875.units import (
    ComponentAnalog,
    ComponentStatus,
    DataUnit,
    OpaqueUnit,
    TransmitterStatus,
    encode_unit,
    unit_of,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SendResult:
    serial: int
    attempts: int
    confirmed: bool
    denied: bool = False
    sent_at: float = 0.0  # monotonic time of the first attempt


@dataclass
class SimulatedTransmitter:
    """One transmission device; `connect`, then `send` data units or run scenarios.

    Args:
        address: its 6-byte source address.
        host, port: the centre (the gateway's gb26875 receiver).
        confirm_timeout_s: how long to wait for a confirm before sending again (standard: <= 10 s).
        retries: how many times to send again (standard: 3).
        bcd_time: write time labels in BCD, as some models do.
        ignore_confirms: confirms to ignore, as if lost on the way (for retry tests).
    """

    address: int
    host: str = "127.0.0.1"
    port: int = 9000
    centre_address: int = 0
    confirm_timeout_s: float = 10.0
    retries: int = 3
    bcd_time: bool = False
    ignore_confirms: int = 0
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    clock: Callable[[], float] = time.time
    received: list[Frame] = field(default_factory=list)
    _serial: int = -1
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _waiting: dict[int, asyncio.Future[Command]] = field(default_factory=dict)
    _answers: dict[int, Command] = field(default_factory=dict)  # answers nobody was waiting for yet
    _written: list[bytes] = field(default_factory=list)  # every write, for tests of retries

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.create_task(self._read_forever(), name=f"gb26875-sim-{self.address}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            # The reader may already have ended with the connection (reset by the gateway).
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._task

    def now_label(self) -> TimeLabel:
        return TimeLabel.from_timestamp(self.clock(), self.tz)

    def frame(self, unit: DataUnit | OpaqueUnit | None, serial: int | None = None) -> Frame:
        """The next "send data" frame (a heartbeat when `unit` is None)."""
        if serial is None:
            self._serial = serial = (self._serial + 1) & 0xFFFF
        data = encode_unit(unit, self.bcd_time) if unit is not None else b""
        return Frame(
            serial,
            self.address,
            self.centre_address,
            Command.SEND,
            data,
            self.now_label().to_bytes(self.bcd_time),
        )

    async def send(self, unit: DataUnit | OpaqueUnit | None) -> SendResult:
        """Send one unit and wait for its confirm, retrying as the standard says."""
        return await self.send_frame_bytes(self.frame(unit))

    async def send_frame_bytes(self, raw: bytes | Frame, serial: int | None = None) -> SendResult:
        if isinstance(raw, Frame):
            serial, raw = raw.serial, encode_frame(raw)
        if serial is None:
            serial = int.from_bytes(raw[2:4], "little")
        started = time.monotonic()
        self._answers.pop(serial, None)
        for attempt in range(1, self.retries + 2):
            self.write(raw)
            try:
                answer = await self.wait_answer(serial, self.confirm_timeout_s)
            except TimeoutError:
                continue
            if answer is Command.CONFIRM:
                return SendResult(serial, attempt, True, sent_at=started)
            return SendResult(serial, attempt, False, denied=True, sent_at=started)
        return SendResult(serial, self.retries + 1, False, sent_at=started)

    def write(self, raw: bytes) -> None:
        assert self._writer is not None, "connect() first"
        self._written.append(raw)
        self._writer.write(raw)

    async def drain(self) -> None:
        assert self._writer is not None
        await self._writer.drain()

    async def wait_answer(self, serial: int, timeout_s: float = 5.0) -> Command:
        """Wait for the confirm or deny of a frame written with `write` (raise TimeoutError)."""
        if (answer := self._answers.pop(serial, None)) is not None:
            return answer
        future: asyncio.Future[Command] = asyncio.get_running_loop().create_future()
        self._waiting[serial] = future
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._waiting.pop(serial, None)

    async def _read_forever(self) -> None:
        assert self._reader is not None
        framer = StreamFramer()
        while data := await self._reader.read(65536):
            for item in framer.feed(data):
                if isinstance(item, Frame):
                    self._on_frame(item)

    def _on_frame(self, frame: Frame) -> None:
        self.received.append(frame)
        if frame.command in (Command.CONFIRM, Command.DENY):
            if frame.command is Command.CONFIRM and self.ignore_confirms > 0:
                self.ignore_confirms -= 1
                return
            future = self._waiting.get(frame.serial)
            if future is not None and not future.done():
                future.set_result(frame.command)
            else:
                self._answers[frame.serial] = frame.command
        elif frame.command is Command.CONTROL:
            self.write(encode_frame(frame.reply(Command.CONFIRM, self.now_label().to_bytes(self.bcd_time))))


def component(
    sim: SimulatedTransmitter,
    address: int,
    flags: int,
    component_type: int = 40,
    system_address: int = 1,
    description: str = "",
) -> DataUnit:
    """A component status unit stamped with the device's clock."""
    return unit_of(
        ComponentStatus(1, system_address, component_type, address, flags, description, sim.now_label())
    )


RUNNING = int(ComponentFlag.RUNNING)
ALARM = int(ComponentFlag.FIRE_ALARM)
FAULT = int(ComponentFlag.FAULT)


async def panel_fire_alarm(sim: SimulatedTransmitter, address: int = 0x0002000A) -> list[SendResult]:
    # Alarm with the run bit clear, as the standard's own example (and real panels) send it.
    return [await sim.send(component(sim, address, ALARM, description="三楼走廊感烟"))]


async def fault_and_restore(sim: SimulatedTransmitter, address: int = 0x0002000A) -> list[SendResult]:
    return [
        await sim.send(component(sim, address, RUNNING | FAULT)),
        await sim.send(component(sim, address, RUNNING)),
    ]


async def analog_values(sim: SimulatedTransmitter, address: int = 0x0002000A) -> list[SendResult]:
    unit = unit_of(ComponentAnalog(1, 1, 40, address, 3, 245, sim.now_label()))  # 24.5 °C
    return [await sim.send(unit)]


async def heartbeat(sim: SimulatedTransmitter) -> list[SendResult]:
    return [await sim.send(None), await sim.send(unit_of(TransmitterStatus(0x01, sim.now_label())))]


async def sticky_frames(sim: SimulatedTransmitter, address: int = 0x0002000A) -> list[SendResult]:
    """Three frames in one segment."""
    frames = [sim.frame(component(sim, address, flags)) for flags in (ALARM, RUNNING, ALARM)]
    sim.write(b"".join(encode_frame(frame) for frame in frames))
    return [
        SendResult(frame.serial, 1, await sim.wait_answer(frame.serial) is Command.CONFIRM)
        for frame in frames
    ]


async def split_frames(sim: SimulatedTransmitter, address: int = 0x0002000A) -> list[SendResult]:
    """One frame in three segments, with pauses between them."""
    frame = sim.frame(component(sim, address, ALARM))
    raw = encode_frame(frame)
    for part in (raw[:5], raw[5:31], raw[31:]):
        sim.write(part)
        await sim.drain()
        await asyncio.sleep(0.05)
    return [SendResult(frame.serial, 1, await sim.wait_answer(frame.serial) is Command.CONFIRM)]


async def corrupt_checksum(sim: SimulatedTransmitter, address: int = 0x0002000A) -> list[SendResult]:
    """A frame with a wrong checksum, denied; the device then sends it again intact."""
    frame = sim.frame(component(sim, address, ALARM))
    raw = bytearray(encode_frame(frame))
    raw[-3] ^= 0xFF
    sim.write(bytes(raw))
    denied = await sim.wait_answer(frame.serial) is Command.DENY
    result = await sim.send_frame_bytes(frame)
    return [SendResult(frame.serial, 1, False, denied=denied), result]


async def vendor_types(sim: SimulatedTransmitter) -> list[SendResult]:
    return [await sim.send(OpaqueUnit(200, 1, b"\x01\x02\x03\x04"))]


Scenario = Callable[[SimulatedTransmitter], Awaitable[list[SendResult]]]
SCENARIOS: dict[str, Scenario] = {
    "panel_fire_alarm": panel_fire_alarm,
    "fault_and_restore": fault_and_restore,
    "analog_values": analog_values,
    "heartbeat": heartbeat,
    "sticky_frames": sticky_frames,
    "split_frames": split_frames,
    "corrupt_checksum": corrupt_checksum,
    "vendor_types": vendor_types,
}


async def _main(args: argparse.Namespace) -> None:
    sim = SimulatedTransmitter(
        args.address, args.host, args.port, confirm_timeout_s=args.confirm_timeout_s, bcd_time=args.bcd_time
    )
    await sim.connect()
    try:
        for name in args.scenario:
            for result in await SCENARIOS[name](sim):
                print(
                    f"{name}: serial {result.serial} attempts {result.attempts} confirmed {result.confirmed}"
                )
    finally:
        await sim.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--address", type=int, default=0x000379, help="the device's source address")
    parser.add_argument("--confirm-timeout-s", type=float, default=10.0)
    parser.add_argument("--bcd-time", action="store_true")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
