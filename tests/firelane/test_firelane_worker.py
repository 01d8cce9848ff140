"""The video worker as its own process, publishing to a real mosquitto like any device."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

from gateway.firelane import ConfigError, load_worker_config
from simulators.firelane_scene import SceneSpec, Vehicle, lane_polygon, write_scene
from tests.conftest import Broker, stop_process

REPO = Path(__file__).resolve().parents[2]
CAMPUS = "c1"


class Subscriber:
    """Collects every (topic, payload) from `campus/c1/camera/#`, in arrival order."""

    def __init__(self, broker: Broker) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-sub")
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"campus/{CAMPUS}/camera/#", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK from mosquitto"

    def _on_message(self, client: Client, userdata: object, message: MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload)))

    def wait_for(
        self, topic: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """The first message on `topic` satisfying `predicate`, waiting for it if need be."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for got_topic, payload in self.messages:
                    if got_topic == topic and predicate(payload):
                        return payload
            time.sleep(0.1)
        raise AssertionError(f"nothing matching on {topic} within {timeout_s} s: {self.messages}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def write_config(tmp_path: Path, broker: Broker, cameras: list[dict[str, Any]]) -> Path:
    config = {
        "campus_id": CAMPUS,
        "broker": {"host": broker.host, "port": broker.port},
        "snapshot_dir": str(tmp_path / "snapshots"),
        "no_frames_s": 2.0,
        "fault_hold_s": 2.0,
        "cameras": cameras,
    }
    path = tmp_path / "firelane.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_worker(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.firelane", "firelane", "worker", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop_worker(worker: subprocess.Popen[bytes]) -> str:
    """Stop a worker from `start_worker`; returns what it wrote to stderr."""
    stop_process(worker)
    return worker.stderr.read().decode() if worker.stderr else ""


def test_worker_publishes_blocked_then_cleared_with_a_snapshot_and_survives_bad_cameras(
    mosquitto: Broker, tmp_path: Path
) -> None:
    spec = SceneSpec("gate", seed=9, duration_s=70.0, vehicles=(Vehicle(10.0, 40.0),))
    video, _, reference = write_scene(spec, tmp_path / "scene")
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF" + bytes(4000))
    lane = {"id": "north", "polygon": lane_polygon(320, 180), "dwell_s": 20, "clear_s": 5}
    outside = {"id": "south", "polygon": [[10, 10], [400, 10], [400, 170]], "dwell_s": 20}
    config = write_config(
        tmp_path,
        mosquitto,
        [
            {"id": "cam1", "source": str(video), "reference": str(reference), "lanes": [lane]},
            {"id": "cam2", "source": str(corrupt), "lanes": [lane]},
            {"id": "cam3", "source": str(video), "reference": str(reference), "lanes": [outside]},
        ],
    )
    subscriber = Subscriber(mosquitto)
    worker = start_worker(config)
    try:
        base = f"campus/{CAMPUS}/camera"
        subscriber.wait_for(f"{base}/cam1/status", lambda p: p["state"] == "online")
        blocked = subscriber.wait_for(f"{base}/cam1/event", lambda p: p["event"] == "lane_blocked")
        cleared = subscriber.wait_for(f"{base}/cam1/event", lambda p: p["event"] == "lane_cleared")
        fault = subscriber.wait_for(f"{base}/cam2/event", lambda p: p["event"] == "camera_fault")
        bad_lane = subscriber.wait_for(f"{base}/cam3/event", lambda p: p["event"] == "camera_fault")
        assert worker.poll() is None, "the worker died"
    finally:
        stderr = stop_worker(worker)
    offline = subscriber.wait_for(f"{base}/cam1/status", lambda p: p["state"] == "offline")
    subscriber.close()

    assert "Traceback" not in stderr, stderr
    assert blocked["attrs"]["lane"] == "north"
    assert 0.2 < blocked["attrs"]["occupancy"] <= 1.0
    snapshot = tmp_path / "snapshots" / blocked["attrs"]["snapshot"]
    assert snapshot.is_file() and snapshot.read_bytes()[:2] == b"\xff\xd8"
    assert "/" not in blocked["attrs"]["snapshot"]
    assert cleared["seq"] > blocked["seq"]
    assert cleared["ts"] - blocked["ts"] == pytest.approx((40 + 1.5 + 5) - (10 - 1.5 + 20), abs=4.0)
    assert fault["attrs"]["reason"] == "no_frames"
    assert bad_lane["attrs"]["reason"] == "bad_lane"
    assert "outside the 320x180 frame" in bad_lane["attrs"]["detail"]
    assert offline["state"] == "offline"


def test_invalid_worker_config_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "campus_id": CAMPUS,
                "snapshot_dir": "snaps",
                "cameras": [
                    {"id": "cam1", "source": "rtsp://x/y", "lanes": [{"id": "a", "polygon": [[0, 0]]}]}
                ],
            }
        )
    )
    with pytest.raises(ConfigError) as error:
        load_worker_config(path)
    assert f"{path}: cameras.0.lanes.0.polygon" in str(error.value)
    result = subprocess.run(
        [sys.executable, "-m", "gateway.firelane", "firelane", "worker", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cameras.0.lanes.0.polygon" in result.stderr


def test_worker_config_takes_a_reference_per_regime_and_names_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "day.png").write_bytes(b"png")
    camera = {
        "id": "cam1",
        "source": "rtsp://x/y",
        "lanes": [{"id": "a", "polygon": [[0, 0], [9, 0], [9, 9]]}],
    }
    config = {
        "campus_id": CAMPUS,
        "snapshot_dir": "snaps",
        "cameras": [{**camera, "references": ["day.png"]}],
    }
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(config))
    assert load_worker_config(path).cameras[0].references == [tmp_path / "day.png"]
    config["cameras"] = [{**camera, "reference": "day.png", "references": ["ir.png"]}]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"cameras\.0\.references\.0: no such file"):
        load_worker_config(path)


def test_an_old_occupied_threshold_is_accepted_with_a_warning_naming_what_replaced_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lane = {"id": "a", "polygon": [[0, 0], [9, 0], [9, 9]], "occupied_threshold": 0.12}
    config = {
        "campus_id": CAMPUS,
        "snapshot_dir": "snaps",
        "cameras": [{"id": "cam1", "source": "rtsp://x/y", "lanes": [lane]}],
    }
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(config))
    with caplog.at_level("WARNING", logger="gateway.firelane"):
        loaded = load_worker_config(path)
    assert loaded.cameras[0].lanes[0].blocked_width_frac == 0.15
    assert f"{path}: cameras.0.lanes.0.occupied_threshold (0.12) is no longer used" in caplog.text
    assert "blocked_width_frac" in caplog.text
