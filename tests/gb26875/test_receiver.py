"""The receiver on real loopback sockets, driven by the simulated transmission device."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from analytics.devices import DeviceSpec, Inventory
from analytics.ingest import Envelope, IngestValidator
from analytics.records import DeviceEvent, DeviceKind, DeviceState, Record, StatusChange
from drivers.errors import PayloadError
from drivers.gb26875.frame import Command, Frame, decode_frame, encode_frame
from drivers.gb26875.receiver import Gb26875Receiver
from drivers.gb26875.units import decode_unit
from simulators import gb26875_sim as sim
from tests.gb26875 import support
from tests.gb26875 import vectors as v


class Collector:
    """Sink and reject sink in one, with waits: records pass the real ingest validator; with
    `hold`, commits wait until `commit()`."""

    def __init__(self, inventory: Inventory | None = None) -> None:
        self.validator = IngestValidator(inventory or support.inventory())
        self.records: list[Record] = []
        self.batches: list[list[Record]] = []
        self.rejected: list[tuple[PayloadError, str, bytes]] = []
        self.hold = False
        self.pending: list[Future[None]] = []
        self._changed = asyncio.Event()

    def submit_envelopes(self, envelopes: Sequence[Envelope]) -> Future[None]:
        records: list[Record] = []
        for envelope in envelopes:
            admitted = self.validator.admit(envelope)  # refused: the receiver built it wrong
            assert isinstance(admitted, tuple)
            records.extend(admitted)
        self.records.extend(records)
        self.batches.append(records)
        future: Future[None] = Future()
        if self.hold:
            self.pending.append(future)
        else:
            future.set_result(None)
        self._changed.set()
        return future

    def commit(self, error: Exception | None = None) -> None:
        """Complete the held commits (or fail them with `error`) and stop holding."""
        self.hold = False
        for future in self.pending:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        self.pending.clear()

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None:
        self.rejected.append((error, source, payload))
        self._changed.set()

    def events(self, name: str | None = None) -> list[DeviceEvent]:
        return [r for r in self.records if isinstance(r, DeviceEvent) and (name is None or r.name == name)]

    def reasons(self) -> list[str]:
        return [error.reason for error, _, _ in self.rejected]

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            self._changed.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Gb26875Receiver, Collector]]:
    extra: dict[str, Any] = getattr(request, "param", {})
    collector = Collector()
    settings = support.settings(host="127.0.0.1", port=0, udp_port=0, **extra)
    server = Gb26875Receiver(settings, support.inventory(), collector, collector)
    await server.start()
    yield server, collector
    await server.stop()


def device(server: Gb26875Receiver, **kwargs: Any) -> sim.SimulatedTransmitter:
    return sim.SimulatedTransmitter(
        support.DEVICE_ADDRESS, "127.0.0.1", server.tcp_port, support.CENTRE_ADDRESS, **kwargs
    )


async def test_panel_fire_alarm_is_confirmed_and_becomes_a_smoke_alarm(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server)
    await transmitter.connect()
    started = time.monotonic()
    (result,) = await sim.panel_fire_alarm(transmitter)
    assert result.confirmed and result.attempts == 1
    assert time.monotonic() - started < 1.0  # the standard allows 10 s
    await collector.wait_for(lambda: bool(collector.events("alarm")))
    online = collector.records[0]
    assert isinstance(online, StatusChange) and online.state is DeviceState.ONLINE
    assert online.device_id == "panel-a"
    (alarm,) = collector.events("alarm")
    assert (alarm.device_id, alarm.kind) == ("panel-a-smoke-1", DeviceKind.SMOKE)
    assert alarm.attrs["description"] == "三楼走廊感烟"
    confirm = next(f for f in transmitter.received if f.command is Command.CONFIRM)
    assert (confirm.source, confirm.destination, confirm.data) == (
        support.CENTRE_ADDRESS,
        support.DEVICE_ADDRESS,
        b"",
    )
    await transmitter.close()


async def test_the_standards_frame_gets_the_standards_confirm(receiver: Any) -> None:
    server, _collector = receiver
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
    writer.write(v.STANDARD_SMOKE_ALARM)
    confirm = decode_frame(await reader.readexactly(30))
    expected = decode_frame(v.STANDARD_CONFIRM)
    assert (confirm.serial, confirm.source, confirm.destination, confirm.command, confirm.data) == (
        expected.serial,
        expected.source,
        expected.destination,
        Command.CONFIRM,
        b"",
    )
    writer.close()


@pytest.mark.parametrize("scenario", ["sticky_frames", "split_frames"])
async def test_sticky_and_split_frames(receiver: Any, scenario: str) -> None:
    server, collector = receiver
    transmitter = device(server)
    await transmitter.connect()
    results = await sim.SCENARIOS[scenario](transmitter)
    assert all(result.confirmed for result in results)
    await collector.wait_for(
        lambda: len(collector.events("alarm")) == (2 if scenario == "sticky_frames" else 1)
    )
    assert collector.rejected == []
    await transmitter.close()


async def test_corrupt_checksum_is_denied_then_the_resend_confirmed(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server)
    await transmitter.connect()
    denied, resent = await sim.corrupt_checksum(transmitter)
    assert denied.denied and resent.confirmed
    await collector.wait_for(lambda: bool(collector.events("alarm")))
    assert collector.reasons() == ["bad_checksum"]
    error, source, payload = collector.rejected[0]
    assert error.device_id == "panel-a" and source.startswith("gb26875://127.0.0.1:") and len(payload) == 78
    await transmitter.close()


async def test_a_lost_confirm_is_retried_and_the_duplicate_dropped(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server, confirm_timeout_s=0.2, ignore_confirms=1)
    await transmitter.connect()
    (result,) = await sim.panel_fire_alarm(transmitter)
    assert result.confirmed and result.attempts == 2
    assert transmitter._written[0] == transmitter._written[1]  # same serial, same bytes
    await asyncio.sleep(0.05)
    assert len(collector.events("alarm")) == 1
    assert server.stats()["duplicates_dropped"] == 1
    await transmitter.close()


async def test_a_device_that_never_gets_its_confirm_sends_four_times_and_records_once(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server, confirm_timeout_s=0.1, ignore_confirms=100)
    await transmitter.connect()
    (result,) = await sim.panel_fire_alarm(transmitter)
    assert not result.confirmed and result.attempts == 4
    assert len(collector.events("alarm")) == 1
    assert server.stats()["duplicates_dropped"] == 3
    assert server.stats()["confirms"] == 4
    await transmitter.close()


def confirms(transmitter: sim.SimulatedTransmitter) -> list[Frame]:
    return [frame for frame in transmitter.received if frame.command is Command.CONFIRM]


async def test_the_confirm_goes_out_only_once_the_records_have_committed(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server)
    await transmitter.connect()
    await sim.heartbeat(transmitter)  # online; its own records committed at once
    collector.hold = True
    sending = asyncio.create_task(sim.panel_fire_alarm(transmitter))
    await collector.wait_for(lambda: bool(collector.pending))
    await asyncio.sleep(0.3)
    assert len(confirms(transmitter)) == 2  # the heartbeat's two, not the alarm's
    assert not sending.done()
    collector.commit()
    ((result,),) = [await sending]
    assert result.confirmed and result.attempts == 1
    assert server.stats()["confirms"] == 3
    await transmitter.close()


@pytest.mark.parametrize("receiver", [{"commit_wait_s": 0.4}], indirect=True)
async def test_a_store_slower_than_commit_wait_gets_no_confirm_and_the_retry_waits_for_the_commit(
    receiver: Any,
) -> None:
    server, collector = receiver
    transmitter = device(server, confirm_timeout_s=0.5)
    await transmitter.connect()
    collector.hold = True
    sending = asyncio.create_task(sim.panel_fire_alarm(transmitter))
    await asyncio.sleep(0.7)  # the first copy withheld at 0.4 s, the retry (0.5 s) waiting
    assert confirms(transmitter) == []
    assert server.stats()["confirms_withheld"] == 1
    collector.commit()
    ((result,),) = [await sending]
    assert result.confirmed and result.attempts == 2
    assert len(collector.events("alarm")) == 1
    assert server.stats()["duplicates_dropped"] == 1
    await transmitter.close()


@pytest.mark.parametrize("receiver", [{"commit_wait_s": 0.2}], indirect=True)
async def test_a_failed_commit_is_not_confirmed_and_the_retry_brings_the_records_again(
    receiver: Any,
) -> None:
    server, collector = receiver
    transmitter = device(server, confirm_timeout_s=0.5)
    await transmitter.connect()
    collector.hold = True
    sending = asyncio.create_task(sim.panel_fire_alarm(transmitter))
    await collector.wait_for(lambda: bool(collector.pending))
    collector.commit(RuntimeError("not committed: disk I/O error"))
    ((result,),) = [await sending]
    assert result.confirmed and result.attempts == 2
    alarms = [batch for batch in collector.batches if any(getattr(r, "name", "") == "alarm" for r in batch)]
    assert len(alarms) == 2  # the lost copy and the retry, taken afresh
    assert server.stats()["duplicates_dropped"] == 0
    await transmitter.close()


async def test_a_panel_clock_off_by_an_hour_is_flagged_by_the_validator_and_cleared(receiver: Any) -> None:
    server, collector = receiver
    slow = time.time() - 3600
    transmitter = device(server, clock=lambda: slow)
    await transmitter.connect()
    assert (await sim.panel_fire_alarm(transmitter))[0].confirmed
    await collector.wait_for(lambda: bool(collector.events("alarm")))
    (skew,) = collector.events("clock_skew")
    assert (skew.device_id, skew.kind) == ("panel-a", DeviceKind.FIRE_PANEL)
    assert skew.attrs["skew_s"] == pytest.approx(-3600, abs=5)
    (alarm,) = collector.events("alarm")
    assert alarm.ts == pytest.approx(time.time(), abs=5)  # the receive time, not the panel's
    assert collector.validator.session("panel-a").clock_skewed
    transmitter.clock = time.time
    assert (await sim.fault_and_restore(transmitter))[0].confirmed
    await collector.wait_for(lambda: bool(collector.events("clock_skew_clear")))
    assert not collector.validator.session("panel-a").clock_skewed
    await transmitter.close()


async def test_fault_restore_analog_heartbeat_and_vendor_types(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server)
    await transmitter.connect()
    for name in ("fault_and_restore", "analog_values", "heartbeat", "vendor_types"):
        assert all(result.confirmed for result in await sim.SCENARIOS[name](transmitter))
    await collector.wait_for(lambda: "vendor_type" in collector.reasons())
    smoke = [(e.name) for e in collector.events() if e.device_id == "panel-a-smoke-1"]
    assert smoke == ["alarm_clear", "fault", "fault_clear"]
    readings = [r for r in collector.records if getattr(r, "metric", None) == "temperature_c"]
    assert [r.value for r in readings] == [pytest.approx(24.5)]  # type: ignore[union-attr]
    assert [e.name for e in collector.events() if e.device_id == "panel-a"] == ["alarm_clear", "fault_clear"]
    await transmitter.close()


async def test_unknown_component_and_unknown_transmitter_are_confirmed_and_reported(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server)
    await transmitter.connect()
    (result,) = await sim.panel_fire_alarm(transmitter, address=99 | 7 << 16)
    assert result.confirmed
    stranger = sim.SimulatedTransmitter(0xABCDEF, "127.0.0.1", server.tcp_port)
    await stranger.connect()
    assert (await sim.panel_fire_alarm(stranger))[0].confirmed
    await collector.wait_for(lambda: len(collector.rejected) == 2)
    assert [(e.reason, e.device_id) for e, _, _ in collector.rejected] == [
        ("unknown_device", "panel-a.s1-1.c99-7"),
        ("unknown_device", f"gb26875.{0xABCDEF}"),
    ]
    await transmitter.close()
    await stranger.close()


async def test_garbage_on_a_connection_does_not_stop_the_receiver(receiver: Any) -> None:
    server, collector = receiver
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
    writer.write(b"\x00\x40garbage\xff" * 10 + v.STANDARD_VERSION)
    confirm = decode_frame(await reader.readexactly(30))
    assert confirm.command is Command.CONFIRM
    assert collector.reasons()[0] == "garbage"
    writer.close()
    transmitter = device(server)
    await transmitter.connect()
    assert (await sim.heartbeat(transmitter))[0].confirmed
    await transmitter.close()


@pytest.mark.parametrize("receiver", [{"clock_sync_on_connect": True}], indirect=True)
async def test_clock_sync_on_connect(receiver: Any) -> None:
    server, collector = receiver
    transmitter = device(server)
    await transmitter.connect()
    await sim.heartbeat(transmitter)
    await collector.wait_for(lambda: server.stats()["command_confirm"] == 1)
    control = next(f for f in transmitter.received if f.command is Command.CONTROL)
    unit = decode_unit(control.data)
    assert unit.type_code == 90  # type: ignore[union-attr]
    await transmitter.close()


async def test_udp_datagram_is_confirmed(receiver: Any) -> None:
    server, collector = receiver
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(v.STANDARD_SMOKE_ALARM + v.STANDARD_VERSION, ("127.0.0.1", server.udp_port))
        replies = await asyncio.to_thread(udp.recv, 4096)  # the loop must stay free to answer
    assert [decode_frame(replies[i : i + 30]).command for i in (0, 30)] == [Command.CONFIRM, Command.CONFIRM]
    await collector.wait_for(lambda: bool(collector.events("alarm")))


async def test_one_hundred_devices_at_once() -> None:
    devices: list[DeviceSpec] = []
    pairs = []
    for n in range(100):
        devices.extend(support.panel_devices(f"panel-{n}"))
        pairs.append((f"panel-{n}", 1000 + n))
    collector = Collector(Inventory(devices))
    server = Gb26875Receiver(
        support.settings(*pairs, host="127.0.0.1", port=0), Inventory(devices), collector, collector
    )
    await server.start()
    fleet = [sim.SimulatedTransmitter(1000 + n, "127.0.0.1", server.tcp_port) for n in range(100)]
    await asyncio.gather(*(t.connect() for t in fleet))
    results = await asyncio.gather(*(sim.panel_fire_alarm(t) for t in fleet))
    assert all(r[0].confirmed for r in results)
    await collector.wait_for(lambda: len(collector.events("alarm")) == 100)
    assert {e.device_id for e in collector.events("alarm")} == {f"panel-{n}-smoke-1" for n in range(100)}
    assert server.stats()["tcp_connections"] == 100
    await asyncio.gather(*(t.close() for t in fleet))
    await server.stop()


def test_frame_helpers_used_by_the_tests_round_trip() -> None:
    frame = Frame(5, 1, 2, Command.SEND)
    assert decode_frame(encode_frame(frame)) == frame


@pytest.mark.parametrize("receiver", [{"idle_expire_s": 0.1}], indirect=True)
async def test_a_frame_that_stops_arriving_is_dead_lettered_when_the_connection_idles(receiver: Any) -> None:
    server, collector = receiver
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
    writer.write(v.STANDARD_SMOKE_ALARM[:40])
    await collector.wait_for(lambda: collector.reasons() == ["truncated_frame"])
    writer.write(v.STANDARD_VERSION)  # the connection still works
    assert decode_frame(await reader.readexactly(30)).command is Command.CONFIRM
    writer.close()
