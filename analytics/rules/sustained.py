"""Thresholds that must hold for a time and a number of samples (smoke_prealarm, electrical_leakage,
cable_overtemp, low_battery).

A value must stay past `raise_at` for `hold_s` and `min_samples` consecutive samples before the
alert is raised, and back past `clear_at` for `clear_hold_s` and `clear_samples` before it clears:
a value hovering at the limit raises one alert, not a flood (SPEC section 5). Signals are sent on
transitions only, so a long excursion does not rewrite the alert on every sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import Reading, Record
from analytics.rules.base import Rule


class _Channel:
    """Where one metric of one device stands: raised or not, and the transition being timed."""

    __slots__ = ("hold_s", "limit", "min_samples", "raised", "samples", "since", "tick_since")

    def __init__(self) -> None:
        self.raised = False
        self.since: float | None = None  # device time the pending transition started
        self.samples = 0
        # The device's own hold, sample count and limit for the pending raise: `tick` has no device.
        self.hold_s = 0.0
        self.min_samples = 1.0
        self.limit = 0.0
        # Gateway time `tick` first saw the pending raise: device clocks may be off by minutes.
        self.tick_since: float | None = None


@dataclass
class SustainedThresholdRule(Rule):
    """One alert per device while any of `metrics` is past `raise_at` (below it if `below`)."""

    metrics: frozenset[str] = field(default_factory=frozenset)
    raise_at: float = 0.0
    hold_s: float = 0.0
    min_samples: int = 1
    clear_at: float = 0.0
    clear_hold_s: float = 0.0
    clear_samples: int = 1
    below: bool = False
    _channels: dict[str, dict[str, _Channel]] = field(default_factory=dict, repr=False)
    _pending: dict[tuple[str, str], _Channel] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if (self.clear_at < self.raise_at) if self.below else (self.clear_at > self.raise_at):
            side = "below" if self.below else "above"
            raise ValueError(f"clear_at ({self.clear_at}) must not be {side} raise_at ({self.raise_at})")
        if self.min_samples < 1 or self.clear_samples < 1:
            raise ValueError("min_samples and clear_samples must be at least 1")

    def listens_to(self) -> frozenset[str] | None:
        return self.metrics

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not Reading or record.metric not in self.metrics:
            return ()
        channels = self._channels.get(device.id)
        if channels is None:
            channels = self._channels[device.id] = {}
        channel = channels.get(record.metric)
        if channel is None:
            channel = channels[record.metric] = _Channel()
        value, ts = record.value, record.ts
        if not channel.raised:
            limit = self.param(device, "raise_at", self.raise_at)
            if not (value < limit if self.below else value >= limit):
                if channel.since is not None:
                    channel.since = None
                    self._pending.pop((device.id, record.metric), None)
                return ()
            if channel.since is None:
                channel.since, channel.samples, channel.tick_since = ts, 0, None
                channel.hold_s = self.param(device, "hold_s", self.hold_s)
                channel.min_samples = self.param(device, "min_samples", self.min_samples)
                channel.limit = limit
                if channel.hold_s > 0:  # only a timed hold can end between samples
                    self._pending[(device.id, record.metric)] = channel
            channel.samples += 1
            if ts - channel.since < channel.hold_s or channel.samples < channel.min_samples:
                return ()
            return self._raise(device.id, record.metric, channel, ts, value, limit)
        limit = self.param(device, "clear_at", self.clear_at)
        if not (value >= limit if self.below else value < limit):
            channel.since = None
            return ()
        if channel.since is None:
            channel.since, channel.samples = ts, 0
        channel.samples += 1
        if ts - channel.since < self.param(device, "clear_hold_s", self.clear_hold_s) or (
            channel.samples < self.param(device, "clear_samples", self.clear_samples)
        ):
            return ()
        channel.raised, channel.since = False, None
        if any(other.raised for other in channels.values()):
            return ()
        return (AlertSignal(self.name, device.id, False, ts, self.severity, device.id),)

    def restore(self, alert: Alert) -> None:
        metric = str(alert.details.get("metric") or next(iter(sorted(self.metrics)), ""))
        self._channels.setdefault(alert.device_id, {}).setdefault(metric, _Channel()).raised = True

    def tick(self, now: float) -> Iterable[AlertSignal]:
        """Raise a held excursion when its hold time ends between samples (slow reporters)."""
        if not self._pending:
            return ()
        signals: list[AlertSignal] = []
        for (device_id, metric), channel in list(self._pending.items()):
            if channel.tick_since is None:
                channel.tick_since = now
            if now - channel.tick_since >= channel.hold_s and channel.samples >= channel.min_samples:
                signals.extend(self._raise(device_id, metric, channel, now, None, channel.limit))
        return signals

    def _raise(
        self,
        device_id: str,
        metric: str,
        channel: _Channel,
        ts: float,
        value: float | None,
        limit: float,
    ) -> tuple[AlertSignal, ...]:
        self._pending.pop((device_id, metric), None)
        others_raised = any(other.raised for other in self._channels[device_id].values())
        channel.raised, channel.since = True, None
        if others_raised:
            return ()
        details: dict[str, object] = {"metric": metric, "limit": limit}
        if value is not None:
            details["value"] = value
        return (AlertSignal(self.name, device_id, True, ts, self.severity, device_id, details),)
