"""Fire-lane analytics (SPEC section 11): pure image maths and state machines, no I/O.

- `LaneOccupancyDetector`: per-lane obstruction (worst cross-section) against the clear-lane
  reference of the frame's lighting regime (day, infrared).
- `DwellStateMachine`: occupancy over time -> blocked / cleared.
- `CameraHealthMonitor`: no frames, frozen, covered, defocused.
- `CameraPipeline`: the three together for one camera, returning `FirelaneEvent`s.
"""

from analytics.firelane.detector import (
    DetectorParams,
    LaneOccupancy,
    LaneOccupancyDetector,
    ObstructionParams,
)
from analytics.firelane.dwell import DwellPolicy, DwellStateMachine, LaneEventKind, LaneState
from analytics.firelane.errors import FirelaneError, FrameSizeError, LaneGeometryError
from analytics.firelane.health import CameraHealthMonitor, FaultReason, HealthPolicy
from analytics.firelane.pipeline import (
    CameraPipeline,
    FirelaneEvent,
    FirelaneEventName,
    LaneConfig,
)
from analytics.firelane.regime import LightRegime

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
    "LaneOccupancy",
    "LaneOccupancyDetector",
    "LaneState",
    "LightRegime",
    "ObstructionParams",
]
