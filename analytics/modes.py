"""Drill and maintenance modes (SPEC section 6): time-boxed, pure, clock injected.

A drill (per building, or campus-wide with building None) tags alerts `drill` so outside
channels skip them; maintenance (per device) suppresses its alerts. Readings and events are
stored as usual in both: neither loses an event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mode:
    id: int
    kind: str  # "drill" or "maintenance"
    target: str | None  # building (drill; None = whole campus) or device id (maintenance)
    starts_at: float
    ends_at: float
    started_by: str
    reason: str


class ModeBook:
    """The drills and maintenance windows in force, expiring by themselves."""

    def __init__(self, clock: Callable[[], float], next_id: int = 1) -> None:
        self._clock = clock
        self._next_id = next_id
        self._modes: dict[int, Mode] = {}

    def start(self, kind: str, target: str | None, duration_s: float, actor: str, reason: str) -> Mode:
        if kind not in ("drill", "maintenance"):
            raise ValueError(f"unknown mode {kind!r}")
        now = self._clock()
        mode = Mode(self._next_id, kind, target, now, now + duration_s, actor, reason)
        self._next_id += 1
        self._modes[mode.id] = mode
        return mode

    def end(self, mode_id: int) -> Mode | None:
        return self._modes.pop(mode_id, None)

    def active(self) -> list[Mode]:
        now = self._clock()
        for mode_id in [m.id for m in self._modes.values() if m.ends_at <= now]:
            del self._modes[mode_id]
        return sorted(self._modes.values(), key=lambda mode: mode.id)

    def drill_for(self, building: str) -> Mode | None:
        if not self._modes:
            return None
        return next((m for m in self.active() if m.kind == "drill" and m.target in (None, building)), None)

    def maintenance_for(self, device_id: str) -> Mode | None:
        if not self._modes:
            return None
        return next((m for m in self.active() if m.kind == "maintenance" and m.target == device_id), None)
