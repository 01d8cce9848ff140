"""A panic press in a camera's zone: the police webhook links the snapshot at once, the alert links
a clip of the 30 s before and the 10 s after, and a camera that is down is said to be down.

Real mosquitto, the real gateway (which runs the real worker), a video from the scene simulator
played in real time, and a real HTTP receiver for the webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
import yaml
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from gateway.config import GatewayConfig
from gateway.evidence import MAX_CLIPS_PER_ALERT, EvidenceConfig
from gateway.notify import ChannelConfig, NotifyConfig
from simulators.firelane_scene import SceneSpec, lane_polygon, write_scene
from tests.conftest import Broker
from tests.firelane.rtsp import RtspCamera, render_raw
from tests.firelane.test_firelane_worker import write_config
from tests.harness import RunningGateway, gateway_config, running_gateway
from tests.notify.receiver import Receiver, http_receiver

LINK_SECRET = "evidence-link-secret-for-tests"
BEFORE_S, AFTER_S = 30.0, 10.0


def evidence_gateway(
    tmp_path: Path,
    broker: Broker,
    source: str,
    police_url: str,
    worker_camera: str = "cam1",
    before_s: float = BEFORE_S,
    after_s: float = AFTER_S,
) -> GatewayConfig:
    """A campus with one camera (cam1) covering the guard room, where the panic button is; the
    worker runs `worker_camera`."""
    lane = {"id": "north", "polygon": lane_polygon(320, 180), "dwell_s": 600}
    worker_yaml = write_config(tmp_path, broker, [{"id": worker_camera, "source": source, "lanes": [lane]}])
    worker = yaml.safe_load(worker_yaml.read_text())
    worker.update(
        campus_id="test",
        pace_files=True,
        evidence={"dir": str(tmp_path / "evidence"), "before_s": before_s, "after_s": after_s},
    )
    worker_yaml.write_text(yaml.safe_dump(worker))
    devices = [
        DeviceSpec(
            id="cam1", kind=DeviceKind.CAMERA, building="东门", zone="消防通道", covers_zones=["门卫室"]
        ),
        DeviceSpec(id="cam2", kind=DeviceKind.CAMERA, building="西门", zone="消防通道"),
        DeviceSpec(id="p1", kind=DeviceKind.PANIC, building="东门", zone="门卫室"),
    ]
    config = gateway_config(broker, tmp_path / "gw.db", devices)
    config.firelane_worker = worker_yaml
    config.evidence = EvidenceConfig(link_secret=LINK_SECRET, answer_timeout_s=1.0)
    config.notify = NotifyConfig(
        channels=[ChannelConfig(name="police", url=police_url, outside=True)], police=["police"]
    )
    return config


def press(broker: Broker, device_id: str = "p1") -> float:
    """Press the panic button as the device would; returns when it was pressed (monotonic)."""
    client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"panic-{device_id}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    pressed = time.monotonic()
    payload = {"ts": time.time(), "event": "pressed", "attrs": {"button": 1}}
    client.publish(f"campus/test/panic/{device_id}/event", json.dumps(payload), qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    return pressed


async def police_message(
    receiver: Receiver, timeout_s: float = 10.0, number: int = 1
) -> tuple[float, dict[str, Any]]:
    """The `number`th message the police received (arrival on the monotonic clock, body)."""
    request = (await asyncio.to_thread(receiver.wait_for, number, timeout_s))[number - 1]
    return request.at, json.loads(request.body)


async def wait_for_state(
    gw: RunningGateway, evidence_id: str, state: str, timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, Any] = await gw.get(f"/api/v1/evidence/{evidence_id}")
        if status["state"] == state or time.monotonic() > deadline:
            assert status["state"] == state, status
            return status
        await asyncio.sleep(0.2)


def clip_frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def camera_source(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A video file played in real time, or H.264 from a real RTSP server, as cameras send it."""
    if kind == "file":
        video, _, _ = write_scene(SceneSpec("gate", seed=4, duration_s=120.0), tmp_path / "scene")
        return str(video)
    cameras: list[RtspCamera] = request.getfixturevalue("rtsp_cameras")
    spec = SceneSpec("gate", seed=4, fps=2.0, duration_s=60.0)
    camera = RtspCamera(tmp_path, [render_raw(spec, tmp_path / "gate.raw")], loop=True).start()
    cameras.append(camera)
    return camera.url


@pytest.mark.parametrize("source", ["file", "rtsp"])
async def test_a_panic_press_links_the_30_s_before_and_the_10_s_after(
    mosquitto: Broker, tmp_path: Path, source: str, request: pytest.FixtureRequest
) -> None:
    with http_receiver() as police:
        config = evidence_gateway(tmp_path, mosquitto, camera_source(source, tmp_path, request), police.url)
        async with running_gateway(config) as gw:
            await gw.wait_for(lambda: gw.is_online("cam1") is True, 30, "camera online")
            # "online" comes when the worker connects; its first frames a few seconds later.
            await asyncio.sleep(BEFORE_S + 12)  # the ring fills with the 30 s before the press
            pressed_at = time.time()
            pressed = await asyncio.to_thread(press, mosquitto)

            received_at, message = await police_message(police)
            assert received_at - pressed < 2.0, f"police told {received_at - pressed:.2f} s after the press"
            (video_link,) = message["evidence"]
            assert video_link["available"] is True and video_link["camera"] == "cam1"
            assert "现场画面" in message["text"]
            async with httpx.AsyncClient(timeout=10) as outside:  # the police hold no token
                snapshot = await outside.get(video_link["snapshot_url"])
                if snapshot.status_code == 404:  # written within moments of the request
                    await asyncio.sleep(0.5)
                    snapshot = await outside.get(video_link["snapshot_url"])
                assert snapshot.status_code == 200 and snapshot.content[:2] == b"\xff\xd8", snapshot.text
                for forged in ("sig=0", "sig=%E6%97%A0"):  # a wrong one, a non-ASCII one
                    url = video_link["snapshot_url"].replace("sig=", forged)
                    assert (await outside.get(url)).status_code == 401

            alert = await gw.wait_for_alert("panic_pressed", device_id="p1")
            (entry,) = alert["details"]["evidence"]
            assert entry["camera"] == "cam1" and entry["clip"] == f"/api/v1/evidence/{entry['id']}/clip.avi"
            status = await wait_for_state(gw, entry["id"], "ready", timeout_s=AFTER_S + 10)
            frames = (status["first_frame_ts"], status["last_frame_ts"])
            assert frames[0] == pytest.approx(pressed_at - BEFORE_S, abs=2.0)
            assert frames[1] == pytest.approx(pressed_at + AFTER_S, abs=2.0)
            assert BEFORE_S + AFTER_S - 2 <= status["frames"] <= BEFORE_S + AFTER_S + 1

            clip = await gw.http.get(entry["clip"], headers=gw.headers())
            assert clip.status_code == 200 and clip.headers["content-type"] == "video/x-msvideo"
            (tmp_path / "downloaded.avi").write_bytes(clip.content)
            assert clip_frame_count(tmp_path / "downloaded.avi") == status["frames"]

            # The clip's frames for the console's player, under the snapshot's rules.
            listed = await gw.get(entry["frames"])
            assert (listed["frames"][0]["ts"], listed["frames"][-1]["ts"]) == frames
            assert len(listed["frames"]) == status["frames"]
            assert listed["frames"][0]["offset_s"] == pytest.approx(-BEFORE_S, abs=2.0)
            assert listed["frames"][-1]["offset_s"] == pytest.approx(AFTER_S, abs=2.0)
            first = listed["frames"][0]["url"]
            assert first == f"/api/v1/evidence/{entry['id']}/frames/0.jpg"
            one = await gw.http.get(first, headers=gw.headers())
            assert one.status_code == 200 and one.headers["content-type"] == "image/jpeg"
            assert one.content[:2] == b"\xff\xd8"
            signed = video_link["snapshot_url"].split("?", 1)[1]
            async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as outside:
                assert (await outside.get(f"{entry['frames']}?{signed}")).status_code == 200
                assert (await outside.get(f"{first}?{signed}")).status_code == 200
                assert (await outside.get(f"{first}?{signed.replace('sig=', 'sig=0')}")).status_code == 401
                assert (await outside.get(first)).status_code == 401
            assert (await gw.http.get(first, headers=gw.headers("bureau"))).status_code == 403
            last = len(listed["frames"])
            assert (
                await gw.http.get(f"/api/v1/evidence/{entry['id']}/frames/{last}.jpg", headers=gw.headers())
            ).status_code == 404
            assert (
                await gw.http.get(f"/api/v1/evidence/{entry['id']}/frames/-1.jpg", headers=gw.headers())
            ).status_code in (404, 422)

            by_link = await gw.http.get(f"{entry['clip']}?token=op-token")  # a <video> element
            assert by_link.status_code == 200
            assert (await gw.http.get(entry["clip"], headers=gw.headers("bureau"))).status_code == 403
            assert (await gw.http.get(entry["clip"])).status_code == 401
            for path in (
                f"/api/v1/evidence/{entry['id']}/evidence.json",
                f"/api/v1/evidence/{entry['id']}/..%2F..%2Fgw.db",
                "/api/v1/evidence/..%2Fgw.db/clip.avi",
            ):
                answer = await gw.http.get(path, headers=gw.headers())
                assert answer.status_code in (404, 422), (path, answer.status_code)


async def test_a_camera_that_is_down_is_said_to_be_down(mosquitto: Broker, tmp_path: Path) -> None:
    with http_receiver() as police:
        config = evidence_gateway(tmp_path, mosquitto, str(tmp_path / "no-such-video.avi"), police.url)
        async with running_gateway(config) as gw:
            # The worker reports camera_fault after its 2 s without frames.
            await gw.wait_for_alert("device_fault", device_id="cam1", timeout_s=30)
            await asyncio.to_thread(press, mosquitto)
            _, message = await police_message(police)
            assert "视频不可用：摄像机故障" in message["text"]
            (video_link,) = message["evidence"]
            assert video_link == {
                "camera": "cam1",
                "available": False,
                "reason": "camera_fault",
                "text": "视频不可用：摄像机故障（cam1）",
            }
            alert = await gw.wait_for_alert("panic_pressed", device_id="p1")
            assert alert["details"]["evidence"][0]["available"] is False


async def test_a_camera_whose_worker_never_answers_is_told_as_unavailable_after_the_links(
    mosquitto: Broker, tmp_path: Path
) -> None:
    """The gateway believes cam1 is up (its status says online), but no worker runs it: the first
    message carries the links at once, and a second one says the video is unavailable."""
    with http_receiver() as police:
        async with gateway_without_cam1_worker(tmp_path, mosquitto, police) as gw:
            await asyncio.to_thread(press, mosquitto)
            _, first = await police_message(police)
            assert first["evidence"][0]["available"] is True and first["reason"] == "police"
            _, second = await police_message(police, number=2)
            assert second["reason"] == "evidence_unavailable"
            assert second["alert"]["id"] == first["alert"]["id"]
            assert "视频不可用：视频服务未响应（cam1）" in second["text"]
            entry = (await gw.wait_for_alert("panic_pressed"))["details"]["evidence"][0]
            answer = await gw.get(f"/api/v1/evidence/{entry['id']}")
            assert (answer["state"], answer["reason"]) == ("unavailable", "no_answer")
            assert answer["text"]["en"] == "Video unavailable: the video worker did not answer"
            # The alert itself says so too (stored, streamed, shown), not only the follow-up.
            found = await gw.get(f"/api/v1/alerts/{first['alert']['id']}")
            (told,) = found["alert"]["details"]["evidence"]
            assert (told["id"], told["available"], told["reason"]) == (entry["id"], False, "no_answer")
            assert "evidence_unavailable" in [step["action"] for step in found["audit"]]


@contextlib.asynccontextmanager
async def gateway_without_cam1_worker(
    tmp_path: Path, mosquitto: Broker, police: Receiver
) -> AsyncIterator[RunningGateway]:
    """A gateway that believes cam1 is up (its status says online) while no worker runs it."""
    config = evidence_gateway(
        tmp_path, mosquitto, str(tmp_path / "no-such-video.avi"), police.url, worker_camera="cam2"
    )
    async with running_gateway(config) as gw:
        await asyncio.to_thread(published_online, mosquitto, "cam1")
        await gw.wait_for(lambda: gw.is_online("cam1") is True, 10, "cam1 online")
        yield gw


def published_online(broker: Broker, camera_id: str) -> None:
    """Say `camera_id` is online, as its worker would, without running one."""
    status = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"{camera_id}-status")
    status.connect(broker.host, broker.port)
    status.loop_start()
    online = json.dumps({"ts": time.time(), "state": "online"})
    status.publish(f"campus/test/camera/{camera_id}/status", online, qos=1).wait_for_publish(5)
    status.loop_stop()
    status.disconnect()


async def test_each_repeat_press_asks_for_its_own_clip_up_to_five(mosquitto: Broker, tmp_path: Path) -> None:
    """Pressed again while the alert is open: a new clip is asked for and listed after the first,
    up to MAX_CLIPS_PER_ALERT per camera."""
    requests: list[dict[str, Any]] = []
    listener = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="cam1-requests")
    listener.on_message = lambda client, userdata, message: requests.append(json.loads(message.payload))
    listener.connect(mosquitto.host, mosquitto.port)
    listener.subscribe("campus/test/local/evidence/cam1", qos=1)
    listener.loop_start()
    try:
        with http_receiver() as police:
            async with gateway_without_cam1_worker(tmp_path, mosquitto, police) as gw:
                for presses in range(1, MAX_CLIPS_PER_ALERT + 3):
                    await asyncio.to_thread(press, mosquitto)
                    await gw.wait_for_alert("panic_pressed", min_count=presses)
                alert = await gw.wait_for_alert("panic_pressed", min_count=MAX_CLIPS_PER_ALERT + 2)
                entries = alert["details"]["evidence"]
                assert [e["camera"] for e in entries] == ["cam1"] * MAX_CLIPS_PER_ALERT
                assert len({e["id"] for e in entries}) == MAX_CLIPS_PER_ALERT
                assert [e["requested_at"] for e in entries] == sorted(e["requested_at"] for e in entries)
                await gw.wait_for(lambda: len(requests) >= MAX_CLIPS_PER_ALERT, 10, "the requests")
                await asyncio.sleep(0.5)
                assert [r["id"] for r in requests] == [e["id"] for e in entries]
    finally:
        listener.loop_stop()
        listener.disconnect()
