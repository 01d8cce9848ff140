"""Camera faults: no frames, frozen stream, covered and defocused lens, each raised after the
hold time and cleared with camera_ok; a covered lens never becomes a blocked lane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analytics.firelane import CameraPipeline, FaultReason, FirelaneEventName, HealthPolicy, LaneConfig
from simulators.firelane_scene import DEFAULT_GEOMETRY, SceneRenderer, SceneSpec, fault_scenes, lane_polygon
from tests.firelane.scenes import render

HEALTH = HealthPolicy(no_frames_s=5.0, hold_s=5.0, ok_s=3.0)


@pytest.mark.parametrize("spec", fault_scenes(seed=5), ids=lambda spec: spec.name)
def test_lens_and_stream_faults_are_reported_then_cleared(spec: SceneSpec, tmp_path: Path) -> None:
    scene = render(spec, tmp_path)
    events = scene.run(HEALTH)
    summary = [(str(e.name), e.reason, e.ts) for e in events]
    assert [name for name, _, _ in summary] == ["camera_fault", "camera_ok"], summary
    (_, reason, fault_ts), (_, _, ok_ts) = summary
    window = spec.faults[0]
    assert reason == str(window.kind)
    assert window.start_s + HEALTH.hold_s - 1 <= fault_ts <= window.start_s + HEALTH.hold_s + 2
    assert window.end_s + HEALTH.ok_s - 1 <= ok_ts <= window.end_s + HEALTH.ok_s + 2


def lane_pipeline(width: int = 320, height: int = 180) -> tuple[CameraPipeline, SceneRenderer]:
    renderer = SceneRenderer(SceneSpec("clear", geometry=DEFAULT_GEOMETRY.scaled(width, height), seed=2))
    polygon = tuple((x, y) for x, y in lane_polygon(width, height))
    lane = LaneConfig("north", polygon, dwell_s=10.0, clear_s=5.0)
    return CameraPipeline([lane], 0.0, renderer.reference(), health_policy=HEALTH), renderer


def test_no_frames_raises_a_fault_and_frames_coming_back_clear_it() -> None:
    pipeline, renderer = lane_pipeline()
    assert pipeline.frame(0.0, renderer.render(0.0)) == []
    assert pipeline.tick(3.0) == []
    fault = pipeline.tick(6.0)
    assert [(e.name, e.reason) for e in fault] == [(FirelaneEventName.CAMERA_FAULT, "no_frames")]
    assert pipeline.tick(20.0) == []
    events = [e for t in range(30, 36) for e in pipeline.frame(float(t), renderer.render(float(t)))]
    assert [e.name for e in events] == [FirelaneEventName.CAMERA_OK]


def test_covered_lens_is_a_fault_not_a_blocked_lane() -> None:
    pipeline, _ = lane_pipeline()
    covered = np.full((180, 320, 3), 12, np.uint8)
    events = [e for t in range(60) for e in pipeline.frame(float(t), covered)]
    assert [(e.name, e.reason) for e in events] == [(FirelaneEventName.CAMERA_FAULT, "covered")]


def test_wrong_size_frames_are_a_fault_not_a_crash() -> None:
    pipeline, renderer = lane_pipeline()
    pipeline.frame(0.0, renderer.render(0.0))
    small = renderer.render(1.0)[:120, :200]
    events = [e for t in range(1, 10) for e in pipeline.frame(float(t), small)]
    assert [(e.name, e.reason) for e in events] == [(FirelaneEventName.CAMERA_FAULT, FaultReason.WRONG_SIZE)]
