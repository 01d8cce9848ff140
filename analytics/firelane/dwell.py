"""Dwell state machine: turns a per-sample lane occupancy into blocked / cleared transitions.

Pure and clock-injected: callers pass each sample's timestamp, so it runs identically on live
frames, on a video's own frame times and under a fake clock in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LaneState(StrEnum):
    CLEAR = "clear"
    PENDING_BLOCK = "pending_block"
    BLOCKED = "blocked"
    PENDING_CLEAR = "pending_clear"


class LaneEventKind(StrEnum):
    BLOCKED = "blocked"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class LaneTransition:
    """A lane became blocked or cleared at `ts`, with the occupancy measured at that moment."""

    kind: LaneEventKind
    ts: float
    occupancy: float


@dataclass(frozen=True, slots=True)
class DwellPolicy:
    """How long occupancy must last before it is a blockage, and how long clear before it ends.

    `gap_tolerance_s` bridges short dips in occupancy while a blockage is pending (a vehicle
    briefly hidden by a headlight glare is still the same vehicle); a dip longer than that
    restarts the dwell.
    """

    dwell_s: float = 180.0
    clear_s: float = 30.0
    occupied_threshold: float = 0.12
    clear_threshold: float = 0.06
    gap_tolerance_s: float = 5.0

    def __post_init__(self) -> None:
        if self.dwell_s < 0 or self.clear_s < 0 or self.gap_tolerance_s < 0:
            raise ValueError("dwell_s, clear_s and gap_tolerance_s must be >= 0")
        if not 0.0 <= self.clear_threshold <= self.occupied_threshold <= 1.0:
            raise ValueError("need 0 <= clear_threshold <= occupied_threshold <= 1")


class DwellStateMachine:
    """Occupancy -> lane state with hysteresis on both the level and the time axis."""

    def __init__(self, policy: DwellPolicy) -> None:
        self.policy = policy
        self.state = LaneState.CLEAR
        self._occupied_since_ts: float | None = None
        self._last_occupied_ts: float | None = None
        self._clear_since_ts: float | None = None

    def reset(self) -> None:
        """Forget a pending blockage (camera fault, re-calibration); a standing one stays."""
        if self.state is LaneState.PENDING_BLOCK:
            self.state = LaneState.CLEAR
        if self.state is LaneState.PENDING_CLEAR:
            self.state = LaneState.BLOCKED
        self._occupied_since_ts = None
        self._last_occupied_ts = None
        self._clear_since_ts = None

    def update(self, ts: float, occupancy: float) -> LaneTransition | None:
        """Feed one sample; returns the transition it caused, if any."""
        policy = self.policy
        occupied = occupancy >= policy.occupied_threshold
        clear = occupancy < policy.clear_threshold
        if self.state in (LaneState.CLEAR, LaneState.PENDING_BLOCK):
            if occupied:
                if self._occupied_since_ts is None:
                    self._occupied_since_ts = ts
                    self.state = LaneState.PENDING_BLOCK
                self._last_occupied_ts = ts
                if ts - self._occupied_since_ts >= policy.dwell_s:
                    self.state = LaneState.BLOCKED
                    self._occupied_since_ts = None
                    self._clear_since_ts = None
                    return LaneTransition(LaneEventKind.BLOCKED, ts, occupancy)
            elif self._last_occupied_ts is not None and ts - self._last_occupied_ts > policy.gap_tolerance_s:
                self.state = LaneState.CLEAR
                self._occupied_since_ts = None
                self._last_occupied_ts = None
            return None
        if clear:
            if self._clear_since_ts is None:
                self._clear_since_ts = ts
                self.state = LaneState.PENDING_CLEAR
            if ts - self._clear_since_ts >= policy.clear_s:
                self.state = LaneState.CLEAR
                self._clear_since_ts = None
                return LaneTransition(LaneEventKind.CLEARED, ts, occupancy)
        else:
            self._clear_since_ts = None
            self.state = LaneState.BLOCKED
        return None
