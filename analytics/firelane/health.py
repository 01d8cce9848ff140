"""Camera health: no frames, a frozen image, a covered or a defocused lens.

`frame_stats` reduces a frame to a few numbers once; `CameraHealthMonitor` is a pure,
clock-injected state machine over those numbers that raises a fault only after its condition
has lasted `hold_s`, and clears it after `ok_s` of health.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt


class FaultReason(StrEnum):
    NO_FRAMES = "no_frames"
    FROZEN = "frozen"
    COVERED = "covered"
    DEFOCUSED = "defocused"
    WRONG_SIZE = "wrong_size"
    BAD_LANE = "bad_lane"
    BAD_REFERENCE = "bad_reference"


class HealthEventKind(StrEnum):
    FAULT = "camera_fault"
    OK = "camera_ok"


@dataclass(frozen=True, slots=True)
class HealthTransition:
    kind: HealthEventKind
    ts: float
    reason: FaultReason | None


@dataclass(frozen=True, slots=True)
class FrameStats:
    """What the health checks need from one frame.

    Args:
        mean: mean grey level (0-255) of the downscaled frame.
        std: its standard deviation; a hand or a bag over the lens leaves almost none.
        fine_ratio: fine-band over mid-band energy; gain-invariant, collapses when the lens is
            out of focus or fogged (and dips with compression and shake, hence also:)
        mid_ratio: mid-band over low-band energy; defocus must collapse both.
        probe: a small full-resolution crop, to tell a frozen stream (bit-identical frames)
            from a static scene (which still has sensor noise).
    """

    mean: float
    std: float
    fine_ratio: float
    mid_ratio: float
    probe: npt.NDArray[np.uint8]


def frame_stats(frame: npt.NDArray[np.uint8], work_width_px: int = 320) -> FrameStats:
    height, width = frame.shape[:2]
    gray_full = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    size = (work_width_px, max(1, round(height * work_width_px / width)))
    gray = cv2.resize(gray_full, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    blur1 = cv2.GaussianBlur(gray, (0, 0), 1.0)
    blur3 = cv2.GaussianBlur(gray, (0, 0), 3.0)
    blur9 = cv2.GaussianBlur(gray, (0, 0), 9.0)
    fine = float(np.mean((gray - blur1) ** 2))
    mid = float(np.mean((blur1 - blur3) ** 2))
    low = float(np.mean((blur3 - blur9) ** 2))
    cy, cx = height // 2, width // 2
    probe = np.ascontiguousarray(
        gray_full[max(0, cy - 64) : cy + 64, max(0, cx - 64) : cx + 64], dtype=np.uint8
    )
    return FrameStats(
        mean=float(gray.mean()),
        std=float(gray.std()),
        fine_ratio=fine / (mid + 1e-3),
        mid_ratio=mid / (low + 1e-3),
        probe=probe,
    )


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    no_frames_s: float = 30.0
    hold_s: float = 30.0
    ok_s: float = 10.0
    frozen_max_diff: float = 0.05
    covered_std: float = 4.0
    defocused_fine_ratio: float = 0.5
    defocused_mid_ratio: float = 0.2


class CameraHealthMonitor:
    """Tracks one camera; `suspect` says whether the latest frame should be trusted at all."""

    def __init__(self, policy: HealthPolicy, reference: FrameStats | None, start_ts: float) -> None:
        self.policy = policy
        self.reference = reference
        self.fault: FaultReason | None = None
        self.suspect: FaultReason | None = None
        self._last_frame_ts = start_ts
        self._last_probe: npt.NDArray[np.uint8] | None = None
        self._condition: FaultReason | None = None
        self._condition_since_ts = start_ts
        self._healthy_since_ts: float | None = None
        self._bad_frame_reason: FaultReason | None = None

    def frame(self, ts: float, stats: FrameStats) -> HealthTransition | None:
        """A frame arrived; check it."""
        self._last_frame_ts = ts
        self._bad_frame_reason = None
        condition = self._classify(stats)
        self._last_probe = stats.probe
        return self._observe(ts, condition)

    def bad_frame(self, ts: float, reason: FaultReason) -> HealthTransition | None:
        """A frame arrived but is unusable (e.g. wrong size); counts as no frame."""
        self._bad_frame_reason = reason
        return self.tick(ts)

    def tick(self, ts: float) -> HealthTransition | None:
        """Time passed without a usable frame."""
        if ts - self._last_frame_ts >= self.policy.no_frames_s:
            reason = self._bad_frame_reason or FaultReason.NO_FRAMES
            self.suspect = reason
            if self.fault is None:
                self.fault = reason
                self._healthy_since_ts = None
                return HealthTransition(HealthEventKind.FAULT, ts, reason)
        return None

    def _classify(self, stats: FrameStats) -> FaultReason | None:
        policy = self.policy
        if stats.std < policy.covered_std:
            return FaultReason.COVERED
        if (
            self._last_probe is not None
            and self._last_probe.shape == stats.probe.shape
            and float(cv2.absdiff(self._last_probe, stats.probe).mean()) <= policy.frozen_max_diff
        ):
            return FaultReason.FROZEN
        reference = self.reference
        if (
            reference is not None
            and stats.fine_ratio < policy.defocused_fine_ratio * reference.fine_ratio
            and stats.mid_ratio < policy.defocused_mid_ratio * reference.mid_ratio
        ):
            return FaultReason.DEFOCUSED
        return None

    def _observe(self, ts: float, condition: FaultReason | None) -> HealthTransition | None:
        self.suspect = condition
        if condition != self._condition:
            self._condition = condition
            self._condition_since_ts = ts
        if condition is not None:
            self._healthy_since_ts = None
            if self.fault is None and ts - self._condition_since_ts >= self.policy.hold_s:
                self.fault = condition
                return HealthTransition(HealthEventKind.FAULT, ts, condition)
            return None
        if self.fault is None:
            return None
        if self._healthy_since_ts is None:
            self._healthy_since_ts = ts
        if ts - self._healthy_since_ts >= self.policy.ok_s:
            self.fault = None
            self._healthy_since_ts = None
            return HealthTransition(HealthEventKind.OK, ts, None)
        return None
