"""`GET /api/v1/uptime` on a real gateway: roles, windows, and a camera's faults as outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.device_tracker import DeviceStatus
from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from simulators.fleet import Fleet
from storage.sqlite import SqliteStore
from tests.conftest import Broker
from tests.harness import gateway_config, running_gateway

DEVICES = [
    DeviceSpec(id="cam-1", kind=DeviceKind.CAMERA, building="操场", reporting_interval_s=3600),
    DeviceSpec(id="smoke-1", kind=DeviceKind.SMOKE, building="A", reporting_interval_s=3600),
]


@pytest.fixture
def fleet(mosquitto: Broker) -> Iterator[Fleet]:
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="uptime-api-fleet")
    yield fleet
    fleet.close()


async def test_uptime_for_each_role_and_window_with_a_camera_fault_as_an_outage(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    async with running_gateway(gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)) as gw:
        camera = fleet.device("camera", "cam-1")
        camera.event("lane_cleared", lane="east")
        await gw.wait_for(lambda: gw.is_online("cam-1") is True, what="camera online")
        fault_ts = time.time()
        camera.event("camera_fault", ts=fault_ts, reason="covered")
        await gw.wait_for(lambda: gw.is_online("cam-1") is False, what="camera down on its fault")
        await asyncio.sleep(0.5)
        ok_ts = time.time()
        camera.event("camera_ok", ts=ok_ts)
        await gw.wait_for(lambda: gw.is_online("cam-1") is True, what="camera back")
        gw.flush_store()

        for role in ("bureau", "operator", "admin"):
            body = await gw.get("/api/v1/uptime", role=role, window="7d")
            assert body["window"] == "7d" and body["end"] - body["start"] == 7 * 86400
        by_id = {device["device_id"]: device for device in body["devices"]}
        (outage,) = by_id["cam-1"]["outages"]
        assert outage["cause"] == "camera_fault:covered"
        assert outage["end"] - outage["start"] == pytest.approx(ok_ts - fault_ts, abs=1e-3)
        assert by_id["cam-1"]["location"] == "操场" and by_id["cam-1"]["online_now"] is True
        assert by_id["smoke-1"]["availability"] is None and not by_id["smoke-1"]["reported_in_window"]
        assert body["campus"]["online_rate"] == 0.5 and body["campus"]["networked_rate"] == 0.5
        assert body["by_kind"]["camera"]["registered"] == 1

        wrong = await gw.http.get("/api/v1/uptime", params={"window": "1y"}, headers=gw.headers("bureau"))
        assert wrong.status_code == 422
        assert wrong.json()["detail"] == "window: expected one of 24h, 7d, 30d, got '1y'"
        assert (await gw.http.get("/api/v1/uptime")).status_code == 401


async def test_a_restart_takes_online_state_from_the_last_transition(
    mosquitto: Broker, tmp_path: Path
) -> None:
    """After a kill -9 the device state (flushed once a second) can be older than the transition
    that committed with its cause; the restarted tracker must agree with the intervals."""
    db = tmp_path / "gw.db"
    store = SqliteStore(db)
    store.open()
    went_offline = time.time() - 30
    store.save_device_states([DeviceStatus("smoke-1", "smoke", True, went_offline - 60, went_offline - 60)])
    store.add_status_change("smoke-1", False, went_offline, "status")
    store.close()
    async with running_gateway(gateway_config(mosquitto, db, DEVICES)) as gw:
        assert gw.is_online("smoke-1") is False
        body = await gw.get("/api/v1/uptime", role="bureau")
        smoke = next(device for device in body["devices"] if device["device_id"] == "smoke-1")
        assert smoke["online_now"] is False and smoke["outages"][0]["start"] == went_offline
