"""`firelane eval`, `report` and `calibrate` as a user runs them, including bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.firelane_scene import SceneSpec, Vehicle, write_scene
from simulators.firelane_suite import Split, suite
from tests.firelane.scenes import RenderedScene, render

REPO = Path(__file__).resolve().parents[2]


def firelane(*args: str | Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.firelane", "firelane", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> RenderedScene:
    spec = SceneSpec("parked", seed=11, duration_s=80.0, vehicles=(Vehicle(15.0, 50.0, along=0.6),))
    return render(spec, tmp_path_factory.mktemp("cli"))


def test_eval_prints_spec_json_lines_with_video_times(scene: RenderedScene) -> None:
    result = firelane(
        "eval", "--video", scene.video, "--lane", scene.lane_file, "--reference", scene.reference
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [set(line) for line in lines] == [{"t", "event", "occupancy", "area"}] * 2
    assert [line["event"] for line in lines] == ["blocked", "cleared"]
    for line, (_, t_expected) in zip(lines, scene.expected(), strict=True):
        assert abs(line["t"] - t_expected) <= 3.0
    assert 0.2 < lines[0]["occupancy"] <= 1.0
    assert lines[0]["area"] < lines[0]["occupancy"]


def test_eval_ignores_unknown_lane_keys_and_defaults_the_dwell(scene: RenderedScene, tmp_path: Path) -> None:
    raw = json.loads(scene.lane_file.read_text())
    lane = tmp_path / "lane.json"
    lane.write_text(json.dumps({"polygon": raw["polygon"], "name": "north gate", "colour": "yellow"}))
    result = firelane("eval", "--video", scene.video, "--lane", lane, "--reference", scene.reference)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # 35 s parked < default 180 s dwell


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("corrupt", "cannot open"),
        ("truncated", None),
        ("empty", "cannot open"),
        ("missing", "no such file"),
    ],
)
def test_eval_on_damaged_video_is_a_clear_error_or_a_partial_run(
    scene: RenderedScene, tmp_path: Path, damage: str, message: str | None
) -> None:
    video = tmp_path / "damaged.avi"
    data = scene.video.read_bytes()
    if damage == "corrupt":
        video.write_bytes(bytes(range(256)) * 64)
    elif damage == "truncated":
        video.write_bytes(data[: len(data) // 3])
    elif damage == "empty":
        video.write_bytes(b"")
    result = firelane("eval", "--video", video, "--lane", scene.lane_file, "--reference", scene.reference)
    assert "Traceback" not in result.stderr
    if message is None:
        assert result.returncode in (0, 2), result.stderr
    else:
        assert result.returncode == 2
        assert message in result.stderr.lower(), result.stderr


def test_eval_rejects_a_polygon_outside_the_frame(scene: RenderedScene, tmp_path: Path) -> None:
    lane = tmp_path / "lane.json"
    lane.write_text(json.dumps({"polygon": [[10, 10], [900, 10], [900, 170], [10, 170]], "dwell_s": 20}))
    result = firelane("eval", "--video", scene.video, "--lane", lane, "--reference", scene.reference)
    assert result.returncode == 2
    assert "outside the 320x180 frame" in result.stderr


def test_eval_rejects_a_reference_of_another_size(scene: RenderedScene, tmp_path: Path) -> None:
    import cv2

    reference = tmp_path / "big.png"
    cv2.imwrite(str(reference), cv2.resize(cv2.imread(str(scene.reference)), (640, 360)))
    result = firelane("eval", "--video", scene.video, "--lane", scene.lane_file, "--reference", reference)
    assert result.returncode == 2
    assert "frames are 320x180 but the reference is 640x360" in result.stderr


def test_eval_rejects_a_malformed_lane_file(scene: RenderedScene, tmp_path: Path) -> None:
    lane = tmp_path / "lane.json"
    lane.write_text(json.dumps({"polygon": [[1, 2]], "dwell_s": -5}))
    result = firelane("eval", "--video", scene.video, "--lane", lane)
    assert result.returncode == 2
    assert "polygon" in result.stderr and "dwell_s" in result.stderr


def test_report_scores_a_folder_of_scenes(tmp_path: Path) -> None:
    picked = [s for s in suite(Split.TUNING) if s.spec.geometry.width == 640][:3]
    for scene in picked:
        write_scene(scene.spec, tmp_path, scene.references)
    result = firelane("report", "--scenes", tmp_path, timeout_s=300)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    summary = lines[-1]
    assert summary["condition"] == "all" and summary["scenes"] == 3
    assert summary["precision"] == 1.0 and summary["recall"] == 1.0
    assert summary["mean_time_to_detect_s"] == pytest.approx(30.0, abs=5.0)
    assert {line["condition"] for line in lines if "split" in line} == {s.spec.condition for s in picked} | {
        "all"
    }


def test_calibrate_writes_the_median_reference(scene: RenderedScene, tmp_path: Path) -> None:
    out = tmp_path / "reference.png"
    result = firelane(
        "calibrate", "--source", scene.video, "--out", out, "--lane", scene.lane_file, "--frames", "5"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["width"] == 320
    assert out.is_file()


def test_calibrate_from_an_unreadable_source_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "nothing.avi"
    bad.write_bytes(b"\x00" * 100)
    result = firelane("calibrate", "--source", bad, "--out", tmp_path / "r.png", "--retries", "1")
    assert result.returncode == 2
    assert "no frame could be read" in result.stderr
