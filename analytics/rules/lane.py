"""fire_lane_blocked: raised and cleared by the video worker's lane events, one alert per lane."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analytics.alerts import AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, Record
from analytics.rules.base import event_details
from analytics.rules.event import EventRule


@dataclass
class LaneEventRule(EventRule):
    """Like `EventRule`, but a camera watching several lanes has one alert per lane (`attrs.lane`)."""

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not DeviceEvent:
            return ()
        raised = record.name in self.raise_on
        if not raised and record.name not in self.clear_on:
            return ()
        lane = record.attrs.get("lane")
        subject = f"{device.id}/{lane}" if lane not in (None, "") else device.id
        details = event_details(record) if raised else {}
        return (AlertSignal(self.name, subject, raised, record.ts, self.severity, device.id, details),)
