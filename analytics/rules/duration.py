"""Open too long (gate_held_open, cabinet_open_long): tick-driven, from open/close events or an
open/closed metric, whichever the device reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, Reading, Record
from analytics.rules.base import Rule


@dataclass
class OpenTooLongRule(Rule):
    """Raise when a door stays open longer than `limit_s` (or the device itself reports it with a
    `raise_on` event); clear when it closes.

    `open_events` / `close_events` and `open_metric` (1 open, 0 closed) all move the same state.
    The limit is timed on the gateway clock in `tick` from when the opening was first seen, so a
    device clock that is off cannot shorten it.
    """

    open_events: frozenset[str] = field(default_factory=frozenset)
    close_events: frozenset[str] = field(default_factory=frozenset)
    raise_on: frozenset[str] = field(default_factory=frozenset)
    open_metric: str = ""
    limit_s: float = 120.0
    _open: dict[str, tuple[float, float | None]] = field(
        default_factory=dict, repr=False
    )  # id -> (limit, tick start)
    _raised: set[str] = field(default_factory=set, repr=False)

    def restore(self, alert: Alert) -> None:
        self._raised.add(alert.subject)  # still open as far as we know: the close clears it

    def listens_to(self) -> frozenset[str] | None:
        return self.open_events | self.close_events | self.raise_on | {self.open_metric}

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is DeviceEvent:
            name = record.name
            if name in self.open_events:
                opened = True
            elif name in self.close_events:
                opened = False
            elif name in self.raise_on:
                return self._raise(device.id, record.ts, {"event": name})
            else:
                return ()
        elif type(record) is Reading and record.metric == self.open_metric:
            opened = record.value >= 0.5
        else:
            return ()
        if opened:
            if device.id not in self._open:
                self._open[device.id] = (self.param(device, "limit_s", self.limit_s), None)
            return ()
        self._open.pop(device.id, None)
        if device.id not in self._raised:
            return ()
        self._raised.discard(device.id)
        return (AlertSignal(self.name, device.id, False, record.ts, self.severity, device.id),)

    def tick(self, now: float) -> Iterable[AlertSignal]:
        if not self._open:
            return ()
        signals: list[AlertSignal] = []
        for subject, (limit_s, started) in self._open.items():
            if started is None:
                self._open[subject] = (limit_s, now)
            elif now - started > limit_s and subject not in self._raised:
                signals.extend(
                    self._raise(subject, now, {"open_s": round(now - started, 1), "limit_s": limit_s})
                )
        return signals

    def _raise(self, subject: str, ts: float, details: dict[str, object]) -> tuple[AlertSignal, ...]:
        if subject in self._raised:
            return ()
        self._raised.add(subject)
        return (AlertSignal(self.name, subject, True, ts, self.severity, subject, details),)
