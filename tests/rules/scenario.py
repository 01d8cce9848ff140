"""A campus in a test: the default rules, the alert service, a fake clock and story-like helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics.alerts import Alert, AlertService, AlertSignal
from analytics.devices import DeviceSpec, Inventory
from analytics.records import DeviceEvent, DeviceKind, Reading, Record
from analytics.rules.base import Rule
from analytics.rules.defaults import configure_rules, default_rules
from analytics.rules.engine import RuleEngine

T0 = 1_763_860_000.0  # Sunday 2025-11-23 09:06:40 in Asia/Shanghai; tests count seconds from here


@dataclass
class MemoryJournal:
    saved: list[Alert] = field(default_factory=list)
    trail: list[tuple[str, str]] = field(default_factory=list)

    def save_alert(self, alert: Alert) -> None:
        self.saved.append(alert)

    def audit(self, ts: float, actor: str, entity: str, entity_id: str, action: str, detail: str) -> None:
        self.trail.append((entity_id, action))


class Campus:
    """Records in, alerts out. `at` is seconds after T0; `tick` runs the engine's timers."""

    def __init__(
        self,
        devices: Iterable[DeviceSpec],
        rules: list[Rule] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.now = T0
        self.inventory = Inventory(devices)
        self.engine = RuleEngine(
            configure_rules(rules if rules is not None else default_rules(), overrides or {})
        )
        self.journal = MemoryJournal()
        self.alerts = AlertService(self.journal, lambda: self.now)
        self.signals: list[AlertSignal] = []

    def restart(self) -> Campus:
        """The same campus after a gateway restart: fresh rules, open alerts restored."""
        after = Campus(self.inventory, overrides={})
        after.now = self.now
        open_alerts = self.alerts.open_alerts()
        after.alerts = AlertService(
            after.journal, lambda: after.now, next_id=len(self.journal.saved) + 1, open_alerts=open_alerts
        )
        after.engine.restore(open_alerts)
        return after

    def send(self, record: Record) -> None:
        self.now = max(self.now, record.ts)
        device = self.inventory.get(record.device_id)
        assert device is not None, record.device_id
        self._apply(self.engine.evaluate(record, device))

    def reading(self, device_id: str, metric: str, value: float, at: float) -> None:
        self.send(Reading(device_id, self._kind(device_id), metric, T0 + at, value))

    def event(self, device_id: str, name: str, at: float, **attrs: Any) -> None:
        self.send(DeviceEvent(device_id, self._kind(device_id), name, T0 + at, attrs))

    def tick(self, at: float) -> None:
        self.now = T0 + at
        self._apply(self.engine.tick(self.now))

    def ticks(self, start: float, stop: float, step: float = 1.0) -> None:
        at = start
        while at <= stop:
            self.tick(at)
            at += step

    def alert(self, rule: str, subject: str) -> Alert | None:
        return next((a for a in self.alerts.open_alerts() if a.rule == rule and a.subject == subject), None)

    def active(self, rule: str, subject: str) -> bool:
        alert = self.alert(rule, subject)
        return alert is not None and alert.condition_active

    def raised_count(self, rule: str) -> int:
        """How many times an alert of `rule` was raised or reactivated (not repeats)."""
        ids = {a.id: a.rule for a in self.journal.saved}
        return sum(
            1
            for entity, action in self.journal.trail
            if action in {"raised", "reactivated"} and ids.get(int(entity)) == rule
        )

    def _apply(self, signals: list[AlertSignal]) -> None:
        self.signals.extend(signals)
        for signal in signals:
            self.alerts.apply(signal)

    def _kind(self, device_id: str) -> DeviceKind:
        device = self.inventory.get(device_id)
        assert device is not None, device_id
        return device.kind


def device(
    device_id: str,
    kind: DeviceKind,
    zone: str = "",
    building: str = "b1",
    thresholds: dict[str, float] | None = None,
) -> DeviceSpec:
    return DeviceSpec(id=device_id, kind=kind, building=building, zone=zone, thresholds=thresholds or {})
