"""The normalized records that flow from drivers into analytics, storage and the API.

Drivers turn topics, JSON, registers and frames into these small frozen types once, at the
boundary; nothing downstream knows which protocol a record came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class DeviceKind(StrEnum):
    SMOKE = "smoke"
    TEMPERATURE = "temperature"
    ELECTRICAL_FIRE = "electrical_fire"
    PANIC = "panic"
    GATE = "gate"
    CHEM_CABINET = "chem_cabinet"
    CAMERA = "camera"
    # A fire-alarm panel's user information transmission device (GB/T 26875.3), or the panel
    # itself: its own status, faults and silence; the panel's detectors are devices of their kinds.
    FIRE_PANEL = "fire_panel"


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Reading:
    """One numeric sample of one metric (booleans are stored as 0.0 / 1.0)."""

    device_id: str
    kind: DeviceKind
    metric: str
    ts: float
    value: float


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something a device reported happening, such as `alarm`, `pressed` or `badge`."""

    device_id: str
    kind: DeviceKind
    name: str
    ts: float
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device's own report (or its broker last will, or a failed poll) of being on or off line."""

    device_id: str
    kind: DeviceKind
    state: DeviceState
    ts: float
    reason: str = ""


Record = Reading | DeviceEvent | StatusChange


class RecordSink(Protocol):
    """Where drivers deliver records. Called on the gateway's event loop thread."""

    def submit(self, records: Sequence[Record]) -> object: ...
