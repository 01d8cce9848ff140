"""What a rule is: parameters plus `evaluate(record, device)`, and optionally `tick(now)`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analytics.alerts import AlertSignal, Severity
from analytics.devices import DeviceSpec
from analytics.records import DeviceKind, Record


@dataclass
class Rule:
    """Base of every rule. Subclasses add parameters as fields and override `evaluate`."""

    name: str
    kinds: frozenset[DeviceKind]
    severity: Severity
    enabled: bool = True

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        return ()

    def tick(self, now: float) -> Iterable[AlertSignal]:
        """Time-driven checks (silence, hold times); called about once a second."""
        return ()

    def param(self, device: DeviceSpec, field: str, default: float) -> float:
        """A per-device override from the inventory's `thresholds` (`rule.field`), else the default."""
        return device.thresholds.get(f"{self.name}.{field}", default)
