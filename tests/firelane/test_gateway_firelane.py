"""The gateway runs the fire-lane worker itself; a blocked lane becomes an alert with its snapshot."""

from __future__ import annotations

from pathlib import Path

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from simulators.firelane_scene import SceneSpec, Vehicle, lane_polygon, write_scene
from tests.conftest import Broker
from tests.firelane.test_firelane_worker import write_config
from tests.harness import gateway_config, running_gateway


async def test_gateway_supervises_the_worker_and_links_the_snapshot(
    mosquitto: Broker, tmp_path: Path
) -> None:
    spec = SceneSpec("gate", seed=9, duration_s=70.0, vehicles=(Vehicle(10.0, 40.0),))
    video, _, reference = write_scene(spec, tmp_path / "scene")
    lane = {"id": "north", "polygon": lane_polygon(320, 180), "dwell_s": 20, "clear_s": 5}
    worker_yaml = write_config(
        tmp_path,
        mosquitto,
        [{"id": "cam1", "source": str(video), "reference": str(reference), "lanes": [lane]}],
    )
    worker_yaml.write_text(worker_yaml.read_text().replace("campus_id: c1", "campus_id: test"))
    camera = DeviceSpec(id="cam1", kind=DeviceKind.CAMERA, building="东门", zone="消防通道")
    config = gateway_config(mosquitto, tmp_path / "gw.db", [camera])
    config.firelane_worker = worker_yaml
    async with running_gateway(config) as gw:
        alert = await gw.wait_for_alert("fire_lane_blocked", timeout_s=60)
        assert alert["severity"] == "major" and alert["device_id"] == "cam1"
        snapshot = alert["details"]["attrs"]["snapshot"]
        image = await gw.http.get(f"/api/v1/snapshots/{snapshot}", headers=gw.headers())
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"  # a JPEG
        assert (await gw.http.get("/api/v1/snapshots/../gw.db", headers=gw.headers())).status_code == 404
        await gw.wait_for_alert("fire_lane_blocked", state="cleared", timeout_s=60)
