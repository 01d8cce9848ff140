"""access_denied_burst: too many of one event at one device within a window."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, Record
from analytics.rules.base import Rule, event_details


@dataclass
class EventBurstRule(Rule):
    """Raise when `event` occurs >= `count` times within `window_s` at one device; clear after
    `window_s` without it (a burst that goes on keeps one alert open)."""

    event: str = ""
    count: int = 5
    window_s: float = 60.0
    _recent: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _raised: dict[str, float] = field(default_factory=dict, repr=False)  # device id -> last event
    _now: float = field(default=0.0, repr=False)  # the gateway clock at the last tick

    def __post_init__(self) -> None:
        if self.count < 2:
            raise ValueError("count must be at least 2 (use an event rule for single events)")

    def listens_to(self) -> frozenset[str] | None:
        return frozenset({self.event})

    def restore(self, alert: Alert) -> None:
        self._raised[alert.subject] = alert.last_seen  # clears after a quiet window, as before

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not DeviceEvent or record.name != self.event:
            return ()
        ts = record.ts
        # The quiet window that clears the alert runs on the gateway's clock (see tick), so a gate
        # with a slow clock in the middle of a burst is not taken for quiet.
        heard_at = max(ts, self._now)
        if device.id in self._raised:
            self._raised[device.id] = max(self._raised[device.id], heard_at)
            return ()
        recent = self._recent.setdefault(device.id, deque())
        recent.append(ts)
        window_s = self.param(device, "window_s", self.window_s)
        while recent[0] <= ts - window_s:
            recent.popleft()
        if len(recent) < self.param(device, "count", self.count):
            return ()
        details = event_details(record, count=len(recent), window_s=window_s)
        recent.clear()
        self._raised[device.id] = heard_at
        return (AlertSignal(self.name, device.id, True, ts, self.severity, device.id, details),)

    def tick(self, now: float) -> Iterable[AlertSignal]:
        self._now = now
        if not self._raised:
            return ()
        quiet = [subject for subject, last in self._raised.items() if now - last >= self.window_s]
        for subject in quiet:
            del self._raised[subject]
        return [AlertSignal(self.name, subject, False, now, self.severity, subject) for subject in quiet]
