"""The worker's evidence ring and recorder: bounded memory, a snapshot at once, a clip after."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.evidence import (
    CLIP_FILE,
    SNAPSHOT_FILE,
    EvidenceManifest,
    EvidenceRequest,
    EvidenceState,
    UnavailableReason,
    new_evidence_id,
    read_manifest,
)
from drivers.camera import Frame
from drivers.camera_evidence import FrameRing, JpegFrame, write_clip
from gateway.firelane import ConfigError, load_worker_config
from gateway.firelane_evidence import EvidenceRecorder, EvidenceSettings, prune_evidence

RNG = np.random.default_rng(7)


def noise(width: int = 320, height: int = 180) -> np.ndarray:
    """Random pixels: JPEG cannot shrink them, so each frame costs its full size."""
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_the_ring_keeps_its_seconds_and_no_more() -> None:
    ring = FrameRing(keep_s=30.0, max_frames=1000, max_bytes=10**9)
    for second in range(100):
        ring.add(Frame(float(second), noise(64, 36)))
    kept = ring.frames()
    assert [f.ts for f in kept] == [float(s) for s in range(69, 100)]


def test_the_ring_is_bounded_by_frame_count() -> None:
    ring = FrameRing(keep_s=1e9, max_frames=10, max_bytes=10**9)
    for second in range(50):
        ring.add(Frame(float(second), noise(64, 36)))
    assert len(ring) == 10 and ring.frames()[0].ts == 40.0


def test_the_ring_is_bounded_by_bytes_at_1080p() -> None:
    budget = 4 * 1024 * 1024
    ring = FrameRing(keep_s=1e9, max_frames=10_000, max_bytes=budget)
    image = noise(1920, 1080)  # one frame of noise is about 1 MB as JPEG
    for second in range(40):
        ring.add(Frame(float(second), image))
        assert ring.byte_count <= budget
    assert 1 <= len(ring) < 40 and ring.dropped_for_bytes > 0
    assert ring.frames()[-1].ts == 39.0  # the newest always stays


def test_a_clip_has_every_frame_given(tmp_path: Path) -> None:
    frames = [JpegFrame(float(t), cv2.imencode(".jpg", noise())[1].tobytes()) for t in range(12)]
    frames.append(JpegFrame(12.0, cv2.imencode(".jpg", noise(640, 360))[1].tobytes()))  # resized
    assert write_clip(frames, tmp_path / "clip.avi", fps=1.0) == 13
    capture = cv2.VideoCapture(str(tmp_path / "clip.avi"))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 13


def settings(tmp_path: Path, **changes: float) -> EvidenceSettings:
    return EvidenceSettings.model_validate(
        {"dir": tmp_path / "evidence", "before_s": 5.0, "after_s": 1.0, **changes}
    )


def test_a_request_writes_the_snapshot_at_once_and_the_clip_after(tmp_path: Path) -> None:
    config = settings(tmp_path)
    recorder = EvidenceRecorder(config, "cam1", sample_fps=2.0)
    now = time.time()
    for index in range(20):  # 10 s at 2 fps, the last a quarter second before the press
        recorder.add(Frame(now - 9.75 + index * 0.5, noise()))
    request = EvidenceRequest(new_evidence_id(), now)
    recorder.request(request)
    folder = config.dir / request.id
    assert (folder / SNAPSHOT_FILE).read_bytes()[:2] == b"\xff\xd8"
    manifest = read_manifest(config.dir, request.id)
    assert manifest is not None and manifest.state is EvidenceState.RECORDING
    assert not (folder / CLIP_FILE).exists()
    recorder.add(Frame(now + 0.5, noise()))
    recorder.add(Frame(now + 1.0, noise()))
    # Past the clip's end (stamped ahead of the clock): the ring drops the first seconds before
    # the press, which the clip must have kept since the request.
    recorder.add(Frame(now + 3.0, noise()))
    deadline = time.monotonic() + 5
    while (manifest := read_manifest(config.dir, request.id)) and manifest.state is EvidenceState.RECORDING:
        assert time.monotonic() < deadline, "clip not written"
        time.sleep(0.05)
    assert manifest is not None and manifest.state is EvidenceState.READY
    assert manifest.frame_ts[0] == pytest.approx(now - 4.75, abs=0.01)
    assert manifest.frame_ts[-1] == pytest.approx(now + 1.0, abs=0.01)
    assert manifest.snapshot_ts == pytest.approx(now - 0.25, abs=0.01)
    assert len(manifest.frame_ts) == 10 + 2  # the 5 s before and the 1 s after, at 2 fps
    assert (folder / CLIP_FILE).stat().st_size > 0


def test_a_camera_without_recent_frames_answers_unavailable(tmp_path: Path) -> None:
    config = settings(tmp_path)
    recorder = EvidenceRecorder(config, "cam1", sample_fps=1.0)
    now = time.time()
    recorder.add(Frame(now - 60.0, noise()))  # the camera stopped a minute ago
    request = EvidenceRequest(new_evidence_id(), now)
    recorder.request(request)
    manifest = read_manifest(config.dir, request.id)
    assert manifest is not None and manifest.state is EvidenceState.UNAVAILABLE
    assert manifest.reason is UnavailableReason.NO_FRAMES
    assert not (config.dir / request.id / SNAPSHOT_FILE).exists()


def test_a_ring_too_small_for_its_seconds_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "firelane.yaml"
    path.write_text(
        "campus_id: c1\nsnapshot_dir: snaps\nsample_fps: 2\n"
        "evidence: {dir: ev, before_s: 30, max_frames: 40}\n"
        "cameras: [{id: cam1, source: x.avi, lanes: [{id: a, polygon: [[0, 0], [1, 0], [1, 1]]}]}]\n"
    )
    with pytest.raises(ConfigError, match=r"evidence.max_frames: 40 frames cannot hold 30 s .* at least 61"):
        load_worker_config(path)
    path.write_text(path.read_text().replace("max_frames: 40", "max_frames: 61"))
    assert load_worker_config(path).evidence is not None


def test_a_camera_recording_its_most_clips_says_so_for_the_next(tmp_path: Path) -> None:
    config = settings(tmp_path, after_s=30.0, max_pending=2)
    recorder = EvidenceRecorder(config, "cam1", sample_fps=1.0)
    now = time.time()
    recorder.add(Frame(now - 0.5, noise()))
    requests = [EvidenceRequest(new_evidence_id(), now) for _ in range(3)]
    try:
        for request in requests:
            recorder.request(request)
        states = [read_manifest(config.dir, r.id) for r in requests]
        assert [m.state if m else None for m in states] == [
            EvidenceState.RECORDING,
            EvidenceState.RECORDING,
            EvidenceState.UNAVAILABLE,
        ]
        assert states[2] is not None and states[2].reason is UnavailableReason.BUSY
    finally:
        recorder.close()


def _evidence_folder(config: EvidenceSettings, age_s: float, state: EvidenceState, size: int) -> str:
    evidence_id = new_evidence_id()
    EvidenceManifest(evidence_id, "cam1", time.time() - age_s, state).write(config.dir)
    (config.dir / evidence_id / CLIP_FILE).write_bytes(b"\0" * size)
    return evidence_id


def test_old_evidence_goes_after_its_days_and_the_oldest_finished_when_over_budget(tmp_path: Path) -> None:
    """The box runs for years: without pruning, every alarm's clip stayed on disk for good."""
    config = settings(tmp_path, keep_days=30, max_total_bytes=3.5 * 1024 * 1024)
    day, mib = 86400.0, 1024 * 1024
    expired = _evidence_folder(config, 31 * day, EvidenceState.READY, mib // 4)
    stale_recording = _evidence_folder(config, 31 * day, EvidenceState.RECORDING, mib // 4)
    oldest = _evidence_folder(config, 9 * day, EvidenceState.READY, mib)
    unavailable = _evidence_folder(config, 8 * day, EvidenceState.UNAVAILABLE, 0)
    recording = _evidence_folder(config, 7 * day, EvidenceState.RECORDING, mib)  # not finished
    newer = _evidence_folder(config, 2 * day, EvidenceState.READY, mib)
    newest = _evidence_folder(config, 1 * day, EvidenceState.READY, mib)
    (config.dir / "not-evidence").mkdir()  # something an admin put there is not ours to delete

    assert prune_evidence(config) == 3
    kept = sorted(path.name for path in config.dir.iterdir())
    assert kept == sorted([unavailable, recording, newer, newest, "not-evidence"])
    assert {expired, stale_recording, oldest}.isdisjoint(kept)
    assert prune_evidence(config) == 0  # within budget now: 3 MiB of clips


def test_a_finished_clip_prunes_what_has_expired(tmp_path: Path) -> None:
    config = settings(tmp_path, keep_days=1)
    expired = _evidence_folder(config, 2 * 86400.0, EvidenceState.READY, 1000)
    recorder = EvidenceRecorder(config, "cam1", sample_fps=1.0)
    now = time.time()
    recorder.add(Frame(now - 0.5, noise()))
    request = EvidenceRequest(new_evidence_id(), now)
    recorder.request(request)
    recorder.close()  # finishes the clip now
    assert read_manifest(config.dir, request.id) is not None
    assert not (config.dir / expired).exists()
