"""Device health: offline by status (or last will, or failed polls) and by heartbeat silence."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceState, Record, StatusChange
from analytics.rules.base import Rule


@dataclass
class DeviceOfflineRule(Rule):
    """Raise when a device says it is offline or is silent for `silence_factor` x its interval.

    Devices that report on change only (a fire panel's points, `silence_means_offline` False)
    are never called silent; their transmission device's own silence is.
    """

    silence_factor: float = 3.0
    _last_seen: dict[str, float] = field(default_factory=dict, repr=False)
    _deadline: dict[str, float] = field(default_factory=dict, repr=False)
    _offline: dict[str, str] = field(default_factory=dict, repr=False)  # device id -> why
    _now: float = field(default=0.0, repr=False)  # the gateway clock at the last tick

    def watch(self, device: DeviceSpec, last_seen: float) -> None:
        """Start the silence clock for a device (at start-up, from its last known contact)."""
        self._now = max(self._now, last_seen)
        if not device.silence_means_offline:
            return
        self._last_seen[device.id] = last_seen
        self._deadline[device.id] = last_seen + self.silence_factor * device.reporting_interval_s

    def restore(self, alert: Alert) -> None:
        """Offline at shutdown: the device's next record clears it (the silence clock restarts)."""
        self._offline[alert.subject] = str(alert.details.get("reason", "offline"))

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        subject = device.id
        self._last_seen[subject] = record.ts
        # Silence is measured on the gateway's clock: a device whose own clock is slow (the spec
        # tolerates 300 s) but keeps talking is not silent.
        if device.silence_means_offline:
            heard_at = max(record.ts, self._now)
            self._deadline[subject] = heard_at + self.silence_factor * device.reporting_interval_s
        if type(record) is StatusChange and record.state is DeviceState.OFFLINE:
            self._offline[subject] = record.reason or "offline"
            details = {"reason": record.reason or "offline"}
            return (AlertSignal(self.name, subject, True, record.ts, self.severity, subject, details),)
        if subject in self._offline:
            del self._offline[subject]
            return (AlertSignal(self.name, subject, False, record.ts, self.severity, subject),)
        return ()

    def tick(self, now: float) -> Iterable[AlertSignal]:
        self._now = now
        signals = []
        for subject, deadline in self._deadline.items():
            if now >= deadline and subject not in self._offline:
                self._offline[subject] = "silent"
                details = {"reason": "silent", "last_seen": self._last_seen[subject]}
                signals.append(AlertSignal(self.name, subject, True, now, self.severity, subject, details))
        return signals
