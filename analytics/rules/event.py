"""Rules raised and cleared by device events (fire_alarm, panic_pressed, gate_forced, ...)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, Record
from analytics.rules.base import Rule, event_details


@dataclass
class EventRule(Rule):
    """Raise on any event in `raise_on`, clear on any event in `clear_on`."""

    raise_on: frozenset[str] = field(default_factory=frozenset)
    clear_on: frozenset[str] = field(default_factory=frozenset)

    def listens_to(self) -> frozenset[str] | None:
        return self.raise_on | self.clear_on

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not DeviceEvent:
            return ()
        if record.name in self.raise_on:
            details = event_details(record)
            return (AlertSignal(self.name, device.id, True, record.ts, self.severity, device.id, details),)
        if record.name in self.clear_on:
            return (AlertSignal(self.name, device.id, False, record.ts, self.severity, device.id),)
        return ()
