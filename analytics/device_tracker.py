"""Live per-device state: online, last contact, last value of each metric."""

from __future__ import annotations

from dataclasses import dataclass, field

from analytics.catalog import CAMERA_HEALTH_METRICS
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, DeviceState, Reading, Record, StatusChange

# A camera that reports a fault (no frames, frozen, covered, defocused) gives no usable video:
# for uptime it is down until it reports camera_ok or anything else that needs frames.
CAMERA_FAULT = "camera_fault"


@dataclass
class DeviceStatus:
    device_id: str
    kind: str
    online: bool | None = None  # None: not heard from since the gateway first saw the device
    last_seen: float | None = None
    state_changed_at: float | None = None
    last_values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceStatusChanged:
    """Published on the bus when a device goes online or offline."""

    status: DeviceStatus


def transition_cause(record: Record) -> str:
    """Why `record` changed its device's online state, as stored with the transition."""
    if type(record) is StatusChange:
        return record.reason or "status"
    if type(record) is DeviceEvent and record.name == CAMERA_FAULT:
        return f"{CAMERA_FAULT}:{record.attrs.get('reason', '')}"
    return "data"


class DeviceTracker:
    """Folds records into `DeviceStatus`; remembers which devices changed since the last flush."""

    def __init__(self, devices: list[DeviceSpec]) -> None:
        self._status = {device.id: DeviceStatus(device.id, device.kind.value) for device in devices}
        self._dirty: set[str] = set()

    def restore(self, status: DeviceStatus) -> None:
        if status.device_id in self._status:
            self._status[status.device_id] = status

    def observe(self, record: Record) -> bool:
        """Update from one record; True when the device's online state changed."""
        status = self._status.get(record.device_id)
        if status is None:
            return False
        self._dirty.add(record.device_id)
        if status.last_seen is None or record.ts > status.last_seen:
            status.last_seen = record.ts
        if type(record) is Reading:
            status.last_values[record.metric] = record.value
            # The worker reports a camera's health whether or not it has frames: a health report
            # is no sign that a camera in fault is seeing again (camera_ok is).
            if record.metric in CAMERA_HEALTH_METRICS and status.kind == "camera":
                return False
        online = not (
            (type(record) is StatusChange and record.state is DeviceState.OFFLINE)
            or (type(record) is DeviceEvent and record.name == CAMERA_FAULT)
        )
        if status.online is online:
            return False
        status.online = online
        status.state_changed_at = record.ts
        return True

    def mark_offline(self, device_id: str, ts: float) -> bool:
        """A device found silent by the health rule; True when that is news."""
        status = self._status.get(device_id)
        if status is None or status.online is False:
            return False
        status.online = False
        status.state_changed_at = ts
        self._dirty.add(device_id)
        return True

    def get(self, device_id: str) -> DeviceStatus | None:
        return self._status.get(device_id)

    def all(self) -> list[DeviceStatus]:
        return list(self._status.values())

    def take_dirty(self) -> list[DeviceStatus]:
        dirty = [self._status[device_id] for device_id in self._dirty]
        self._dirty.clear()
        return dirty
