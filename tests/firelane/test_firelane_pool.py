"""The worker pool: cameras spread over processes, a killed child restarted, health to the gateway."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from gateway.firelane import CameraModel, shard_cameras
from tests.conftest import Broker
from tests.firelane.rtsp import RtspCamera, wait_until
from tests.firelane.test_firelane_rtsp import BASE, LANE, clear_scene, rtsp_worker_config
from tests.firelane.test_firelane_worker import Subscriber, start_worker, stop_worker
from tests.harness import gateway_config, running_gateway


def test_cameras_are_dealt_over_the_processes_and_no_process_is_idle() -> None:
    cameras = [CameraModel(id=f"cam{n}", source="rtsp://h/s", lanes=[LANE]) for n in range(5)]  # type: ignore[list-item]
    assert [[c.id for c in group] for group in shard_cameras(cameras, 2)] == [
        ["cam0", "cam2", "cam4"],
        ["cam1", "cam3"],
    ]
    assert len(shard_cameras(cameras, 8)) == 5


def _children(pid: int) -> dict[str, int]:
    """The pool's children by their --shard argument."""
    found = {}
    for child in psutil.Process(pid).children():
        try:
            cmdline = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "--shard" in cmdline:
            found[cmdline[cmdline.index("--shard") + 1]] = child.pid
    return found


def test_a_killed_worker_process_is_restarted_and_its_camera_works_again(
    mosquitto: Broker, rtsp_cameras: list[RtspCamera], tmp_path: Path
) -> None:
    camera = RtspCamera(tmp_path, [clear_scene(tmp_path, "clear")]).start()
    rtsp_cameras.append(camera)
    cameras = [{"id": name, "source": camera.url, "lanes": [LANE]} for name in ("cam1", "cam2")]
    config = rtsp_worker_config(tmp_path, mosquitto, cameras)
    config.write_text(config.read_text().replace("processes: 1", "processes: 2"))
    subscriber = Subscriber(mosquitto)
    worker = start_worker(config)
    try:
        children = wait_until(lambda: len(found := _children(worker.pid)) == 2 and found, 30, "two children")
        for name in ("cam1", "cam2"):
            subscriber.wait_for(f"{BASE}/{name}/telemetry", lambda p: p["values"]["sampled_fps"] > 0, 60)
        os.kill(children["0/2"], signal.SIGKILL)  # the child running cam1
        killed_at = time.time()
        # The broker sends the dead child's last will; the parent starts a new one.
        subscriber.wait_for(f"{BASE}/cam1/status", lambda p: p["state"] == "offline", 30)
        again = wait_until(
            lambda: (pid := _children(worker.pid).get("0/2")) not in (None, children["0/2"]) and pid,
            30,
            "a new child for cam1",
        )
        subscriber.wait_for(
            f"{BASE}/cam1/telemetry", lambda p: p["ts"] > killed_at and p["values"]["sampled_fps"] > 0, 60
        )
        assert _children(worker.pid)["1/2"] == children["1/2"], "the other child was disturbed"
        assert again != children["0/2"]
    finally:
        stderr = stop_worker(worker)
        subscriber.close()
    assert "fire-lane worker 1/2 exited with status -9; restarting in 1 s" in stderr
    assert not psutil.pid_exists(again) or psutil.Process(again).status() == psutil.STATUS_ZOMBIE


async def test_camera_health_reaches_api_health_and_metrics(
    mosquitto: Broker, rtsp_cameras: list[RtspCamera], tmp_path: Path
) -> None:
    camera = RtspCamera(tmp_path, [clear_scene(tmp_path, "clear")]).start()
    rtsp_cameras.append(camera)
    worker_yaml = rtsp_worker_config(
        tmp_path, mosquitto, [{"id": "cam1", "source": camera.url, "lanes": [LANE]}]
    )
    worker_yaml.write_text(worker_yaml.read_text().replace("campus_id: c1", "campus_id: test"))
    device = DeviceSpec(id="cam1", kind=DeviceKind.CAMERA, building="东门", zone="消防通道")
    config = gateway_config(mosquitto, tmp_path / "gw.db", [device])
    config.firelane_worker = worker_yaml
    async with running_gateway(config) as gw:
        deadline = time.monotonic() + 60
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            health = (await gw.get("/api/v1/health/cameras", role="bureau")).get("cam1", {})
            # Online once frames flow (after a first no_frames fault if the open was slow).
            if (
                health.get("online")
                and health.get("stream_fps", 0) > 0
                and "last_frame_age_s" in health
                and "key_frame_interval_s" in health
            ):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"no camera health in /api/v1/health/cameras: {health}")
        assert health["last_frame_age_s"] < 5 and health["last_seen_age_s"] < 5
        # A slow first open on a loaded box counts one read failure and one reconnect (CI saw
        # it): the counts are what the worker reported, whatever they are.
        assert health["decode_errors"] >= 0 and health["reconnects"] >= 0
        # The open health counts the cameras and names none (SPEC 9: it is open to anyone).
        opened = (await gw.http.get("/api/v1/health")).json()["cameras"]
        assert opened == {"total": 1, "ok": 1, "faulted": 0}
        assert "cam1" not in (await gw.http.get("/api/v1/health")).text
        assert (await gw.http.get("/api/v1/health/cameras")).status_code == 401
        # The default decode (auto) on this H.264 stream, key frames 2 s apart: key frames only.
        assert health["codec"] == "h264" and health["key_frames_only"] == 1, health
        assert health["key_frame_interval_s"] == pytest.approx(2.0, abs=0.1), health
        metrics = (await gw.http.get("/metrics", headers=gw.headers())).text
    assert 'campus_gateway_camera_stream_fps{camera="cam1",campus="test"}' in metrics
    assert re.search(r'campus_gateway_camera_reconnects_total\{camera="cam1",campus="test"\} \d+\.0', metrics)
    assert 'campus_gateway_camera_last_frame_age_seconds{camera="cam1",campus="test"}' in metrics
    assert 'campus_gateway_camera_codec{camera="cam1",campus="test"} 264.0' in metrics
    assert 'campus_gateway_camera_key_frames_only{camera="cam1",campus="test"} 1.0' in metrics
    assert 'campus_gateway_camera_key_frame_interval_seconds{camera="cam1",campus="test"}' in metrics
