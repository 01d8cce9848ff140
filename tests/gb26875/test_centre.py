"""The monitoring centre's decisions with a fake clock: confirm, deny, duplicates, silence."""

from __future__ import annotations

from analytics.records import DeviceState, StatusChange
from drivers.gb26875.centre import MonitoringCentre
from drivers.gb26875.errors import RejectReason
from drivers.gb26875.frame import Command, Frame, decode_frame
from drivers.gb26875.framer import StreamFramer
from drivers.gb26875.mapping import PanelMapper
from tests.gb26875 import support
from tests.gb26875 import vectors as v

T0 = 1_700_000_000.0


def centre(**extra: object) -> MonitoringCentre:
    settings = support.settings(**extra)
    return MonitoringCentre(
        PanelMapper(support.inventory(), settings, support.SHANGHAI), settings, support.SHANGHAI
    )


def heartbeat(serial: int) -> Frame:
    return Frame(serial, support.DEVICE_ADDRESS, support.CENTRE_ADDRESS, Command.SEND)


def test_heartbeat_brings_the_transmitter_online_and_silence_takes_it_offline() -> None:
    c = centre()  # reporting interval 30 s -> offline after 90 s
    outcome = c.on_frame(heartbeat(0), T0)
    assert outcome.records == [
        StatusChange("panel-a", support.inventory().get("panel-a").kind, DeviceState.ONLINE, T0, "heartbeat")
    ]  # type: ignore[union-attr]
    assert outcome.confirm is not None and outcome.confirm.command is Command.CONFIRM
    assert outcome.replies == [] and not outcome.duplicate
    assert c.tick(T0 + 60) == []
    c.on_frame(heartbeat(1), T0 + 60)
    assert c.tick(T0 + 149) == []
    (offline,) = c.tick(T0 + 150)
    assert isinstance(offline, StatusChange) and (offline.state, offline.reason) == (
        DeviceState.OFFLINE,
        "silent",
    )
    assert c.tick(T0 + 200) == []
    (online,) = c.on_frame(heartbeat(2), T0 + 201).records
    assert isinstance(online, StatusChange) and online.state is DeviceState.ONLINE


def test_offline_after_is_configurable() -> None:
    c = centre(offline_after_s=5.0)
    c.on_frame(heartbeat(0), T0)
    assert len(c.tick(T0 + 5)) == 1


def test_retry_with_same_serial_and_data_is_confirmed_without_records() -> None:
    c = centre()
    alarm = decode_frame(v.STANDARD_SMOKE_ALARM)
    now = 1348624683.0  # 2012-09-26 09:58:03 +08:00
    first = c.on_frame(alarm, now)
    again = c.on_frame(alarm, now + 10)
    assert [r.name for r in first.records if hasattr(r, "name")] == ["alarm", "fault_clear"]
    assert again.records == [] and again.duplicate
    assert again.confirm is not None and first.confirm is not None
    assert again.confirm.serial == first.confirm.serial == alarm.serial
    assert c.counters["duplicates_dropped"] == 1


def test_a_forgotten_frame_is_taken_again_when_retried() -> None:
    # Its records never committed (the store gave up): the retry must bring them, not be dropped.
    c = centre()
    alarm = decode_frame(v.STANDARD_SMOKE_ALARM)
    now = 1348624683.0
    c.on_frame(alarm, now)
    c.forget(alarm.source, alarm.serial)
    again = c.on_frame(alarm, now + 10)
    assert not again.duplicate and [r.name for r in again.records if hasattr(r, "name")] == ["alarm"]


def test_same_serial_with_new_data_is_a_new_message() -> None:
    # A device that restarted counts from 0 again; only identical bytes are a retry.
    c = centre()
    c.on_frame(decode_frame(v.STANDARD_SMOKE_ALARM), T0)
    other = decode_frame(v.STANDARD_MAIN_POWER_FAULT)
    assert c.on_frame(other, T0).records != []


def test_denied_reasons_get_a_deny_addressed_back() -> None:
    c = centre()
    bad = bytearray(v.STANDARD_SMOKE_ALARM)
    bad[26] = 0x09  # unknown command
    bad[-3] = (bad[-3] + 7) & 0xFF
    (rejected,) = StreamFramer().feed(bytes(bad))
    outcome = c.on_rejected(rejected, T0)  # type: ignore[arg-type]
    (deny,) = outcome.replies
    assert (deny.command, deny.serial, deny.source, deny.destination, deny.data) == (
        Command.DENY,
        1,
        support.CENTRE_ADDRESS,
        support.DEVICE_ADDRESS,
        b"",
    )
    assert outcome.rejected[0].reason_code is RejectReason.UNKNOWN_COMMAND
    assert outcome.rejected[0].device_id == "panel-a"


def test_garbage_and_truncation_are_not_denied() -> None:
    c = centre()
    framer = StreamFramer()
    items = framer.feed(b"junk" + v.STANDARD_SMOKE_ALARM[:40]) + framer.expire()
    for item in items:
        assert c.on_rejected(item, T0).replies == []  # type: ignore[arg-type]


def test_malformed_app_data_in_an_intact_frame_is_confirmed_and_dead_lettered() -> None:
    c = centre()
    frame = Frame(3, support.DEVICE_ADDRESS, support.CENTRE_ADDRESS, Command.SEND, b"\x02\x02\x00")
    outcome = c.on_frame(frame, T0)
    assert outcome.confirm is not None and outcome.confirm.command is Command.CONFIRM
    assert [r.reason_code for r in outcome.rejected] == [RejectReason.BAD_APP_DATA]


def test_clock_sync_frame() -> None:
    c = centre()
    sync = c.clock_sync(support.DEVICE_ADDRESS, 1348624682.0)
    assert (sync.command, sync.destination, sync.data) == (
        Command.CONTROL,
        support.DEVICE_ADDRESS,
        bytes.fromhex("5A 01 02 3A 09 1A 09 0C"),  # the standard's example 10: 2012-09-26 09:58:02
    )
