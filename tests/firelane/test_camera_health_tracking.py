"""A camera's health reports are kept as its latest values but never taken as a sign it sees."""

from __future__ import annotations

from analytics.device_tracker import DeviceTracker
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, DeviceKind, Reading


def test_a_health_report_keeps_a_faulted_camera_down_until_camera_ok() -> None:
    tracker = DeviceTracker([DeviceSpec(id="cam1", kind=DeviceKind.CAMERA)])
    fault = DeviceEvent("cam1", DeviceKind.CAMERA, "camera_fault", 10.0, {"reason": "no_frames"})
    assert tracker.observe(fault)
    assert not tracker.observe(Reading("cam1", DeviceKind.CAMERA, "reconnects", 12.0, 3.0))
    status = tracker.get("cam1")
    assert status is not None and status.online is False
    assert status.last_values["reconnects"] == 3.0 and status.last_seen == 12.0
    assert tracker.observe(DeviceEvent("cam1", DeviceKind.CAMERA, "camera_ok", 20.0, {}))
    assert status.online is True
