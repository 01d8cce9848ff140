"""What a rule is: parameters plus `evaluate(record, device)`, and optionally `tick(now)`.

After a restart `restore(alert)` hands each rule its alerts that are still active. A rule that correlates other rules' verdicts (fire_confirmed) names them in `followed_rules()`
and receives their signals through `on_signal`; the engine feeds it, one level deep.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analytics.alerts import Alert, AlertSignal, Severity
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, DeviceKind, Record


@dataclass
class Rule:
    """Base of every rule. Subclasses add parameters as fields and override `evaluate`."""

    name: str
    kinds: frozenset[DeviceKind]
    severity: Severity
    enabled: bool = True

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        return ()

    def listens_to(self) -> frozenset[str] | None:
        """The metric and event names this rule evaluates ("status" for status changes), so the
        engine can skip it for anything else; None means every record of its kinds."""
        return None

    def tick(self, now: float) -> Iterable[AlertSignal]:
        """Time-driven checks (silence, hold times); called about once a second."""
        return ()

    def restore(self, alert: Alert) -> None:
        """Take back an alert still active at the last shutdown, so its condition can clear."""

    def followed_rules(self) -> frozenset[str]:
        """Names of the rules whose signals this rule wants through `on_signal` (none by default)."""
        return frozenset()

    def on_signal(self, signal: AlertSignal, device: DeviceSpec | None) -> Iterable[AlertSignal]:
        """React to a followed rule's signal; `device` is None for signals raised by `tick`."""
        return ()

    def param(self, device: DeviceSpec, field: str, default: float) -> float:
        """A per-device override from the inventory's `thresholds` (`rule.field`), else the default."""
        if not device.thresholds:  # the common case: no string built on the hot path
            return default
        return device.thresholds.get(f"{self.name}.{field}", default)


def event_details(record: DeviceEvent, **rule_details: Any) -> dict[str, Any]:
    """An alert's details for a device event: the rule's own keys at the top, the device's attrs
    under `attrs`, so a device can never set a key that policy reads (`drill`, ...)."""
    details: dict[str, Any] = {"event": record.name, **rule_details}
    if record.attrs:
        details["attrs"] = dict(record.attrs)
    return details
