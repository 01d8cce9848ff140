"""The device inventory: the source of truth for which devices exist and where they are."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analytics.records import DeviceKind

_ZONE_POSITION = re.compile(r"^(\d+)-(\d+)$")


class PanelPoint(BaseModel):
    """Where a device sits behind a fire-alarm panel that reports by GB/T 26875.3 (`gb26875`).

    A detector or module names its system and component address; the panel itself (whose
    system status it reports) leaves `component_address` out. `transmitter` is the inventory id
    of the user information transmission device the panel reports through.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    transmitter: str = Field(min_length=1)
    system_type: int = Field(default=1, ge=0, le=255)  # 1: fire alarm system
    system_address: int = Field(ge=0, le=255)
    component_type: int | None = Field(default=None, ge=0, le=255, description="checked when given")
    # The 4-byte address as the panel sends it (little-endian), or "zone-position" as printed on
    # the panel's point list: "10-2" is zone 10, position 2 (bytes 0A 00 02 00).
    component_address: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    # Panels report on change only; the transmission device's heartbeat shows the link is alive.
    # A point the panel does report every `reporting_interval_s` may opt in to silence checks.
    reports_periodically: bool = False

    @field_validator("component_address", mode="before")
    @classmethod
    def _zone_position(cls, value: Any) -> Any:
        if isinstance(value, str) and (match := _ZONE_POSITION.match(value.strip())):
            zone, position = int(match[1]), int(match[2])
            if zone > 0xFFFF or position > 0xFFFF:
                raise ValueError(f"zone and position are at most 65535, got {value!r}")
            return zone | position << 16
        return value


class DeviceSpec(BaseModel):
    """One inventory entry (SPEC section 2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: DeviceKind
    name: str = ""
    building: str = ""
    floor: str = ""
    zone: str = ""
    x: float | None = None
    y: float | None = None
    protocol: str = "mqtt"
    model: str = ""
    # MQTT devices that do not speak protocol v1: the name of their shape under `mqtt_shapes`.
    payload_shape: str = ""
    reporting_interval_s: float = Field(default=60.0, gt=0)
    responsible: str = ""
    thresholds: dict[str, float] = Field(default_factory=dict)
    # Devices behind a fire-alarm panel (protocol gb26875): where the panel reports them.
    gb26875: PanelPoint | None = None
    # Cameras: the zones of their building they see, so an alarm there gets their video (issue 18).
    covers_zones: list[str] = Field(default_factory=list)
    # A camera (or NVR channel) registered on a GB/T 28181 platform: its 20-digit id there, the
    # name the platform and its media server (wvp-GB28181-pro, ZLMediaKit) know it by.
    gb28181_id: str = ""

    @field_validator("gb28181_id")
    @classmethod
    def _gb28181_id_is_twenty_digits(cls, value: str) -> str:
        if value and not (len(value) == 20 and value.isascii() and value.isdigit()):
            what = "digits only" if not (value.isascii() and value.isdigit()) else f"got {len(value)} digits"
            raise ValueError(f"a GB/T 28181 device id is exactly 20 digits 0-9 ({what})")
        return value

    @model_validator(mode="after")
    def _panel_point_needs_protocol(self) -> DeviceSpec:
        if self.gb26875 is not None and self.protocol != "gb26875":
            raise ValueError(f"gb26875 is set, so protocol must be gb26875, not {self.protocol!r}")
        return self

    @model_validator(mode="after")
    def _covers_zones_of_a_camera(self) -> DeviceSpec:
        if not self.covers_zones:
            return self
        if self.kind is not DeviceKind.CAMERA:
            raise ValueError(f"covers_zones is for cameras, and this device is a {self.kind.value}")
        names = [zone.strip() for zone in self.covers_zones]
        if not all(names):
            raise ValueError("covers_zones: a zone name is empty")
        if len(set(names)) != len(names):
            raise ValueError(f"covers_zones: a zone is named twice in {names}")
        return self

    def covers(self, building: str, zone: str) -> bool:
        """Whether this camera sees `zone` of `building`: a zone it lists, in its own building."""
        return bool(zone) and building == self.building and zone in self.covers_zones

    @property
    def silence_means_offline(self) -> bool:
        """Whether `reporting_interval_s` of silence counts against it (not for a panel's points)."""
        return self.gb26875 is None or self.gb26875.reports_periodically

    @property
    def location(self) -> str:
        return " ".join(part for part in (self.building, self.floor, self.zone) if part) or self.id


class Inventory:
    """Read-only lookup of inventory entries by device id."""

    def __init__(self, devices: Iterable[DeviceSpec]) -> None:
        self._by_id: dict[str, DeviceSpec] = {}
        for device in devices:
            if device.id in self._by_id:
                raise ValueError(f"device id {device.id!r} appears twice in the inventory")
            self._by_id[device.id] = device

    def get(self, device_id: str) -> DeviceSpec | None:
        return self._by_id.get(device_id)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._by_id

    def __iter__(self) -> Iterator[DeviceSpec]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
