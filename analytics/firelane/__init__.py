"""Fire-lane analytics (SPEC section 11): pure image maths and state machines, no I/O.

- `LaneOccupancyDetector`: per-lane occupancy of a frame against a clear-lane reference.
- `DwellStateMachine`: occupancy over time -> blocked / cleared.
- `CameraHealthMonitor`: no frames, frozen, covered, defocused.
- `CameraPipeline`: the three together for one camera, returning `FirelaneEvent`s.
"""

from analytics.firelane.detector import DetectorParams, LaneOccupancyDetector
from analytics.firelane.dwell import DwellPolicy, DwellStateMachine, LaneEventKind, LaneState
from analytics.firelane.errors import FirelaneError, FrameSizeError, LaneGeometryError
from analytics.firelane.health import CameraHealthMonitor, FaultReason, HealthPolicy
from analytics.firelane.pipeline import (
    CameraPipeline,
    FirelaneEvent,
    FirelaneEventName,
    LaneConfig,
)

__all__ = [
    "CameraHealthMonitor",
    "CameraPipeline",
    "DetectorParams",
    "DwellPolicy",
    "DwellStateMachine",
    "FaultReason",
    "FirelaneError",
    "FirelaneEvent",
    "FirelaneEventName",
    "FrameSizeError",
    "HealthPolicy",
    "LaneConfig",
    "LaneEventKind",
    "LaneGeometryError",
    "LaneOccupancyDetector",
    "LaneState",
]
