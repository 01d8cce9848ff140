"""Application data units: a type byte, an object count, then that many information objects.

Each object type knows its own size and layout (GB/T 26875.3-2011 8.2 and 8.3); `decode_unit`
and `encode_unit` dispatch through one table keyed by the type byte. Types 128-255 are vendor
defined and kept as opaque bytes; so are reserved types this gateway does not interpret.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from drivers.gb26875.frame import TimeLabel

DESCRIPTION_SIZE = 31
ENCODING = "gb18030"  # GB 18030-2005, four-byte sequences included


class Unreadable(ValueError):
    """Application data that does not match its type's layout."""


def decode_text(raw: bytes) -> str:
    """GB18030 text padded with NULs (or, in the standard's own example, spaces)."""
    return raw.split(b"\x00", 1)[0].decode(ENCODING, errors="replace").rstrip(" ")


def encode_text(text: str, size: int | None = None) -> bytes:
    """GB18030 bytes, cut at a character boundary and NUL-padded to `size` when given."""
    if size is None:
        return text.encode(ENCODING)
    out = b""
    for char in text:
        encoded = char.encode(ENCODING)
        if len(out) + len(encoded) > size:
            break
        out += encoded
    return out.ljust(size, b"\x00")


def _time(raw: bytes, bcd: bool) -> TimeLabel | None:
    # A bad object time costs the object its own timestamp (the receive time is used), not its data.
    try:
        return TimeLabel.from_bytes(raw, bcd)
    except ValueError:
        return None


def _time_bytes(label: TimeLabel | None, bcd: bool) -> bytes:
    return label.to_bytes(bcd) if label is not None else bytes(6)


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """Type 1: a building fire system (the panel) and its 16 status flags (see `flags`)."""

    TYPE: ClassVar[int] = 1
    SIZE: ClassVar[int] = 10
    system_type: int
    system_address: int
    flags: int
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> SystemStatus:
        st, sa, flags = struct.unpack_from("<BBH", raw)
        return cls(st, sa, flags, _time(raw[4:10], bcd))

    def pack(self, bcd: bool) -> bytes:
        return struct.pack("<BBH", self.system_type, self.system_address, self.flags) + _time_bytes(
            self.time, bcd
        )


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """Type 2: one component (detector, call point, module) and its status flags."""

    TYPE: ClassVar[int] = 2
    SIZE: ClassVar[int] = 46
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    flags: int
    description: str
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> ComponentStatus:
        st, sa, ct, address, flags = struct.unpack_from("<BBBIH", raw)
        return cls(st, sa, ct, address, flags, decode_text(raw[9:40]), _time(raw[40:46], bcd))

    def pack(self, bcd: bool) -> bytes:
        head = struct.pack(
            "<BBBIH",
            self.system_type,
            self.system_address,
            self.component_type,
            self.component_address,
            self.flags,
        )
        return head + encode_text(self.description, DESCRIPTION_SIZE) + _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class ComponentAnalog:
    """Type 3: one analog value of a component; `raw_value` is signed, in the type's unit step."""

    TYPE: ClassVar[int] = 3
    SIZE: ClassVar[int] = 16
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    analog_type: int
    raw_value: int
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> ComponentAnalog:
        st, sa, ct, address, analog_type, value = struct.unpack_from("<BBBIBh", raw)
        return cls(st, sa, ct, address, analog_type, value, _time(raw[10:16], bcd))

    def pack(self, bcd: bool) -> bytes:
        head = struct.pack(
            "<BBBIBh",
            self.system_type,
            self.system_address,
            self.component_type,
            self.component_address,
            self.analog_type,
            self.raw_value,
        )
        return head + _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class SystemOperation:
    """Type 4: an operator's action on the panel (reset, mute, manual alarm, ...) and who."""

    TYPE: ClassVar[int] = 4
    SIZE: ClassVar[int] = 10
    system_type: int
    system_address: int
    flags: int
    operator: int
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> SystemOperation:
        st, sa, flags, operator = struct.unpack_from("<BBBB", raw)
        return cls(st, sa, flags, operator, _time(raw[4:10], bcd))

    def pack(self, bcd: bool) -> bytes:
        return struct.pack(
            "<BBBB", self.system_type, self.system_address, self.flags, self.operator
        ) + _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class SystemVersion:
    """Type 5: the panel's software version."""

    TYPE: ClassVar[int] = 5
    SIZE: ClassVar[int] = 4
    system_type: int
    system_address: int
    major: int
    minor: int

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> SystemVersion:
        return cls(*struct.unpack_from("<BBBB", raw))

    def pack(self, bcd: bool) -> bytes:
        return struct.pack("<BBBB", self.system_type, self.system_address, self.major, self.minor)


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """Type 7: a component's configured description."""

    TYPE: ClassVar[int] = 7
    SIZE: ClassVar[int] = 38
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    description: str

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> ComponentConfig:
        st, sa, ct, address = struct.unpack_from("<BBBI", raw)
        return cls(st, sa, ct, address, decode_text(raw[7:38]))

    def pack(self, bcd: bool) -> bytes:
        head = struct.pack(
            "<BBBI", self.system_type, self.system_address, self.component_type, self.component_address
        )
        return head + encode_text(self.description, DESCRIPTION_SIZE)


@dataclass(frozen=True, slots=True)
class SystemTime:
    """Type 8: the panel's clock."""

    TYPE: ClassVar[int] = 8
    SIZE: ClassVar[int] = 8
    system_type: int
    system_address: int
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> SystemTime:
        return cls(raw[0], raw[1], _time(raw[2:8], bcd))

    def pack(self, bcd: bool) -> bytes:
        return bytes((self.system_type, self.system_address)) + _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class TransmitterStatus:
    """Type 21: the transmission device's own status byte (its own bit table, see `flags`)."""

    TYPE: ClassVar[int] = 21
    SIZE: ClassVar[int] = 7
    flags: int
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> TransmitterStatus:
        return cls(raw[0], _time(raw[1:7], bcd))

    def pack(self, bcd: bool) -> bytes:
        return bytes((self.flags,)) + _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class TransmitterOperation:
    """Type 24: an action on the transmission device (reset, mute, roll-call answer, ...)."""

    TYPE: ClassVar[int] = 24
    SIZE: ClassVar[int] = 8
    flags: int
    operator: int
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> TransmitterOperation:
        return cls(raw[0], raw[1], _time(raw[2:8], bcd))

    def pack(self, bcd: bool) -> bytes:
        return bytes((self.flags, self.operator)) + _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class TransmitterVersion:
    """Type 25: the transmission device's software version."""

    TYPE: ClassVar[int] = 25
    SIZE: ClassVar[int] = 2
    major: int
    minor: int

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> TransmitterVersion:
        return cls(raw[0], raw[1])

    def pack(self, bcd: bool) -> bytes:
        return bytes((self.major, self.minor))


@dataclass(frozen=True, slots=True)
class TransmitterTime:
    """Type 28: the transmission device's clock."""

    TYPE: ClassVar[int] = 28
    SIZE: ClassVar[int] = 6
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> TransmitterTime:
        return cls(_time(raw[0:6], bcd))

    def pack(self, bcd: bool) -> bytes:
        return _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class ClockSync:
    """Type 90 (downstream, command 1): set the transmission device's clock."""

    TYPE: ClassVar[int] = 90
    SIZE: ClassVar[int] = 6
    time: TimeLabel | None

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> ClockSync:
        return cls(_time(raw[0:6], bcd))

    def pack(self, bcd: bool) -> bytes:
        return _time_bytes(self.time, bcd)


@dataclass(frozen=True, slots=True)
class RollCall:
    """Type 91 (downstream, command 1): 查岗, asking the duty operator to press the answer key.

    The standard's table calls its one byte reserved; its worked example sends 10 there with
    "查岗命令 10分钟", so it is read as the answer time in minutes.
    """

    TYPE: ClassVar[int] = 91
    SIZE: ClassVar[int] = 1
    answer_min: int = 10

    @classmethod
    def parse(cls, raw: bytes, bcd: bool) -> RollCall:
        return cls(raw[0])

    def pack(self, bcd: bool) -> bytes:
        return bytes((self.answer_min,))


@dataclass(frozen=True, slots=True)
class SystemConfig:
    """Type 6: the panel's configuration text (length-prefixed)."""

    TYPE: ClassVar[int] = 6
    system_type: int
    system_address: int
    description: str

    def pack(self, bcd: bool) -> bytes:
        text = encode_text(self.description)[:255]
        return bytes((self.system_type, self.system_address, len(text))) + text


@dataclass(frozen=True, slots=True)
class TransmitterConfig:
    """Type 26: the transmission device's configuration text (length-prefixed)."""

    TYPE: ClassVar[int] = 26
    description: str

    def pack(self, bcd: bool) -> bytes:
        text = encode_text(self.description)[:255]
        return bytes((len(text),)) + text


InfoObject = (
    SystemStatus
    | ComponentStatus
    | ComponentAnalog
    | SystemOperation
    | SystemVersion
    | SystemConfig
    | ComponentConfig
    | SystemTime
    | TransmitterStatus
    | TransmitterOperation
    | TransmitterVersion
    | TransmitterConfig
    | TransmitterTime
    | ClockSync
    | RollCall
)


@dataclass(frozen=True, slots=True)
class OpaqueUnit:
    """A data unit kept as bytes: vendor types 128-255, and reserved types not interpreted here."""

    type_code: int
    count: int
    body: bytes

    @property
    def vendor(self) -> bool:
        return self.type_code >= 128


@dataclass(frozen=True, slots=True)
class DataUnit:
    """A decoded data unit: its type byte and its objects (the count byte is their number)."""

    type_code: int
    objects: tuple[InfoObject, ...]


_FIXED: dict[int, Callable[[bytes, bool], InfoObject]] = {}
_SIZES: dict[int, int] = {}
for _cls in (
    SystemStatus,
    ComponentStatus,
    ComponentAnalog,
    SystemOperation,
    SystemVersion,
    ComponentConfig,
    SystemTime,
    TransmitterStatus,
    TransmitterOperation,
    TransmitterVersion,
    TransmitterTime,
    ClockSync,
    RollCall,
):
    _FIXED[_cls.TYPE] = _cls.parse
    _SIZES[_cls.TYPE] = _cls.SIZE


def _variable_objects(type_code: int, count: int, body: bytes) -> tuple[InfoObject, ...]:
    objects: list[InfoObject] = []
    offset = 0
    prefix = 3 if type_code == SystemConfig.TYPE else 1
    for _ in range(count):
        if offset + prefix > len(body):
            raise Unreadable(f"type {type_code}: object {len(objects) + 1} of {count} is cut short")
        length = body[offset + prefix - 1]
        text = body[offset + prefix : offset + prefix + length]
        if len(text) != length:
            raise Unreadable(f"type {type_code}: text of {length} bytes is cut short")
        if type_code == SystemConfig.TYPE:
            objects.append(SystemConfig(body[offset], body[offset + 1], decode_text(text)))
        else:
            objects.append(TransmitterConfig(decode_text(text)))
        offset += prefix + length
    if offset != len(body):
        raise Unreadable(f"type {type_code}: {len(body) - offset} bytes after the last object")
    return tuple(objects)


def decode_unit(
    data: bytes, bcd_time: bool = False, vendor_sizes: Mapping[int, int] | None = None
) -> DataUnit | OpaqueUnit:
    """Decode one frame's application data (a non-empty byte string).

    Args:
        data: the application data.
        bcd_time: the sending model writes its object times in BCD.
        vendor_sizes: object size per vendor type, when config knows it; the length is checked.

    Raises:
        Unreadable: the data does not match its type's layout.
    """
    if len(data) < 2:
        raise Unreadable(f"{len(data)} byte(s): a data unit needs a type and an object count")
    type_code, count = data[0], data[1]
    body = data[2:]
    parse = _FIXED.get(type_code)
    if parse is not None:
        size = _SIZES[type_code]
        if count == 0 or len(body) != count * size:
            raise Unreadable(
                f"type {type_code}: {count} object(s) of {size} bytes, but {len(body)} bytes follow"
            )
        return DataUnit(
            type_code, tuple(parse(body[i * size : (i + 1) * size], bcd_time) for i in range(count))
        )
    if type_code in (SystemConfig.TYPE, TransmitterConfig.TYPE):
        return DataUnit(type_code, _variable_objects(type_code, count, body))
    vendor_size = (vendor_sizes or {}).get(type_code)
    if vendor_size is not None and len(body) != count * vendor_size:
        raise Unreadable(
            f"vendor type {type_code}: {count} x {vendor_size} bytes expected, {len(body)} follow"
        )
    return OpaqueUnit(type_code, count, body)


def encode_unit(unit: DataUnit | OpaqueUnit, bcd_time: bool = False) -> bytes:
    """Serialize a data unit; all objects must be of the unit's type."""
    if isinstance(unit, OpaqueUnit):
        return bytes((unit.type_code, unit.count)) + unit.body
    for obj in unit.objects:
        if unit.type_code != obj.TYPE:
            raise ValueError(f"a {type(obj).__name__} does not belong in a type {unit.type_code} unit")
    return bytes((unit.type_code, len(unit.objects))) + b"".join(obj.pack(bcd_time) for obj in unit.objects)


def unit_of(*objects: InfoObject) -> DataUnit:
    """A data unit holding `objects` (all of one type)."""
    return DataUnit(objects[0].TYPE, objects)
