"""The video worker against a real RTSP server (GStreamer, H.264) and a real mosquitto."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from drivers.camera import Backoff, CameraCapture, Frame
from gateway.firelane import CameraModel, key_frame_bound
from gateway.firelane_evidence import EvidenceSettings
from simulators.firelane_scene import SceneRenderer, SceneSpec, Vehicle, lane_polygon
from tests.conftest import Broker
from tests.firelane.rtsp import RtspCamera, render_raw
from tests.firelane.test_firelane_worker import CAMPUS, Subscriber, start_worker, stop_worker, write_config

BASE = f"campus/{CAMPUS}/camera"
LANE = {"id": "north", "polygon": lane_polygon(320, 180), "dwell_s": 8, "clear_s": 3}


def write_reference(spec: SceneSpec, path: Path) -> Path:
    assert cv2.imwrite(str(path), SceneRenderer(spec).reference())
    return path


def rtsp_worker_config(tmp_path: Path, broker: Broker, cameras: list[dict[str, Any]], **extra: Any) -> Path:
    path = write_config(tmp_path, broker, cameras)
    text = path.read_text() + "health_interval_s: 1.0\nprocesses: 1\n"
    for key, value in extra.items():
        text += f"{key}: {value}\n"
    path.write_text(text)
    return path


def clear_scene(tmp_path: Path, name: str, seconds: float = 6.0, fps: float = 5.0) -> dict[str, Any]:
    return render_raw(SceneSpec(name, seed=4, fps=fps, duration_s=seconds), tmp_path / f"{name}.raw")


def _samples(capture: CameraCapture, count: int, timeout_s: float = 60.0) -> list[np.ndarray]:
    """The capture's first `count` frames; gaps (a slow first open on a loaded box) are passed."""
    items = capture.items()
    frames: list[np.ndarray] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(frames) < count:
            assert time.monotonic() < deadline, f"{len(frames)} frames in {timeout_s} s"
            item = next(items)
            if isinstance(item, Frame):
                frames.append(item.image)
    finally:
        capture.stop.set()
        items.close()
    return frames


# Four slices a frame, as many cameras code them. Key frames are also tried with the SPS/PPS
# before each slice (a packet per slice), which FFmpeg cannot decode frame after frame (it
# starts a new picture at each, and the P-frames after it inherit the damage: see
# docs/firelane.md), so every frame is decoded (`all`) from a stream sending them once.
@pytest.mark.parametrize(("decode", "per_slice"), [("auto", True), ("all", False), ("key_frames", True)])
def test_worker_reads_h264_over_rtsp_and_detects_a_stay(
    mosquitto: Broker, rtsp_cameras: list[RtspCamera], tmp_path: Path, decode: str, per_slice: bool
) -> None:
    car = Vehicle(4.0, 26.0)
    spec = SceneSpec("stay", seed=9, fps=5.0, duration_s=55.0, vehicles=(car,))
    segments = [render_raw(spec, tmp_path / "stay.raw")]
    camera = RtspCamera(tmp_path, segments, loop=False, slices=4, parameter_sets_per_slice=per_slice).start()
    rtsp_cameras.append(camera)
    reference = write_reference(spec, tmp_path / "reference.png")
    config = rtsp_worker_config(
        tmp_path,
        mosquitto,
        [
            {
                "id": "cam1",
                "source": camera.url,
                "decode": decode,
                "reference": str(reference),
                "lanes": [LANE],
            }
        ],
    )
    # Not a test of faults: a slow first open (the stream probed for seconds on a loaded box)
    # must not put the camera in a no_frames fault while the car arrives.
    config.write_text(config.read_text().replace("no_frames_s: 2.0", "no_frames_s: 20.0"))
    subscriber = Subscriber(mosquitto)
    worker = start_worker(config)
    try:
        blocked = subscriber.wait_for(f"{BASE}/cam1/event", lambda p: p["event"] == "lane_blocked", 60)
        cleared = subscriber.wait_for(f"{BASE}/cam1/event", lambda p: p["event"] == "lane_cleared", 60)
        # The stream runs at 5 fps and the worker samples at most 1 (key frames: 1 in 2 s): it
        # reads every frame, and decodes or converts few.
        health = subscriber.wait_for(
            f"{BASE}/cam1/telemetry",
            lambda p: p["values"]["stream_fps"] >= 4 and 0 < p["values"]["sampled_fps"] <= 1.5,
        )["values"]
    finally:
        stderr = stop_worker(worker)
        subscriber.close()
    assert "Traceback" not in stderr, stderr
    # The default (auto) decodes key frames only: the stream's are 2 s apart, within 4 s.
    assert health["codec"] == 264 and health["key_frames_only"] == (decode != "all"), health
    if decode != "all":
        assert health["key_frame_interval_s"] == pytest.approx(2.0, abs=0.1), health
    assert (
        blocked["attrs"]["lane"] == "north"
        and (tmp_path / "snapshots" / blocked["attrs"]["snapshot"]).is_file()
    )
    # On time in scene time (0 when the stream started): one sample in 2 s is enough for that.
    started = camera.streaming_since(before=blocked["ts"])
    # Plus up to 10 s for the worker's first RTSP open (CI saw 26 s to blocked, against 22).
    assert blocked["ts"] - started <= car.arrive_s + LANE["dwell_s"] + 20, (blocked, started)
    assert cleared["seq"] > blocked["seq"]
    assert car.leave_s < cleared["ts"] - started <= car.leave_s + LANE["clear_s"] + 20, (cleared, started)


def test_a_key_frame_sent_as_a_packet_per_slice_is_decoded_whole(
    rtsp_cameras: list[RtspCamera], tmp_path: Path
) -> None:
    # With the SPS/PPS before each slice of a key frame (GStreamer's RTP payloader, some
    # cameras), FFmpeg reads each slice as a packet of its own. Decoded from the first packet
    # alone, the frame's lower part was smeared from its first slice: in key-frame mode a car
    # that had left still "stood" there, and the lane was never cleared.
    spec = SceneSpec("clear", seed=4, fps=5.0, duration_s=6.0)
    segments = [render_raw(spec, tmp_path / "clear.raw")]
    camera = RtspCamera(tmp_path, segments, slices=4, parameter_sets_per_slice=True).start()
    rtsp_cameras.append(camera)
    reference = SceneRenderer(spec).reference().astype(np.int16)
    capture = CameraCapture(camera.url, 1.0, threading.Event(), decode="key_frames", timeout_s=5.0)
    frames = _samples(capture, 3)
    lowest = slice(3 * spec.height // 4, None)  # the last slice of the frame
    errors = [float(np.abs(image[lowest].astype(np.int16) - reference[lowest]).mean()) for image in frames]
    assert max(errors) < 8.0, errors  # a whole frame: about 4; smeared: about 25
    assert capture.stats.key_frames_only and capture.stats.frames_grabbed > 3 * capture.stats.frames_sampled


def test_auto_decodes_every_frame_when_key_frames_are_too_far_apart(
    rtsp_cameras: list[RtspCamera], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    camera = RtspCamera(tmp_path, [clear_scene(tmp_path, "clear")], key_int=10).start()  # 2 s GOP
    rtsp_cameras.append(camera)
    stop = threading.Event()
    capture = CameraCapture(camera.url, 1.0, stop, decode="auto", max_key_frame_interval_s=1.5, timeout_s=5.0)
    with caplog.at_level(logging.WARNING, logger="drivers.camera"):
        _samples(capture, 6)  # samples keep coming, now from every frame decoded
    assert not capture.stats.key_frames_only and capture.stats.codec == "h264"
    # 2 s, or less where the encoder put a key frame at the scene's loop (a scene cut).
    interval_s = capture.stats.key_frame_interval_s or 0.0
    assert 1.5 < interval_s <= 2.1
    assert (
        f"key frames {interval_s:.1f} s apart, more than key_frame_max_interval_s (1.5 s): "
        "decoding every frame instead of key frames only (decode: auto)"
    ) in caplog.text


def test_auto_decodes_every_frame_where_key_frames_are_too_sparse_for_evidence_clips(
    rtsp_cameras: list[RtspCamera], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A clip needs evidence.min_fps (1) frames a second; key frames 2 s apart give half that."""
    camera = RtspCamera(tmp_path, [clear_scene(tmp_path, "clear")], key_int=10).start()  # 2 s GOP
    rtsp_cameras.append(camera)
    model = CameraModel.model_validate({"id": "cam1", "source": camera.url, "lanes": [LANE]})
    assert key_frame_bound(model, None) == (4.0, "key_frame_max_interval_s")  # the lane alone: fine
    bound_s, name = key_frame_bound(model, EvidenceSettings(dir=tmp_path / "evidence"))
    capture = CameraCapture(
        camera.url,
        1.0,
        threading.Event(),
        decode="auto",
        max_key_frame_interval_s=bound_s,
        key_frame_bound_name=name,
        timeout_s=5.0,
    )
    with caplog.at_level(logging.WARNING, logger="drivers.camera"):
        _samples(capture, 6)
    assert not capture.stats.key_frames_only
    assert "more than 1 / evidence.min_fps (1 s): decoding every frame" in caplog.text


def test_auto_decodes_key_frames_only_of_an_h265_stream(
    rtsp_cameras: list[RtspCamera], tmp_path: Path
) -> None:
    spec = SceneSpec("clear", seed=4, fps=5.0, duration_s=6.0)
    camera = RtspCamera(tmp_path, [render_raw(spec, tmp_path / "clear.raw")], codec="h265").start()
    rtsp_cameras.append(camera)
    reference = SceneRenderer(spec).reference().astype(np.int16)
    capture = CameraCapture(camera.url, 1.0, threading.Event(), decode="auto", timeout_s=5.0)
    frames = _samples(capture, 3)
    assert capture.stats.codec == "hevc" and capture.stats.key_frames_only
    assert 0.5 < (capture.stats.key_frame_interval_s or 0) <= 2.1
    errors = [float(np.abs(image.astype(np.int16) - reference).mean()) for image in frames]
    assert max(errors) < 8.0, errors


def test_camera_fault_when_the_server_stops_and_back_with_backoff_when_it_returns(
    mosquitto: Broker, rtsp_cameras: list[RtspCamera], tmp_path: Path
) -> None:
    camera = RtspCamera(tmp_path, [clear_scene(tmp_path, "clear")]).start()
    rtsp_cameras.append(camera)
    config = rtsp_worker_config(tmp_path, mosquitto, [{"id": "cam1", "source": camera.url, "lanes": [LANE]}])
    subscriber = Subscriber(mosquitto)
    worker = start_worker(config)
    try:
        subscriber.wait_for(f"{BASE}/cam1/telemetry", lambda p: p["values"]["sampled_fps"] > 0, 60)
        camera.stop()
        fault = subscriber.wait_for(f"{BASE}/cam1/event", lambda p: p["event"] == "camera_fault", 30)
        # Down long enough for a few failed reconnects (1, 2, 4 s apart), then back on its port.
        subscriber.wait_for(f"{BASE}/cam1/telemetry", lambda p: p["values"]["reconnects"] >= 2, 30)
        camera.start()
        ok = subscriber.wait_for(f"{BASE}/cam1/event", lambda p: p["event"] == "camera_ok", 60)
        after = subscriber.wait_for(
            f"{BASE}/cam1/telemetry", lambda p: p["ts"] > ok["ts"] and p["values"]["sampled_fps"] > 0, 30
        )
        assert worker.poll() is None, "the worker died"
    finally:
        stderr = stop_worker(worker)
        subscriber.close()
    assert "Traceback" not in stderr, stderr
    assert fault["attrs"]["reason"] == "no_frames"
    assert ok["seq"] > fault["seq"]
    assert after["values"]["reconnects"] >= 2 and after["values"]["decode_errors"] >= 1
    assert "reconnecting in 1 s" in stderr and "reconnecting in 2 s" in stderr  # doubling backoff


def test_worker_survives_a_resolution_change_and_a_stall_mid_gop(
    mosquitto: Broker, rtsp_cameras: list[RtspCamera], tmp_path: Path
) -> None:
    full = clear_scene(tmp_path, "full", seconds=4.4)  # 22 frames: the stall starts 2 frames into a GOP
    small = render_raw(SceneSpec("small", seed=4, fps=5.0, duration_s=4.0), tmp_path / "small.raw", (160, 90))
    camera = RtspCamera(tmp_path, [full, {"stall_s": 5.0}, small], key_int=10).start()
    rtsp_cameras.append(camera)
    config = rtsp_worker_config(tmp_path, mosquitto, [{"id": "cam1", "source": camera.url, "lanes": [LANE]}])
    subscriber = Subscriber(mosquitto)
    worker = start_worker(config)
    try:
        fault = subscriber.wait_for(f"{BASE}/cam1/event", lambda p: p["event"] == "camera_fault", 60)
        ok = subscriber.wait_for(f"{BASE}/cam1/event", lambda p: p["event"] == "camera_ok", 60)
        # Frames keep coming through the next cycles of stall and resolution change.
        subscriber.wait_for(
            f"{BASE}/cam1/telemetry", lambda p: p["ts"] > ok["ts"] + 12 and p["values"]["sampled_fps"] > 0, 60
        )
        assert worker.poll() is None, "the worker died"
    finally:
        stderr = stop_worker(worker)
        subscriber.close()
    assert "Traceback" not in stderr, stderr
    assert fault["attrs"]["reason"] in {"no_frames", "wrong_size"}


def _threads_and_fds() -> tuple[int, int]:
    return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def test_fifty_reconnects_leak_no_thread_or_socket(rtsp_cameras: list[RtspCamera], tmp_path: Path) -> None:
    # Each session is a short stream that ends, so the capture reconnects after every one.
    camera = RtspCamera(tmp_path, [clear_scene(tmp_path, "short", seconds=0.6, fps=10.0)], loop=False)
    rtsp_cameras.append(camera.start())
    stop = threading.Event()
    capture = CameraCapture(camera.url, 50.0, stop, backoff=Backoff(0.01, 0.02), timeout_s=5.0)
    items = capture.items()
    frames = 0

    def reconnects_reached(target: int) -> bool:
        nonlocal frames
        while capture.stats.reconnects < target:
            frames += isinstance(next(items), Frame)
        return True

    reconnects_reached(3)  # OpenCV's and FFmpeg's own threads and sockets exist from here on
    threads_before, fds_before = _threads_and_fds()
    reconnects_reached(53)
    # Measured between sessions: the capture released at the end of the last one.
    threads_after, fds_after = _threads_and_fds()
    stop.set()
    items.close()
    assert capture.stats.reconnects >= 53 and frames >= 50
    assert threads_after <= threads_before + 1, (threads_before, threads_after)
    assert fds_after <= fds_before + 2, (fds_before, fds_after)


def test_a_camera_reconnecting_at_a_new_size_is_a_wrong_size_fault_not_a_crash(
    mosquitto: Broker, rtsp_cameras: list[RtspCamera], tmp_path: Path
) -> None:
    spec = SceneSpec("small", seed=4, fps=5.0, duration_s=4.0)
    camera = RtspCamera(tmp_path, [render_raw(spec, tmp_path / "small.raw", (160, 90))]).start()
    rtsp_cameras.append(camera)
    reference = write_reference(SceneSpec("full", seed=4), tmp_path / "reference.png")  # 320x180
    config = rtsp_worker_config(
        tmp_path,
        mosquitto,
        [{"id": "cam1", "source": camera.url, "reference": str(reference), "lanes": [LANE]}],
    )
    # Long enough that the stream's first frames come before a no_frames fault could.
    config.write_text(config.read_text().replace("no_frames_s: 2.0", "no_frames_s: 20.0"))
    subscriber = Subscriber(mosquitto)
    worker = start_worker(config)
    try:
        fault = subscriber.wait_for(f"{BASE}/cam1/event", lambda p: p["event"] == "camera_fault", 60)
        subscriber.wait_for(f"{BASE}/cam1/telemetry", lambda p: p["ts"] > fault["ts"] + 3)
        assert worker.poll() is None, "the worker died"
    finally:
        stderr = stop_worker(worker)
        subscriber.close()
    assert "Traceback" not in stderr, stderr
    assert fault["attrs"]["reason"] == "wrong_size"
