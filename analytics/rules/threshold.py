"""Static thresholds with hysteresis and a clear hold time (heat_high and its kin)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import Reading, Record
from analytics.rules.base import Rule


@dataclass
class ThresholdRule(Rule):
    """Raise when `metric` >= `raise_at`; clear once it stays below `clear_below` for `clear_hold_s`.

    The gap between the two limits and the hold keep a value hovering at the limit from raising
    a flood (SPEC section 5).
    """

    metric: str = ""
    raise_at: float = 0.0
    clear_below: float = 0.0
    clear_hold_s: float = 0.0
    _raised: set[str] = field(default_factory=set, repr=False)
    _below_since: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.clear_below > self.raise_at:
            raise ValueError(
                f"rule {self.name}: clear_below ({self.clear_below}) must not exceed raise_at ({self.raise_at})"
            )

    def restore(self, alert: Alert) -> None:
        self._raised.add(alert.subject)

    def listens_to(self) -> frozenset[str] | None:
        return frozenset({self.metric})

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not Reading or record.metric != self.metric:
            return ()
        raise_at = self.param(device, "raise_at", self.raise_at)
        clear_below = self.param(device, "clear_below", self.clear_below)
        subject = device.id
        if record.value >= raise_at:
            self._below_since.pop(subject, None)
            self._raised.add(subject)
            details = {"metric": self.metric, "value": record.value, "limit": raise_at}
            return (AlertSignal(self.name, subject, True, record.ts, self.severity, subject, details),)
        if subject not in self._raised or record.value >= clear_below:
            self._below_since.pop(subject, None)
            return ()
        since = self._below_since.setdefault(subject, record.ts)
        if record.ts - since >= self.param(device, "clear_hold_s", self.clear_hold_s):
            self._raised.discard(subject)
            del self._below_since[subject]
            return (AlertSignal(self.name, subject, False, record.ts, self.severity, subject),)
        return ()
