"""One camera's analytics: health checks, lane occupancy and dwell, frame by frame.

Pure and clock-injected (no capture, no MQTT, no files): the worker and the `eval` command
feed it frames with their timestamps and act on the events it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from analytics.firelane.detector import DetectorParams, LaneOccupancyDetector
from analytics.firelane.dwell import DwellPolicy, DwellStateMachine, LaneEventKind
from analytics.firelane.errors import FrameSizeError, LaneGeometryError
from analytics.firelane.health import (
    CameraHealthMonitor,
    FaultReason,
    HealthEventKind,
    HealthPolicy,
    HealthTransition,
    frame_stats,
)

Image = npt.NDArray[np.uint8]


class FirelaneEventName(StrEnum):
    LANE_BLOCKED = "lane_blocked"
    LANE_CLEARED = "lane_cleared"
    CAMERA_FAULT = "camera_fault"
    CAMERA_OK = "camera_ok"


@dataclass(frozen=True, slots=True)
class LaneConfig:
    lane_id: str
    polygon: tuple[tuple[float, float], ...]
    dwell_s: float = 180.0
    clear_s: float = 30.0
    occupied_threshold: float = 0.12


@dataclass(frozen=True, slots=True)
class FirelaneEvent:
    """What the pipeline reports; `frame` is the image of the moment (for the snapshot)."""

    name: FirelaneEventName
    ts: float
    lane_id: str | None = None
    occupancy: float | None = None
    reason: str | None = None
    detail: str | None = None
    frame: Image | None = field(default=None, repr=False, compare=False)


class CameraPipeline:
    """Feeds frames through health checks, the occupancy detector and each lane's dwell.

    Without a calibrated reference it learns one as the per-pixel median of the first
    `learn_samples` usable frames; a vehicle already standing then is not detected, which is
    why `firelane calibrate` exists.
    """

    def __init__(
        self,
        lanes: Sequence[LaneConfig],
        start_ts: float,
        reference: Image | None = None,
        health_policy: HealthPolicy | None = None,
        detector_params: DetectorParams | None = None,
        learn_samples: int = 5,
    ) -> None:
        self.lanes = list(lanes)
        self._params = detector_params
        self._health = CameraHealthMonitor(health_policy or HealthPolicy(), None, start_ts)
        self._dwell = {
            lane.lane_id: DwellStateMachine(
                DwellPolicy(
                    dwell_s=lane.dwell_s,
                    clear_s=lane.clear_s,
                    occupied_threshold=lane.occupied_threshold,
                    clear_threshold=lane.occupied_threshold / 2,
                    gap_tolerance_s=min(5.0, lane.clear_s),
                )
            )
            for lane in self.lanes
        }
        self._learn_samples = learn_samples
        self._learning: list[Image] = []
        self.detector: LaneOccupancyDetector | None = None
        self._lane_error: str | None = None
        if reference is not None:
            self._calibrate(reference)

    def frame(self, ts: float, image: Image) -> list[FirelaneEvent]:
        """Process one sampled frame taken at `ts`."""
        if self._lane_error is not None:
            return []
        if self.detector is not None:
            width, height = self.detector.frame_size
            if image.shape[1] != width or image.shape[0] != height:
                return self._health_events(self._health.bad_frame(ts, FaultReason.WRONG_SIZE))
        stats = frame_stats(image)
        events = self._health_events(self._health.frame(ts, stats), image)
        if self._health.fault is not None:
            for machine in self._dwell.values():
                machine.reset()
            return events
        if self._health.suspect is not None:
            return events  # not trusted, but not yet a fault: skip it, keep the dwell running
        if self.detector is None:
            return events + self._learn(ts, image)
        try:
            measurement = self.detector.measure(image)
        except FrameSizeError:
            return events + self._health_events(self._health.bad_frame(ts, FaultReason.WRONG_SIZE))
        for lane_id, occupancy in measurement.occupancy.items():
            transition = self._dwell[lane_id].update(ts, occupancy)
            if transition is None:
                continue
            name = (
                FirelaneEventName.LANE_BLOCKED
                if transition.kind is LaneEventKind.BLOCKED
                else FirelaneEventName.LANE_CLEARED
            )
            events.append(FirelaneEvent(name, ts, lane_id, round(occupancy, 3), frame=image))
        return events

    def tick(self, ts: float) -> list[FirelaneEvent]:
        """Time passed without a frame (capture failing, stream stalled)."""
        return self._health_events(self._health.tick(ts))

    def _calibrate(self, reference: Image) -> None:
        lanes = {lane.lane_id: lane.polygon for lane in self.lanes}
        self.detector = LaneOccupancyDetector(reference, lanes, self._params)
        self._health.reference = frame_stats(reference)

    def _learn(self, ts: float, image: Image) -> list[FirelaneEvent]:
        if self._learning and self._learning[0].shape != image.shape:
            self._learning.clear()
        self._learning.append(image)
        if len(self._learning) < self._learn_samples:
            return []
        reference = np.median(np.stack(self._learning), axis=0).astype(np.uint8)
        self._learning.clear()
        try:
            self._calibrate(reference)
        except LaneGeometryError as exc:
            self._lane_error = str(exc)
            fault = FirelaneEvent(
                FirelaneEventName.CAMERA_FAULT, ts, reason=FaultReason.BAD_LANE, detail=str(exc)
            )
            return [fault]
        return []

    def _health_events(
        self, transition: HealthTransition | None, image: Image | None = None
    ) -> list[FirelaneEvent]:
        if transition is None:
            return []
        if transition.kind is HealthEventKind.FAULT:
            reason = str(transition.reason) if transition.reason else None
            return [FirelaneEvent(FirelaneEventName.CAMERA_FAULT, transition.ts, reason=reason, frame=image)]
        return [FirelaneEvent(FirelaneEventName.CAMERA_OK, transition.ts)]
