"""Cross-sections and lighting regimes on synthetic masks and frames: obstruction, not area."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analytics.firelane import LightRegime
from analytics.firelane.geometry import CrossSections, cell_weights, runs_across, with_headroom
from analytics.firelane.regime import RegimeTracker, frame_regime
from gateway.firelane import load_lane_file
from simulators.firelane_suite import GEOMETRIES, TUNING_CONDITIONS, Split, suite

# A lane receding towards a vanishing point, on a 160 x 90 cell grid (like the camera):
# 115 cells wide at the bottom row, 23 at the top.
GRID = (90, 160)
POLYGON = [(68.5, 15.0), (91.5, 15.0), (137.5, 89.0), (22.5, 89.0)]


@pytest.fixture(scope="module")
def lane() -> CrossSections:
    return CrossSections.of(cell_weights(POLYGON, (1.0, 1.0), GRID, 1), bins=24)


def blob(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(GRID, bool)
    mask[rows, cols] = True
    return mask


def across(rows: range, start: float, end: float) -> np.ndarray:
    """Cells from `start` to `end` of the lane's width (0 left edge, 1 right) on `rows`."""
    mask = np.zeros(GRID, bool)
    for row in rows:
        left = 68.5 + (22.5 - 68.5) * (row - 15.0) / 74.0
        right = 91.5 + (137.5 - 91.5) * (row - 15.0) / 74.0
        mask[row, round(left + start * (right - left)) : round(left + end * (right - left))] = True
    return mask


def test_the_lane_width_at_each_row_is_the_polygons_own(lane: CrossSections) -> None:
    assert lane.width_cells[16] == pytest.approx(24.6, abs=1.5)
    assert lane.width_cells[88] == pytest.approx(114, abs=2)


def test_a_car_at_the_far_end_blocks_as_much_as_one_near_the_camera(lane: CrossSections) -> None:
    # 40 % of the width, a third of a lane width tall, at either end.
    far = across(range(16, 24), 0.3, 0.7)
    near = across(range(55, 85), 0.3, 0.7)
    assert lane.obstruction(far, 1.0, 0.1) == pytest.approx(lane.obstruction(near, 1.0, 0.1), abs=0.1)
    assert lane.obstruction(far, 1.0, 0.1) >= 0.35
    assert lane.area(far) < 0.02  # what the area rule of issue 6 measured: nothing


def test_a_hollow_outline_blocks_its_whole_width(lane: CrossSections) -> None:
    outline = blob(slice(50, 52), slice(60, 100)) | blob(slice(70, 72), slice(60, 100))
    assert lane.obstruction(outline, 1.0, 0.1) >= 0.35


@pytest.mark.parametrize(
    ("name", "mask"),
    [
        ("a shadow's edge across the lane", blob(slice(60, 61), slice(0, 160))),
        ("a walker", blob(slice(40, 52), slice(78, 82))),
        ("a kerb line along the lane", blob(slice(20, 89), slice(80, 81))),
    ],
)
def test_lines_and_narrow_things_do_not_block(lane: CrossSections, name: str, mask: np.ndarray) -> None:
    assert lane.obstruction(mask, 1.0, 0.1) < 0.2, name


def test_the_analysed_region_rises_above_the_far_edge() -> None:
    grown = with_headroom(POLYGON, 0.35)
    assert min(y for _, y in grown) == pytest.approx(15.0 - 0.35 * 23.0, abs=0.5)
    assert max(y for _, y in grown) == 89.0


def test_regime_is_read_from_the_frame_and_switches_only_after_two_frames() -> None:
    day = np.zeros((90, 160, 3), np.uint8)
    day[:] = (60, 120, 180)
    infrared = np.full((90, 160, 3), 120, np.uint8)
    assert frame_regime(day) is LightRegime.DAY
    assert frame_regime(infrared) is LightRegime.INFRARED
    tracker = RegimeTracker()
    seen = [tracker.update(frame) for frame in (day, infrared, day, infrared, infrared, infrared)]
    assert seen == [LightRegime.DAY] * 4 + [LightRegime.INFRARED] * 2


def test_lane_file_takes_the_obstruction_parameters(tmp_path: Path) -> None:
    path = tmp_path / "lane.json"
    path.write_text(
        json.dumps({"polygon": POLYGON, "dwell_s": 120, "blocked_width_frac": 0.3, "min_length_frac": 0.2})
    )
    lane = load_lane_file(path)
    assert (lane.obstruction.blocked_width_frac, lane.obstruction.min_length_frac) == (0.3, 0.2)
    path.write_text(json.dumps({"polygon": POLYGON}))
    assert load_lane_file(path).obstruction.blocked_width_frac == 0.15


# A lane seen from the side: a band across the grid, 20 cells high and 150 long.
ACROSS = [(5.0, 40.0), (155.0, 40.0), (155.0, 60.0), (5.0, 60.0)]


def test_a_lane_across_the_image_takes_its_columns_as_cross_sections() -> None:
    weights = cell_weights(ACROSS, (1.0, 1.0), GRID, 1)
    lane = CrossSections.of(weights, bins=24)
    assert lane.across and lane.width_cells.shape == (GRID[1],)
    # Boxes taking 40 % of the lane's width (its height in the image), 4 cells long: a row
    # would see 4 cells of 150 and call it nothing.
    boxes = blob(slice(48, 56), slice(80, 84))
    assert lane.obstruction(boxes, 1.0, 0.1) >= 0.35
    assert CrossSections.of(weights, bins=24, across=False).obstruction(boxes, 1.0, 0.1) < 0.1
    # A line along the lane (a kerb's shadow) is one cross-section's worth: never an object.
    assert lane.obstruction(blob(slice(45, 46), slice(10, 150)), 1.0, 0.1) < 0.1


@pytest.mark.parametrize("split", list(Split))
def test_the_suite_lanes_are_read_as_receding_or_across_from_their_polygons(split: Split) -> None:
    for geometry in GEOMETRIES[split]:
        polygon = [(x, y) for x, y in geometry.lane_polygon()]
        scale = (160 / geometry.width, 90 / geometry.height)
        across = runs_across(cell_weights(polygon, scale, GRID, 1))
        assert across == geometry.name.startswith("across"), geometry.name


def test_a_person_standing_on_a_slanted_lane_takes_only_the_width_of_their_footprint() -> None:
    # A lane slanting across the grid at about 45 degrees; a person 3 cells wide and 14 tall
    # rises straight up from their feet, crossing the slanted cross-sections above them.
    slanted = [(10.0, 89.0), (60.0, 89.0), (150.0, 5.0), (120.0, 5.0)]
    lane = CrossSections.of(cell_weights(slanted, (1.0, 1.0), GRID, 1), bins=24)
    person = blob(slice(50, 64), slice(70, 73))
    assert lane.obstruction(person, 1.0, 0.1) < 0.15
    car = blob(slice(56, 64), slice(62, 78))
    assert lane.obstruction(car, 1.0, 0.1) >= 0.3


def test_the_held_out_splits_share_no_seed_or_geometry_with_tuning() -> None:
    """What is reported as held out was never tuned on: no tuning seed or geometry in it, and
    the late conditions never change a scene of the first held-out split."""
    tuning = suite(Split.TUNING)
    tuning_seeds = {scene.spec.seed for scene in tuning}
    tuning_geometries = {scene.spec.geometry.name for scene in tuning if scene.spec.geometry}
    for split in (Split.HELD_OUT, Split.HELD_OUT_LATE):
        held = suite(split)
        assert held and not tuning_seeds & {scene.spec.seed for scene in held}
        assert not tuning_geometries & {scene.spec.geometry.name for scene in held if scene.spec.geometry}
    late = suite(Split.HELD_OUT_LATE)
    assert {scene.spec.condition for scene in late} == set(TUNING_CONDITIONS)
    assert not {scene.spec.seed for scene in late} & {scene.spec.seed for scene in suite(Split.HELD_OUT)}
