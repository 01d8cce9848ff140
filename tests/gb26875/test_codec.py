"""Frames and data units against the standard's worked examples and the public codecs' vectors."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from drivers.gb26875.errors import FrameRejected, RejectReason
from drivers.gb26875.flags import ComponentFlag, TransmitterFlag, flag_names
from drivers.gb26875.frame import Command, Frame, TimeLabel, decode_frame, encode_frame
from drivers.gb26875.units import (
    ClockSync,
    ComponentAnalog,
    ComponentConfig,
    ComponentStatus,
    DataUnit,
    OpaqueUnit,
    RollCall,
    SystemConfig,
    SystemOperation,
    SystemStatus,
    SystemTime,
    SystemVersion,
    TransmitterConfig,
    TransmitterOperation,
    TransmitterStatus,
    TransmitterTime,
    TransmitterVersion,
    Unreadable,
    decode_unit,
    encode_unit,
    unit_of,
)
from tests.gb26875 import vectors as v

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXAMPLE_TIME = TimeLabel(2, 58, 9, 26, 9, 12)  # 2012-09-26 09:58:02
GO_TIME = TimeLabel(4, 0, 9, 2, 7, 21)  # 2021-07-02 09:00:04, 1625187604 in Asia/Shanghai


def unit(frame_bytes: bytes) -> DataUnit | OpaqueUnit:
    return decode_unit(decode_frame(frame_bytes).data)


def test_standard_smoke_alarm_decodes_with_its_alarm_bit_and_clear_run_bit() -> None:
    frame = decode_frame(v.STANDARD_SMOKE_ALARM)
    assert (frame.serial, frame.source, frame.destination, frame.command) == (
        1,
        v.DEVICE,
        v.CENTRE,
        Command.SEND,
    )
    assert (frame.version_major, frame.version_minor) == (1, 1)
    assert TimeLabel.from_bytes(frame.time_label) == TimeLabel(32, 58, 9, 26, 9, 12)
    decoded = decode_unit(frame.data)
    assert decoded == DataUnit(2, (ComponentStatus(1, 1, 40, 0x0002000A, 0x0002, "", EXAMPLE_TIME),))
    flags = ComponentFlag(0x0002)
    assert ComponentFlag.FIRE_ALARM in flags and ComponentFlag.RUNNING not in flags


def test_confirm_and_deny_are_byte_exact() -> None:
    alarm = decode_frame(v.STANDARD_SMOKE_ALARM)
    sent_at = TimeLabel(35, 58, 9, 26, 9, 12).to_bytes()
    assert encode_frame(alarm.reply(Command.CONFIRM, sent_at)) == v.STANDARD_CONFIRM
    assert encode_frame(alarm.reply(Command.DENY, sent_at)) == v.STANDARD_DENY


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (v.STANDARD_MAIN_POWER_FAULT, DataUnit(21, (TransmitterStatus(0x08, EXAMPLE_TIME),))),
        (v.STANDARD_ROLL_CALL_ANSWER, DataUnit(24, (TransmitterOperation(0x20, 1, EXAMPLE_TIME),))),
        (v.STANDARD_VERSION, DataUnit(25, (TransmitterVersion(1, 1),))),
        (v.STANDARD_DEVICE_TIME, DataUnit(28, (TransmitterTime(EXAMPLE_TIME),))),
        (v.STANDARD_STATUS_ANSWER, DataUnit(21, (TransmitterStatus(0x08, EXAMPLE_TIME),))),
        (v.STANDARD_CLOCK_SYNC, DataUnit(90, (ClockSync(EXAMPLE_TIME),))),
        (v.STANDARD_ROLL_CALL, DataUnit(91, (RollCall(10),))),
        (v.STANDARD_READ_STATUS, OpaqueUnit(81, 1, b"\x00")),
    ],
)
def test_standard_examples_decode_and_reencode_byte_exact(
    raw: bytes, expected: DataUnit | OpaqueUnit
) -> None:
    frame = decode_frame(raw)
    assert decode_unit(frame.data) == expected
    assert encode_unit(expected) == frame.data
    assert encode_frame(frame) == raw


def test_transmitter_bit_3_is_main_power_fault_not_shield() -> None:
    assert flag_names(TransmitterFlag(0x08)) == ["main_power_fault"]


def test_standard_commands_and_downstream_types() -> None:
    assert decode_frame(v.STANDARD_CLOCK_SYNC).command is Command.CONTROL
    assert decode_frame(v.STANDARD_ROLL_CALL).command is Command.CONTROL
    assert decode_frame(v.STANDARD_READ_STATUS).command is Command.REQUEST
    assert decode_frame(v.STANDARD_STATUS_ANSWER).command is Command.ANSWER


def test_go_reader_frame_decodes_gb18030_description() -> None:
    frame = decode_frame(v.GO_ALARM)
    assert (frame.source, frame.destination) == (0, 0x010203040506)
    (status,) = decode_unit(frame.data).objects  # type: ignore[union-attr]
    assert status == ComponentStatus(
        1, 3, 0, 0x000600D9, 0x0002, "Ａ区１层呷哺走廊", TimeLabel(48, 18, 19, 1, 8, 20)
    )
    assert status.time is not None and status.time.to_timestamp(SHANGHAI) == 1596280728


def test_go_reader_first_copy_has_a_bad_checksum() -> None:
    # The Go test feeds this copy first and expects it decoded; its checksum byte is wrong
    # (0x63, the sum is 0x68), and SPEC 12 answers a bad checksum with deny.
    with pytest.raises(FrameRejected) as caught:
        decode_frame(v.GO_ALARM_BAD_CHECKSUM)
    assert caught.value.reason_code is RejectReason.BAD_CHECKSUM
    assert caught.value.deniable and caught.value.header is not None
    assert caught.value.header.serial == 0


@pytest.mark.parametrize(
    ("raw", "objects"),
    [
        (v.GO_SYSTEM_STATUS, (SystemStatus(1, 2, 0x0204, GO_TIME),)),
        (
            v.GO_TWO_SYSTEM_STATUS,
            (SystemStatus(1, 2, 0x0204, GO_TIME), SystemStatus(13, 3, 0x0105, TimeLabel(5, 0, 9, 2, 7, 21))),
        ),
        (
            v.GO_COMPONENT_STATUS,
            (ComponentStatus(1, 2, 121, 0x04030201, 0x0204, "7楼02室会议室烟感", GO_TIME),),
        ),
        (v.GO_ANALOG, (ComponentAnalog(1, 2, 40, 0x04030201, 3, 800, GO_TIME),)),
        (
            v.GO_TWO_ANALOG,
            (
                ComponentAnalog(1, 2, 40, 0x04030201, 3, 800, GO_TIME),
                ComponentAnalog(13, 3, 121, 0x06050403, 2, 0x5001, TimeLabel(5, 0, 9, 2, 7, 21)),
            ),
        ),
        (v.GO_SYSTEM_OPERATION, (SystemOperation(1, 2, 0x84, 0xFA, GO_TIME),)),
        (v.GO_SYSTEM_VERSION, (SystemVersion(1, 2, 3, 4),)),
        (v.GO_SYSTEM_CONFIG, (SystemConfig(1, 2, "7楼02室会议室烟感"),)),
        (v.GO_COMPONENT_CONFIG, (ComponentConfig(1, 2, 40, 0x04030201, "7楼02室会议室烟感"),)),
        (v.GO_SYSTEM_TIME, (SystemTime(1, 2, GO_TIME),)),
        (v.GO_TRANSMITTER_STATUS, (TransmitterStatus(0x08, GO_TIME),)),
        (v.GO_TRANSMITTER_OPERATION, (TransmitterOperation(0x31, 0xFA, GO_TIME),)),
        (v.GO_TRANSMITTER_VERSION, (TransmitterVersion(3, 4),)),
        (v.GO_TRANSMITTER_CONFIG, (TransmitterConfig("7楼02室会议室烟感"),)),
        (v.GO_TRANSMITTER_TIME, (TransmitterTime(TimeLabel(5, 0, 9, 2, 7, 21)),)),
    ],
)
def test_go_codec_units(raw: bytes, objects: tuple[object, ...]) -> None:
    decoded = decode_unit(raw)
    assert isinstance(decoded, DataUnit) and decoded.objects == objects


def test_go_time_is_local_time_of_the_campus() -> None:
    assert GO_TIME.to_timestamp(SHANGHAI) == 1625187604


@pytest.mark.parametrize("raw", v.GO_SHORT_UNITS)
def test_short_units_are_unreadable(raw: bytes) -> None:
    with pytest.raises(Unreadable):
        decode_unit(raw)


def test_component_bit_8_is_power_fault_and_9_is_reserved() -> None:
    assert flag_names(ComponentFlag(0x0204)) == ["fault"]
    assert flag_names(ComponentFlag(0x0100)) == ["power_fault"]


def test_vendor_types_are_kept_opaque_and_length_checked_when_configured() -> None:
    raw = bytes((0xC8, 2)) + bytes(range(10))
    assert decode_unit(raw) == OpaqueUnit(0xC8, 2, bytes(range(10)))
    assert decode_unit(raw, vendor_sizes={0xC8: 5}) == OpaqueUnit(0xC8, 2, bytes(range(10)))
    with pytest.raises(Unreadable):
        decode_unit(raw, vendor_sizes={0xC8: 4})
    assert encode_unit(OpaqueUnit(0xFF, 1, b"\x01")) == b"\xff\x01\x01"


def test_four_byte_gb18030_description_round_trips() -> None:
    text = "𠀀楼烟感"  # U+20000 is a four-byte sequence in GB18030
    status = ComponentStatus(1, 1, 40, 7, 0x0003, text, EXAMPLE_TIME)
    raw = encode_unit(unit_of(status))
    assert raw[11:15] == text[0].encode("gb18030") and len(raw[11:15]) == 4
    assert decode_unit(raw) == unit_of(status)


def test_long_description_is_cut_at_a_character_boundary() -> None:
    status = ComponentStatus(1, 1, 40, 7, 0, "烟" * 20, EXAMPLE_TIME)
    decoded = decode_unit(encode_unit(unit_of(status)))
    assert isinstance(decoded, DataUnit)
    assert decoded.objects[0].description == "烟" * 15  # type: ignore[union-attr]


def test_bcd_time_labels() -> None:
    label = TimeLabel(58, 59, 23, 31, 12, 25)
    assert label.to_bytes(bcd=True) == bytes.fromhex("58 59 23 31 12 25")
    assert TimeLabel.from_bytes(bytes.fromhex("58 59 23 31 12 25"), bcd=True) == label
    with pytest.raises(ValueError):
        TimeLabel.from_bytes(bytes.fromhex("58 59 23 31 12 25"))  # 0x58 = 88 seconds in binary
    with pytest.raises(ValueError):
        TimeLabel.from_bytes(bytes.fromhex("0a 00 00 01 01 19"), bcd=True)


def test_bcd_object_time_comes_from_the_model_flag() -> None:
    status = ComponentStatus(1, 1, 40, 7, 2, "", TimeLabel(58, 59, 23, 31, 12, 25))
    raw = encode_unit(unit_of(status), bcd_time=True)
    assert decode_unit(raw, bcd_time=True) == unit_of(status)
    assert decode_unit(raw).objects[0].time is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:-1] + b"\x24", RejectReason.BAD_END_MARKER),
        (lambda b: b[:-3] + bytes(((b[-3] + 1) & 0xFF,)) + b"##", RejectReason.BAD_CHECKSUM),
        (
            lambda b: b[:26] + b"\x07" + b[27:-3] + bytes(((b[-3] + 5) & 0xFF,)) + b"##",
            RejectReason.UNKNOWN_COMMAND,
        ),
        (lambda b: b[:24] + (1025).to_bytes(2, "little") + b[26:], RejectReason.LENGTH_OVER_LIMIT),
        (lambda b: b[:-4] + b[-3:], RejectReason.TRUNCATED),
    ],
)
def test_bad_frames_have_reason_codes(mutate: object, reason: RejectReason) -> None:
    raw = mutate(v.STANDARD_SMOKE_ALARM)  # type: ignore[operator]
    with pytest.raises(FrameRejected) as caught:
        decode_frame(raw)
    assert caught.value.reason_code is reason
    assert caught.value.deniable is (reason is not RejectReason.TRUNCATED)


def test_encode_refuses_oversized_data() -> None:
    with pytest.raises(ValueError):
        encode_frame(Frame(1, 2, 3, Command.SEND, bytes(1025)))
    assert len(encode_frame(Frame(1, 2, 3, Command.SEND, bytes(1024)))) == 1024 + 30
