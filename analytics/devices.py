"""The device inventory: the source of truth for which devices exist and where they are."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from analytics.records import DeviceKind


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
