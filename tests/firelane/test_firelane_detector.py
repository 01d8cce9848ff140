"""The occupancy detector and lane geometry on single frames."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.firelane import FrameSizeError, LaneGeometryError, LaneOccupancyDetector, LightRegime
from analytics.firelane.geometry import validate_polygon
from simulators.firelane_scene import DEFAULT_GEOMETRY, SceneRenderer, SceneSpec, Vehicle, lane_polygon


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


@pytest.mark.parametrize(("width", "height"), [(320, 180), (640, 360), (1280, 720)])
def test_obstruction_is_high_with_a_standing_vehicle_and_zero_without(width: int, height: int) -> None:
    geometry = DEFAULT_GEOMETRY.scaled(width, height)
    spec = SceneSpec("frame", seed=6, geometry=geometry, vehicles=(Vehicle(10.0, 50.0, along=0.8),))
    renderer = SceneRenderer(spec)
    detector = LaneOccupancyDetector(
        (width, height), {"lane": lane_polygon(spec)}, {LightRegime.DAY: renderer.reference()}
    )
    clear = [detector.measure(renderer.render(t), t).lanes["lane"] for t in range(0, 6)]
    assert all(lane.obstruction == 0.0 for lane in clear)
    standing = [detector.measure(renderer.render(t), t).lanes["lane"] for t in range(10, 20)]
    # Only once it has stood for stationary_s; then a car far along the lane blocks about its
    # width (1.8 m of 5 m: 0.36, less up to a half-covered bin either side) at its cross-section
    # while covering a small share of the lane's area.
    assert standing[0].obstruction == 0.0
    assert standing[-1].obstruction >= 0.25
    assert standing[-1].area < standing[-1].obstruction / 3


def test_a_frame_of_another_size_is_refused() -> None:
    renderer = SceneRenderer(SceneSpec("frame"))
    detector = LaneOccupancyDetector(
        (320, 180), {"lane": lane_polygon(320, 180)}, {LightRegime.DAY: renderer.reference()}
    )
    with pytest.raises(FrameSizeError, match="re-calibrate"):
        detector.measure(np.zeros((240, 320, 3), np.uint8))


def test_a_lane_outside_the_reference_frame_names_the_lane() -> None:
    renderer = SceneRenderer(SceneSpec("frame"))
    with pytest.raises(LaneGeometryError, match="lane 'south'"):
        LaneOccupancyDetector(
            (320, 180), {"south": [[0, 0], [400, 0], [400, 100]]}, {LightRegime.DAY: renderer.reference()}
        )
