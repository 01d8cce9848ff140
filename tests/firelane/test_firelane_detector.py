"""The occupancy detector and lane geometry on single frames."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.firelane import FrameSizeError, LaneGeometryError, LaneOccupancyDetector
from analytics.firelane.geometry import validate_polygon
from simulators.firelane_scene import SceneRenderer, SceneSpec, Vehicle, lane_polygon


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([[10, 10], [700, 10], [700, 170]], "outside the 320x180 frame"),
        ([[10, 10], [100, 10]], "at least 3 points"),
        ([[10, 10], [11, 10], [11, 11]], "under 0.1 %"),
        ([[10, 10, 3], [100, 10], [100, 100]], "expected [x, y]"),
    ],
)
def test_bad_polygons_are_refused_with_a_reason(polygon: list[list[float]], message: str) -> None:
    with pytest.raises(LaneGeometryError, match=message.replace(".", r"\.").replace("[", r"\[")):
        validate_polygon(polygon, 320, 180)


@pytest.mark.parametrize(("width", "height"), [(320, 180), (352, 288), (400, 300)])
def test_occupancy_is_high_with_a_vehicle_and_low_without(width: int, height: int) -> None:
    spec = SceneSpec("frame", seed=6, width=width, height=height, vehicles=(Vehicle(10.0, 50.0),))
    renderer = SceneRenderer(spec)
    detector = LaneOccupancyDetector(renderer.reference(), {"lane": lane_polygon(width, height)})
    assert detector.measure(renderer.render(0.0)).occupancy["lane"] < 0.06
    assert detector.measure(renderer.render(20.0)).occupancy["lane"] > 0.3


def test_a_frame_of_another_size_is_refused() -> None:
    renderer = SceneRenderer(SceneSpec("frame"))
    detector = LaneOccupancyDetector(renderer.reference(), {"lane": lane_polygon(320, 180)})
    with pytest.raises(FrameSizeError, match="re-calibrate"):
        detector.measure(np.zeros((240, 320, 3), np.uint8))


def test_a_lane_outside_the_reference_frame_names_the_lane() -> None:
    renderer = SceneRenderer(SceneSpec("frame"))
    with pytest.raises(LaneGeometryError, match="lane 'south'"):
        LaneOccupancyDetector(renderer.reference(), {"south": [[0, 0], [400, 0], [400, 100]]})
