"""Register maps as data: the YAML device-model schema, its validation, and value decoding.

A device model lists `values` (numbers in one or two registers), `flags` (single bits: a coil, a
discrete input or one bit of a register) and `derived` metrics (the max over channels). Adding a
vendor's device means adding one YAML file; nothing here knows any particular model.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analytics.records import DeviceKind
from drivers.modbus.errors import ModelError, NonFiniteValue

BUILTIN_MODELS_DIR = Path(__file__).parent / "models"
MAX_ADDRESS = 0xFFFF
_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class Function(StrEnum):
    """The four Modbus data tables."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"

    @property
    def is_bit(self) -> bool:
        return self in (Function.COIL, Function.DISCRETE_INPUT)

    @property
    def max_read_count(self) -> int:
        """Largest count one read request may ask for (Modbus application protocol 6.1-6.4)."""
        return 2000 if self.is_bit else 125


class ValueType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    F32 = "f32"

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return 1 if self in (ValueType.U16, ValueType.I16) else 2


_STRUCT_FORMAT = {
    ValueType.U16: ">H",
    ValueType.I16: ">h",
    ValueType.U32: ">I",
    ValueType.I32: ">i",
    ValueType.F32: ">f",
}


class WordOrder(StrEnum):
    """Order of the two registers of a 32-bit value; bytes inside a register are always big-endian.

    `big` puts the high word first (ABCD, the Modbus convention); `little` puts the low word first
    (CDAB, common on Schneider- and Enron-style devices).
    """

    BIG = "big"
    LITTLE = "little"


class ValuePoint(BaseModel):
    """One numeric metric stored in one or two registers: value = raw * scale + offset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(pattern=_NAME_PATTERN)
    function: Function
    address: int = Field(ge=0, le=MAX_ADDRESS)
    type: ValueType = ValueType.U16
    word_order: WordOrder | None = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""

    @model_validator(mode="after")
    def _check_table_and_range(self) -> ValuePoint:
        if self.function.is_bit:
            raise ValueError(f"function {self.function.value!r} holds bits; use a flag instead")
        if self.address + self.type.width - 1 > MAX_ADDRESS:
            raise ValueError(f"address {self.address} + {self.type.width} registers passes 65535")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.type.width)


class FlagPoint(BaseModel):
    """One bit: a coil, a discrete input or bit `bit` (0 = least significant) of a register.

    A flag may be reported as a 0/1 metric, and its edges as events (`event_on` on 0->1,
    `event_off` on 1->0), with fixed `attrs` such as the channel number.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_PATTERN)
    function: Function
    address: int = Field(ge=0, le=MAX_ADDRESS)
    bit: int | None = Field(default=None, ge=0, le=15)
    metric: str | None = Field(default=None, pattern=_NAME_PATTERN)
    event_on: str | None = Field(default=None, pattern=_NAME_PATTERN)
    event_off: str | None = Field(default=None, pattern=_NAME_PATTERN)
    attrs: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_bit(self) -> FlagPoint:
        if self.function.is_bit and self.bit is not None:
            raise ValueError(f"bit is not allowed for function {self.function.value!r}")
        if not self.function.is_bit and self.bit is None:
            raise ValueError(f"bit (0-15) is required for function {self.function.value!r}")
        return self


class DerivedMetric(BaseModel):
    """A metric computed from others, e.g. the worst residual current over four channels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(pattern=_NAME_PATTERN)
    max_of: list[str] = Field(min_length=1)


class DeviceModel(BaseModel):
    """A device model: the complete register map of one vendor's product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(pattern=_NAME_PATTERN)
    kind: DeviceKind
    description: str = ""
    word_order: WordOrder = WordOrder.BIG
    values: list[ValuePoint] = Field(default_factory=list)
    flags: list[FlagPoint] = Field(default_factory=list)
    derived: list[DerivedMetric] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_layout(self) -> DeviceModel:
        owners: dict[tuple[Function, int], str] = {}
        for index, value in enumerate(self.values):
            here = f"values[{index}] ({value.metric})"
            for address in value.addresses:
                if (clash := owners.get((value.function, address))) is not None:
                    raise ValueError(f"{here}.address: {value.function.value} {address} overlaps {clash}")
                owners[(value.function, address)] = here
        bits: dict[tuple[Function, int, int | None], str] = {}
        for index, flag in enumerate(self.flags):
            here = f"flags[{index}] ({flag.name})"
            if (clash := owners.get((flag.function, flag.address))) is not None:
                raise ValueError(f"{here}.address: {flag.function.value} {flag.address} overlaps {clash}")
            if (clash := bits.get((flag.function, flag.address, flag.bit))) is not None:
                raise ValueError(f"{here}.bit: same bit as {clash}")
            bits[(flag.function, flag.address, flag.bit)] = here
        _check_unique("flags", [flag.name for flag in self.flags])
        metrics = [v.metric for v in self.values] + [f.metric for f in self.flags if f.metric]
        metrics += [d.metric for d in self.derived]
        _check_unique("metric", metrics)
        numeric = {v.metric for v in self.values}
        for index, derived in enumerate(self.derived):
            for source in derived.max_of:
                if source not in numeric:
                    raise ValueError(f"derived[{index}].max_of: {source!r} is not in values")
        return self

    def word_order_of(self, point: ValuePoint) -> WordOrder:
        return point.word_order or self.word_order


def _check_unique(what: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} name {name!r} is used twice")
        seen.add(name)


def decode_value(point: ValuePoint, words: Sequence[int], order: WordOrder) -> float:
    """Turn the point's registers (in address order) into its engineering value.

    Raises:
        NonFiniteValue: an f32 register pair holds NaN or infinity (a sensor's "no value").
    """
    ordered = list(words) if order is WordOrder.BIG else list(reversed(words))
    raw_bytes = b"".join(word.to_bytes(2, "big") for word in ordered)
    (raw,) = struct.unpack(_STRUCT_FORMAT[point.type], raw_bytes)
    value = float(raw) * point.scale + point.offset
    if not math.isfinite(value):
        registers = " ".join(f"{word:04x}" for word in words)
        raise NonFiniteValue(
            f"{point.metric} = {value} from {point.function.value} {point.address} "
            f"({point.type.value}, registers {registers})"
        )
    return value


def encode_value(point: ValuePoint, value: float, order: WordOrder) -> list[int]:
    """Inverse of `decode_value` (used by the simulator); integers are rounded and clamped."""
    raw = (value - point.offset) / point.scale
    packed: bytes
    if point.type is ValueType.F32:
        packed = struct.pack(">f", raw)
    else:
        bits = 16 * point.type.width
        signed = point.type in (ValueType.I16, ValueType.I32)
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        packed = struct.pack(_STRUCT_FORMAT[point.type], max(low, min(high, round(raw))))
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    return words if order is WordOrder.BIG else list(reversed(words))


RegisterImage = Mapping[tuple[Function, int], int]
"""What a poll read: (table, address) -> register value, or 0/1 for coils and discrete inputs."""


@dataclass(frozen=True, slots=True)
class RejectedValue:
    """A point of a poll that decoded to no number; the rest of the poll is still good."""

    metric: str
    detail: str
    words: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded poll: metric values (flags with a metric included as 0/1), flag states, and the
    points that decoded to NaN or infinity (left out of `values`)."""

    values: dict[str, float]
    flags: dict[str, bool]
    rejected: tuple[RejectedValue, ...] = ()


def decode_sample(model: DeviceModel, image: RegisterImage) -> Sample:
    """Decode every point of `model` from a register image that covers the model's map."""
    values: dict[str, float] = {}
    rejected: list[RejectedValue] = []
    for point in model.values:
        words = [image[(point.function, address)] for address in point.addresses]
        try:
            values[point.metric] = decode_value(point, words, model.word_order_of(point))
        except NonFiniteValue as exc:
            rejected.append(RejectedValue(point.metric, str(exc), tuple(words)))
    flags: dict[str, bool] = {}
    for flag in model.flags:
        raw = image[(flag.function, flag.address)]
        state = bool(raw >> flag.bit & 1) if flag.bit is not None else bool(raw)
        flags[flag.name] = state
        if flag.metric:
            values[flag.metric] = float(state)
    for derived in model.derived:
        sources = [values[source] for source in derived.max_of if source in values]
        if sources:
            values[derived.metric] = max(sources)
    return Sample(values, flags, tuple(rejected))


def parse_model(data: Any, source: str) -> DeviceModel:
    """Validate one model document; errors name the source, the model and the field."""
    name = data.get("model", "?") if isinstance(data, dict) else "?"
    try:
        return DeviceModel.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'model'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ModelError(f"{source}: model {name!r}: {problems}") from exc


def load_model(path: Path) -> DeviceModel:
    """Read and validate one model file; the `model` key must equal the file name."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"{path}: cannot read model: {exc}") from exc
    model = parse_model(data, str(path))
    if model.model != path.stem:
        raise ModelError(f"{path}: model {model.model!r}: model: must match the file name")
    return model


def load_models(extra_dir: Path | None = None) -> dict[str, DeviceModel]:
    """The built-in models, then those of `extra_dir` (which may replace a built-in by name)."""
    models = {path.stem: load_model(path) for path in sorted(BUILTIN_MODELS_DIR.glob("*.yaml"))}
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise ModelError(f"{extra_dir}: models_dir is not a directory")
        for path in sorted(extra_dir.glob("*.yaml")):
            models[path.stem] = load_model(path)
    return models
