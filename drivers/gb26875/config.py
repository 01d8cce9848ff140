"""The `gb26875` config section: where to listen, the transmission devices, per-model quirks.

Component devices are inventory entries with a `gb26875` panel point; how their status flags and
analog values become events and readings is a mapping per kind, overridable per model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ComponentFlagName = Literal[
    "fire_alarm", "fault", "shielded", "supervisory", "started", "feedback", "delayed", "power_fault"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransmitterModel(_Strict):
    """Quirks of one transmission device model, decided by config rather than guessed."""

    bcd_time: bool = False  # time labels written in BCD (0x58 = 58)
    # Vendor data unit types (128-255) and their object size: kept opaque, length-checked.
    vendor_types: dict[int, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _vendor_range(self) -> TransmitterModel:
        for code, size in self.vendor_types.items():
            if not 128 <= code <= 255 or size < 1:
                raise ValueError(f"vendor_types.{code}: types are 128-255 and sizes at least 1")
        return self


class EventMapping(_Strict):
    """`event` on every report with one of `flags` set; `clear` once none of them is."""

    event: str
    clear: str
    flags: list[ComponentFlagName] = Field(min_length=1)


class AnalogMapping(_Strict):
    """An analog type's value (a signed integer in the type's unit step) as a metric."""

    metric: str
    scale: float = 1.0


class ComponentModel(_Strict):
    """Overrides the kind's default mapping for components of this inventory `model`."""

    events: list[EventMapping] | None = None
    analog: dict[int, AnalogMapping] | None = None


class TransmitterSettings(_Strict):
    """One transmission device; `id` is its inventory entry (kind fire_panel)."""

    id: str = Field(min_length=1)
    address: int = Field(ge=0, le=(1 << 48) - 1, description="its 6-byte source address, little-endian")
    model: str = ""  # a key of transmitter_models


class Gb26875Settings(_Strict):
    """Where the gateway listens as the monitoring centre, and what it expects to hear."""

    host: str = "0.0.0.0"
    port: int = Field(default=9000, ge=0, le=65535)  # TCP; 0 picks a free port (tests)
    udp_port: int | None = Field(default=None, ge=0, le=65535)
    centre_address: int = Field(default=0, ge=0, le=(1 << 48) - 1)
    timezone: str = "Asia/Shanghai"  # time labels are local time
    clock_sync_on_connect: bool = False
    # A frame that stops arriving is given up after this long without bytes.
    idle_expire_s: float = Field(default=2.0, gt=0)
    # Silence that makes a transmission device offline; default 3 x its reporting interval.
    offline_after_s: float | None = Field(default=None, gt=0)
    duplicate_window: int = Field(default=64, ge=1, description="serials remembered per device")
    # A "send data" is confirmed once what it caused has committed. A store that takes longer
    # gets no confirm from this copy (well inside the standard's 10 s): the device sends it again,
    # and that duplicate is confirmed once the first copy's records have committed.
    commit_wait_s: float = Field(default=5.0, gt=0, lt=10)
    transmitter_models: dict[str, TransmitterModel] = Field(default_factory=dict)
    component_models: dict[str, ComponentModel] = Field(default_factory=dict)
    transmitters: list[TransmitterSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Gb26875Settings:
        ids: set[str] = set()
        addresses: dict[int, str] = {}
        for index, transmitter in enumerate(self.transmitters):
            here = f"transmitters[{index}] ({transmitter.id})"
            if transmitter.id in ids:
                raise ValueError(f"{here}.id: listed twice")
            ids.add(transmitter.id)
            if (clash := addresses.get(transmitter.address)) is not None:
                raise ValueError(f"{here}.address: {transmitter.address} is also {clash}")
            addresses[transmitter.address] = transmitter.id
            if transmitter.model and transmitter.model not in self.transmitter_models:
                known = ", ".join(sorted(self.transmitter_models)) or "none"
                raise ValueError(
                    f"{here}.model: {transmitter.model!r} is not under transmitter_models ({known})"
                )
        return self
