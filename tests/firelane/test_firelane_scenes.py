"""The detector on simulator scenes in perspective: one test per condition of issue 12, each
blocked within dwell + 10 s and cleared within clear_s + 10 s, and no false alarm.

Scenes are 320x180 (the default geometry, a 40 m lane) to stay fast; the full generated suite
over eight geometries is `campus-gateway firelane report --simulate`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analytics.firelane import CameraPipeline, FirelaneEventName
from drivers.camera import read_video_file
from gateway.firelane import evaluate_video, median_reference
from simulators.firelane_scene import (
    ASPHALT_BGR,
    DEFAULT_GEOMETRY,
    Condition,
    Crosser,
    ObjectKind,
    SceneSpec,
    Vehicle,
    long_stay_scene,
)
from simulators.firelane_suite import GEOMETRIES, Split
from simulators.firelane_world import LaneGeometry
from tests.firelane.scenes import RenderedScene, render

LATE_S = 10.0
EARLY_S = 3.0
BASE = SceneSpec("base", seed=21, duration_s=100.0, dwell_s=30.0, clear_s=10.0)
PARKED = Vehicle(20.0, 70.0, along=0.5)


def parked(name: str, vehicle: Vehicle = PARKED, **changes: object) -> SceneSpec:
    return replace(BASE, name=name, vehicles=(vehicle,), **changes)  # type: ignore[arg-type]


def lane_events(scene: RenderedScene, references: list[np.ndarray] | None = None) -> list[tuple[str, float]]:
    refs = scene.references() if references is None else references
    pipeline = CameraPipeline([scene.lane], 0.0, refs)
    events = [e for t, image in read_video_file(scene.video, 1.0) for e in pipeline.frame(t, image)]
    faults = [e for e in events if e.name is FirelaneEventName.CAMERA_FAULT]
    assert faults == [], f"{scene.spec.name}: unexpected camera faults {faults}"
    names = {FirelaneEventName.LANE_BLOCKED: "blocked", FirelaneEventName.LANE_CLEARED: "cleared"}
    return [(names[e.name], e.ts) for e in events if e.name in names]


def assert_on_time(detected: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [name for name, _ in detected] == [name for name, _ in expected], (detected, expected)
    for (name, t), (_, t_expected) in zip(detected, expected, strict=True):
        assert t_expected - EARLY_S <= t <= t_expected + LATE_S, f"{name} at {t} s, expected {t_expected} s"


STAYS = {
    "car_near": parked("car_near", replace(PARKED, along=0.1)),
    "car_far_end": parked("car_far_end", replace(PARKED, along=0.95)),
    "grey_car_unhatched": parked("grey_car_unhatched", replace(PARKED, color_bgr=ASPHALT_BGR), hatched=False),
    "van": parked("van", replace(PARKED, kind=ObjectKind.VAN, along=0.7)),
    "boxes": parked("boxes", replace(PARKED, kind=ObjectKind.BOXES, along=0.6)),
    "materials": parked("materials", replace(PARKED, kind=ObjectKind.MATERIALS, along=0.3)),
    "truck_shadows": parked("truck_shadows", conditions=(Condition.TRUCK_SHADOWS, Condition.CLOUD_SHADOWS)),
    "rain": parked("rain", conditions=(Condition.RAIN,)),
    "camera_shake": parked("camera_shake", conditions=(Condition.CAMERA_SHAKE,)),
    "headlights_street_lights_infrared": parked(
        "headlights_street_lights_infrared",
        conditions=(Condition.STREET_LIGHTS, Condition.HEADLIGHT_SWEEPS),
        ir_from_s=0.0,
    ),
}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RenderedScene]:
    directory = tmp_path_factory.mktemp("firelane_scenes")
    return {name: render(spec, directory) for name, spec in STAYS.items()}


@pytest.mark.parametrize("name", sorted(STAYS))
def test_something_standing_anywhere_along_the_lane_blocks_it_on_time(
    scenes: dict[str, RenderedScene], name: str
) -> None:
    scene = scenes[name]
    assert_on_time(lane_events(scene), scene.expected())


def test_people_cyclists_and_cars_passing_or_pausing_under_the_dwell_never_alarm(tmp_path: Path) -> None:
    crossers = (
        Crosser(5.0, 8.0, along=0.3),
        Crosser(12.0, 20.0, kind=ObjectKind.CYCLIST, lengthwise=True),
        Crosser(20.0, 4.0, pause_s=18.0, along=0.6, kind=ObjectKind.CAR),
        Crosser(45.0, 25.0, kind=ObjectKind.PERSON, lengthwise=True),
        Crosser(60.0, 15.0, pause_s=15.0, kind=ObjectKind.CAR, lengthwise=True),
        Crosser(95.0, 5.0, along=0.9, kind=ObjectKind.CYCLIST),
    )
    scene = render(replace(BASE, name="passers", duration_s=120.0, crossers=crossers), tmp_path)
    assert scene.expected() == []
    assert lane_events(scene) == []


def test_a_car_parking_at_night_is_found_with_only_a_daylight_reference(
    scenes: dict[str, RenderedScene],
) -> None:
    scene = scenes["headlights_street_lights_infrared"]
    assert len(scene.references()) == 1  # daylight only; infrared is learned
    assert_on_time(lane_events(scene), scene.expected())


def test_the_switch_to_infrared_raises_no_alarm_and_a_stay_through_it_clears_when_it_leaves(
    tmp_path: Path,
) -> None:
    dusk = replace(
        BASE,
        name="dusk",
        duration_s=170.0,
        conditions=(Condition.DUSK, Condition.STREET_LIGHTS),
        dusk_from_s=20.0,
        dusk_s=50.0,
        street_lights_on_s=40.0,
        ir_from_s=80.0,
    )
    clear = render(dusk, tmp_path)
    assert lane_events(clear) == []
    stay = render(replace(dusk, name="dusk_stay", vehicles=(Vehicle(20.0, 130.0, along=0.4),)), tmp_path)
    assert_on_time(lane_events(stay), stay.expected())


def test_a_car_there_from_the_first_frame_without_any_reference_is_blocked_then_cleared(
    tmp_path: Path,
) -> None:
    spec = replace(
        BASE, name="pre_blocked", duration_s=110.0, vehicles=(Vehicle(0.0, 45.0, along=0.4, move_s=0.0),)
    )
    scene = render(spec, tmp_path, references=())
    assert scene.references() == []
    events = evaluate_video(scene.video, scene.lane, [], 1.0)
    assert_on_time([(e.event, e.t) for e in events], scene.expected())
    # The estimate of the clear lane does not contain the car: measured against it, the first
    # frame's lane is obstructed.
    reference = median_reference(scene.video)
    assert lane_events(scene, [reference])[0][0] == "blocked"


PRE_BLOCKED_LONG = replace(
    BASE, name="pre_blocked_long", duration_s=130.0, vehicles=(Vehicle(0.0, 90.0, along=0.4, move_s=0.0),)
)


def test_a_worker_without_a_reference_reports_a_car_there_from_its_first_frame(tmp_path: Path) -> None:
    """The worker learns its reference from its first frames; the car in them is suspected from
    the lane's surface (it is not road), so it is neither learned as road nor hidden."""
    scene = render(PRE_BLOCKED_LONG, tmp_path, references=())
    assert_on_time(lane_events(scene, []), scene.expected())


@pytest.mark.parametrize("hatched", [True, False])
def test_eval_without_a_reference_reports_a_car_there_for_most_of_the_video(
    tmp_path: Path, hatched: bool
) -> None:
    """The median of the video shows the car: only the lane's surface model tells it is not road."""
    scene = render(replace(PRE_BLOCKED_LONG, hatched=hatched), tmp_path, references=())
    events = evaluate_video(scene.video, scene.lane, [], 1.0)
    assert_on_time([(e.event, e.t) for e in events], scene.expected())


def test_eval_without_a_reference_reports_a_white_car_on_a_lane_between_grey_paving(tmp_path: Path) -> None:
    """The lane's own appearances (what recurs along most of it) are read from its inner cells:
    its edge cells blend the asphalt with the grey paving beside it all along the lane, and a
    white car, grey in its shade, took that blend's appearance and so was road (issue 12).
    Two thirds of the way along the 100 m lane, unhatched (seed 166)."""
    car = Vehicle(0.0, 90.0, color_bgr=(200.0, 200.0, 200.0), along=0.68, move_s=0.0)
    geometry = _geometry("long_100m")
    spec = replace(
        PRE_BLOCKED_LONG, name="white_car", seed=166, geometry=geometry, vehicles=(car,), hatched=False
    )
    scene = render(spec, tmp_path, references=())
    events = evaluate_video(scene.video, scene.lane, [], 1.0)
    assert_on_time([(e.event, e.t) for e in events], scene.expected())


def test_a_clear_lane_without_a_reference_raises_nothing_from_its_markings(tmp_path: Path) -> None:
    spec = replace(
        BASE,
        name="clear_no_reference",
        crossers=(Crosser(10.0, 6.0), Crosser(40.0, 8.0, kind=ObjectKind.CYCLIST, lengthwise=True)),
    )
    scene = render(spec, tmp_path, references=())
    assert lane_events(scene, []) == []
    assert evaluate_video(scene.video, scene.lane, [], 1.0) == []


def test_a_car_parked_for_hours_through_dusk_and_infrared_never_fades_into_the_background(
    tmp_path: Path,
) -> None:
    scene = render(long_stay_scene(seed=3), tmp_path)
    expected = scene.expected()
    assert [name for name, _ in expected] == ["blocked", "cleared"]
    detected = lane_events(scene)
    assert [name for name, _ in detected] == ["blocked", "cleared"]
    # One sample every 10 s: allow one sample of slack either way.
    for (_, t), (_, t_expected) in zip(detected, expected, strict=True):
        assert abs(t - t_expected) <= 10.0 + LATE_S


def test_area_share_is_reported_beside_the_obstruction(scenes: dict[str, RenderedScene]) -> None:
    scene = scenes["car_far_end"]
    pipeline = CameraPipeline([scene.lane], 0.0, scene.references())
    blocked = next(
        e
        for t, image in read_video_file(scene.video, 1.0)
        for e in pipeline.frame(t, image)
        if e.name is FirelaneEventName.LANE_BLOCKED
    )
    assert blocked.occupancy is not None and blocked.area is not None
    assert blocked.occupancy >= 0.2 and blocked.area < 0.1  # far away: a few % of the area
    assert DEFAULT_GEOMETRY.length_m == 40.0


def _geometry(name: str) -> LaneGeometry:
    return next(g for g in GEOMETRIES[Split.TUNING] if g.name == name)


@pytest.mark.parametrize(
    ("name", "geometry", "boxes"),
    [
        # A single-level stack halfway along a 90 m lane at 640x360: a flat brown block of a few
        # cells, which hides the hatching only partly at the cells' scale (issue 12: 0.00).
        (
            "boxes_mid_90m",
            "long_90m_offset",
            replace(PARKED, kind=ObjectKind.BOXES, along=0.45, across=-0.08),
        ),
        # A lane seen from the side: 1.4 m of boxes on a 22 m lane running across the image.
        ("boxes_across", "across_yard", replace(PARKED, kind=ObjectKind.BOXES, along=0.5)),
    ],
)
def test_boxes_far_along_a_long_lane_or_on_a_lane_across_the_image_block_it(
    tmp_path: Path, name: str, geometry: str, boxes: Vehicle
) -> None:
    scene = render(parked(name, boxes, geometry=_geometry(geometry), seed=211), tmp_path)
    assert_on_time(lane_events(scene), scene.expected())


def test_a_person_standing_in_the_lane_for_longer_than_the_dwell_is_not_an_obstruction(
    tmp_path: Path,
) -> None:
    people = (
        Crosser(10.0, 7.0, pause_s=60.0, along=0.3, color_bgr=(40.0, 40.0, 170.0)),
        Crosser(20.0, 7.0, pause_s=55.0, along=0.7),
    )
    # At 640x360: at 320x180 half a metre at 30 m is one 4-px cell, and a cell either side of
    # it is a quarter of the lane's width there (see the limits in docs/firelane.md).
    spec = replace(
        BASE,
        name="standing_people",
        geometry=DEFAULT_GEOMETRY.scaled(640, 360),
        duration_s=110.0,
        crossers=people,
    )
    scene = render(spec, tmp_path)
    assert scene.expected() == []
    assert lane_events(scene) == []
