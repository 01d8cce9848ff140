"""Two-level thresholds with an alarm event (chem_leak, flammable_gas).

One alert per device: raised at `warn_at` with `warn_severity`, raised again (the alert service
keeps the higher severity) at `raise_at` with the rule's severity, or by a `raise_on` event from
the device's own detector. It clears once the value stays under `clear_below` for
`clear_hold_s` and no alarm event is active.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal, Severity
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, Reading, Record
from analytics.rules.base import Rule, event_details


class _Level:
    __slots__ = ("below_since", "event_active", "level")

    def __init__(self) -> None:
        self.level = 0  # 0 clear, 1 warning level, 2 alarm level (only rises until cleared)
        self.event_active = False
        self.below_since: float | None = None


@dataclass
class TieredThresholdRule(Rule):
    """Warn at `warn_at`, alarm at `raise_at` (or on a `raise_on` event), one alert per device."""

    metric: str = ""
    warn_at: float = 0.0
    warn_severity: Severity = Severity.WARNING
    raise_at: float = 0.0
    clear_below: float = 0.0
    clear_hold_s: float = 0.0
    raise_on: frozenset[str] = field(default_factory=frozenset)
    clear_on: frozenset[str] = field(default_factory=frozenset)
    _levels: dict[str, _Level] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.clear_below <= self.warn_at <= self.raise_at:
            raise ValueError(
                f"need clear_below ({self.clear_below}) <= warn_at ({self.warn_at}) <= raise_at ({self.raise_at})"
            )

    def restore(self, alert: Alert) -> None:
        state = self._state(alert.device_id)
        if "event" in alert.details:
            state.event_active = True
        if "metric" in alert.details:
            state.level = 2 if alert.severity is self.severity else 1

    def listens_to(self) -> frozenset[str] | None:
        return frozenset({self.metric}) | self.raise_on | self.clear_on

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is Reading:
            if record.metric != self.metric:
                return ()
            return self._reading(device, record.ts, record.value)
        if type(record) is DeviceEvent and (record.name in self.raise_on or record.name in self.clear_on):
            state = self._state(device.id)
            if record.name in self.raise_on:
                state.event_active = True
                details = event_details(record)
                return (
                    AlertSignal(self.name, device.id, True, record.ts, self.severity, device.id, details),
                )
            state.event_active = False
            return self._maybe_clear(device.id, state, record.ts)
        return ()

    def _reading(self, device: DeviceSpec, ts: float, value: float) -> Iterable[AlertSignal]:
        state = self._levels.get(device.id)
        if value >= self.param(device, "raise_at", self.raise_at):
            level, severity, limit = 2, self.severity, "raise_at"
        elif value >= self.param(device, "warn_at", self.warn_at):
            level, severity, limit = 1, self.warn_severity, "warn_at"
        else:
            if state is None or state.level == 0:
                return ()
            if value >= self.param(device, "clear_below", self.clear_below):
                state.below_since = None
                return ()
            if state.below_since is None:
                state.below_since = ts
            if ts - state.below_since < self.param(device, "clear_hold_s", self.clear_hold_s):
                return ()
            state.level, state.below_since = 0, None
            return self._maybe_clear(device.id, state, ts)
        if state is None:
            state = self._state(device.id)
        state.below_since = None
        if level <= state.level:
            return ()
        state.level = level
        details = {
            "metric": self.metric,
            "value": value,
            "limit": self.param(device, limit, getattr(self, limit)),
        }
        return (AlertSignal(self.name, device.id, True, ts, severity, device.id, details),)

    def _maybe_clear(self, device_id: str, state: _Level, ts: float) -> Iterable[AlertSignal]:
        if state.level or state.event_active:
            return ()
        return (AlertSignal(self.name, device_id, False, ts, self.severity, device_id),)

    def _state(self, device_id: str) -> _Level:
        state = self._levels.get(device_id)
        if state is None:
            state = self._levels[device_id] = _Level()
        return state
