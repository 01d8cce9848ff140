"""One camera's analytics: health checks, lane occupancy and dwell, frame by frame.

Pure and clock-injected (no capture, no MQTT, no files): the worker and the `eval` command
feed it frames with their timestamps and act on the events it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from analytics.firelane.detector import (
    DetectorParams,
    LaneOccupancyDetector,
    ObstructionParams,
    regime_of,
)
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
from analytics.firelane.regime import LightRegime

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
    obstruction: ObstructionParams = field(default_factory=ObstructionParams)


@dataclass(frozen=True, slots=True)
class FirelaneEvent:
    """What the pipeline reports; `frame` is the image of the moment (for the snapshot)."""

    name: FirelaneEventName
    ts: float
    lane_id: str | None = None
    occupancy: float | None = None
    area: float | None = None
    reason: str | None = None
    detail: str | None = None
    frame: Image | None = field(default=None, repr=False, compare=False)


References = Mapping[LightRegime, Image]


def as_references(images: Image | Sequence[Image] | References | None) -> dict[LightRegime, Image]:
    """Calibrated reference images by the regime each one shows (read from the image)."""
    if images is None:
        return {}
    if isinstance(images, Mapping):
        return dict(images)
    if isinstance(images, np.ndarray):
        return {regime_of(images): images}
    return {regime_of(image): image for image in images}


class CameraPipeline:
    """Feeds frames through health checks, the obstruction detector and each lane's dwell.

    `references` are the calibrated clear-lane images, at most one per lighting regime (day,
    infrared); a regime without one is learned from its first frames (see the detector).
    `confirmed=False` says the references are estimates nobody confirmed clear.
    """

    def __init__(
        self,
        lanes: Sequence[LaneConfig],
        start_ts: float,
        references: Image | Sequence[Image] | References | None = None,
        health_policy: HealthPolicy | None = None,
        detector_params: DetectorParams | None = None,
        confirmed: bool = True,
    ) -> None:
        self.lanes = list(lanes)
        self._confirmed = confirmed
        self._params = detector_params or DetectorParams()
        self._health = CameraHealthMonitor(health_policy or HealthPolicy(), None, start_ts)
        # Cells count only once they have stood for stationary_s, so the dwell is shortened by
        # as much: blocked still comes dwell_s after the object stopped.
        stationary_s = self._params.stationary_s
        self._dwell = {
            lane.lane_id: DwellStateMachine(
                DwellPolicy(
                    dwell_s=max(0.0, lane.dwell_s - stationary_s),
                    clear_s=lane.clear_s,
                    occupied_threshold=lane.obstruction.blocked_width_frac,
                    clear_threshold=lane.obstruction.blocked_width_frac / 2,
                    gap_tolerance_s=min(5.0, lane.clear_s),
                )
            )
            for lane in self.lanes
        }
        self._references = as_references(references)
        self.detector: LaneOccupancyDetector | None = None
        self._lane_error: str | None = None
        if self._references:
            image = next(iter(self._references.values()))
            self._start_detector((image.shape[1], image.shape[0]))

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
            try:
                self._start_detector((image.shape[1], image.shape[0]))
            except LaneGeometryError as exc:
                self._lane_error = str(exc)
                fault = FirelaneEvent(
                    FirelaneEventName.CAMERA_FAULT, ts, reason=FaultReason.BAD_LANE, detail=str(exc)
                )
                return [*events, fault]
        assert self.detector is not None
        try:
            measurement = self.detector.measure(image, ts)
        except FrameSizeError:
            return events + self._health_events(self._health.bad_frame(ts, FaultReason.WRONG_SIZE))
        if self._health.reference is None and not measurement.learning:
            self._health.reference = stats
        for lane_id, lane in measurement.lanes.items():
            transition = self._dwell[lane_id].update(ts, lane.obstruction)
            if transition is None:
                continue
            name = (
                FirelaneEventName.LANE_BLOCKED
                if transition.kind is LaneEventKind.BLOCKED
                else FirelaneEventName.LANE_CLEARED
            )
            events.append(
                FirelaneEvent(name, ts, lane_id, round(lane.obstruction, 3), round(lane.area, 3), frame=image)
            )
        return events

    def tick(self, ts: float) -> list[FirelaneEvent]:
        """Time passed without a frame (capture failing, stream stalled)."""
        return self._health_events(self._health.tick(ts))

    def _start_detector(self, frame_size: tuple[int, int]) -> None:
        lanes = {lane.lane_id: lane.polygon for lane in self.lanes}
        obstruction = {lane.lane_id: lane.obstruction for lane in self.lanes}
        self.detector = LaneOccupancyDetector(
            frame_size, lanes, self._references, self._params, obstruction, self._confirmed
        )
        day = self._references.get(LightRegime.DAY)
        if day is not None:
            self._health.reference = frame_stats(day)

    def _health_events(
        self, transition: HealthTransition | None, image: Image | None = None
    ) -> list[FirelaneEvent]:
        if transition is None:
            return []
        if transition.kind is HealthEventKind.FAULT:
            reason = str(transition.reason) if transition.reason else None
            return [FirelaneEvent(FirelaneEventName.CAMERA_FAULT, transition.ts, reason=reason, frame=image)]
        return [FirelaneEvent(FirelaneEventName.CAMERA_OK, transition.ts)]
