"""The full engine inside the running gateway: storms, drills, maintenance, police and escalation."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from gateway.notify.config import ChannelConfig, NotifyConfig
from simulators.fleet import Fleet
from tests.conftest import Broker
from tests.harness import TOKENS, gateway_config, running_gateway
from tests.notify.receiver import http_receiver

STORM_DETECTORS = 500


def storm_building() -> list[DeviceSpec]:
    smoke = [
        DeviceSpec(id=f"lib-smoke-{n:03d}", kind=DeviceKind.SMOKE, building="图书馆", floor=f"{n // 100 + 1}F",
                   zone=f"阅览室{n // 20}")
        for n in range(STORM_DETECTORS)
    ]  # fmt: skip
    panic = DeviceSpec(id="panic-1", kind=DeviceKind.PANIC, building="南门", zone="门卫室")
    return [*smoke, panic]


def notify_to(url: str, **overrides: Any) -> NotifyConfig:
    return NotifyConfig(
        channels=[
            ChannelConfig(name="duty", url=f"{url}/duty", secret="s3cret"),
            ChannelConfig(name="leaders", url=f"{url}/leaders", secret="s3cret"),
            ChannelConfig(name="police", url=f"{url}/police", secret="s3cret"),
        ],
        tiers=[["duty"], ["leaders"]],
        police=["police"],
        retry_base_s=0.1,
        **overrides,
    )


async def test_alarm_storm_is_one_incident_with_every_alert_stored(mosquitto: Broker, tmp_path: Path) -> None:
    with http_receiver() as receiver:
        config = gateway_config(mosquitto, tmp_path / "gw.db", storm_building())
        config.notify = notify_to(receiver.url)
        fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="storm")
        try:
            async with running_gateway(config) as gw:
                url = f"ws://127.0.0.1:{config.api.port}/api/v1/stream?token={TOKENS['operator']}"
                async with websockets.connect(url, max_size=None) as ws:
                    await ws.recv()  # snapshot
                    started = time.monotonic()
                    for n in range(STORM_DETECTORS):  # all within 10 s: as fast as the fleet publishes
                        fleet.smoke(f"lib-smoke-{n:03d}").alarm()
                    fleet.flush()
                    assert time.monotonic() - started < 10
                    await gw.wait_for(
                        lambda: gw.gateway.counters.get("alerts_raised", "fire_alarm") == STORM_DETECTORS,
                        timeout_s=30,
                        what="every detector's alert",
                    )
                    incidents = await gw.get("/api/v1/incidents")
                    assert len(incidents) == 1
                    [incident] = incidents
                    assert incident["storm"] is True and incident["building"] == "图书馆"
                    assert incident["devices"] == STORM_DETECTORS and incident["severity"] == "critical"
                    pushed = []
                    while len(pushed) < 5:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                        if message["type"] == "incident":
                            pushed.append(message["incident"])
                    assert {p["id"] for p in pushed} == {incident["id"]}
                gw.flush_store()
                assert gw.gateway.store.count("alerts") >= STORM_DETECTORS
                assert gw.gateway.store.count("events") == STORM_DETECTORS
                await asyncio.sleep(1.5)
                duty = [r for r in receiver.received if r.path.endswith("/duty")]
                # One message for the storm, not five hundred (plus fire_confirmed per zone).
                assert 1 <= len(duty) <= 30, len(duty)
        finally:
            fleet.close()


async def test_panic_goes_to_police_at_once_and_unacknowledged_critical_escalates(
    mosquitto: Broker, tmp_path: Path
) -> None:
    with http_receiver() as receiver:
        config = gateway_config(mosquitto, tmp_path / "gw.db", storm_building())
        config.notify = notify_to(receiver.url, escalate_after_s=1.0)
        fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="police")
        try:
            async with running_gateway(config) as gw:
                pressed_at = time.monotonic()
                fleet.panic("panic-1").press()
                await gw.wait_for_alert("panic_pressed", "panic-1")
                await asyncio.to_thread(receiver.wait_for, 1, 5)
                police = [r for r in receiver.received if r.path.endswith("/police")]
                assert police and police[0].at - pressed_at < 1.5
                assert "X-Campus-Signature" in police[0].headers
                leaders = await asyncio.to_thread(
                    lambda: [r for r in receiver.wait_for(3, 10) if r.path.endswith("/leaders")]
                )
                assert leaders, "an unacknowledged critical alert must reach the next tier"
        finally:
            fleet.close()


async def test_drill_tags_alerts_and_keeps_them_from_outside_channels_maintenance_suppresses(
    mosquitto: Broker, tmp_path: Path
) -> None:
    with http_receiver() as receiver:
        config = gateway_config(mosquitto, tmp_path / "gw.db", storm_building())
        config.notify = notify_to(receiver.url)
        fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="drill")
        try:
            async with running_gateway(config) as gw:
                admin = gw.headers("admin")
                refused = await gw.http.post("/api/v1/admin/modes", headers=gw.headers(), json={})
                assert refused.status_code == 403
                drill = await gw.http.post(
                    "/api/v1/admin/modes",
                    headers=admin,
                    json={"kind": "drill", "target": "图书馆", "duration_s": 600, "reason": "消防演练"},
                )
                assert drill.status_code == 201, drill.text
                maintenance = await gw.http.post(
                    "/api/v1/admin/modes",
                    headers=admin,
                    json={
                        "kind": "maintenance",
                        "target": "lib-smoke-002",
                        "duration_s": 600,
                        "reason": "更换探头",
                    },
                )
                assert maintenance.status_code == 201
                bad = await gw.http.post(
                    "/api/v1/admin/modes",
                    headers=admin,
                    json={"kind": "maintenance", "target": "nope", "duration_s": 60, "reason": "x"},
                )
                assert bad.status_code == 422
                fleet.smoke("lib-smoke-001").alarm()
                fleet.smoke("lib-smoke-002").alarm()
                alert = await gw.wait_for_alert("fire_alarm", "lib-smoke-001")
                assert alert["details"]["drill"] is True
                await gw.wait_for_messages(2)
                await asyncio.sleep(1.0)
                assert [a for a in await gw.get("/api/v1/alerts") if a["device_id"] == "lib-smoke-002"] == []
                assert gw.gateway.counters.get("alerts_suppressed", "fire_alarm") == 1
                assert receiver.received == []  # a drill never leaves the campus
                gw.flush_store()
                assert gw.gateway.store.count("events") == 2  # nothing lost: both alarms stored
                ended = await gw.http.delete(f"/api/v1/admin/modes/{drill.json()['id']}", headers=admin)
                assert ended.status_code == 200
                active = await gw.get("/api/v1/admin/modes", role="admin")
                assert [m["kind"] for m in active] == ["maintenance"]
                trail = gw.gateway.store.audit_trail("drill", str(drill.json()["id"]))
                assert [e.action for e in trail] == ["started", "ended"] and trail[0].actor == "admin-1"
        finally:
            fleet.close()


async def test_a_restart_in_the_middle_keeps_hold_timers_and_sample_counts(
    mosquitto: Broker, tmp_path: Path
) -> None:
    devices = [
        DeviceSpec(id="gate-1", kind=DeviceKind.GATE, building="南门"),
        DeviceSpec(id="efm-1", kind=DeviceKind.ELECTRICAL_FIRE, building="综合楼"),
    ]
    config = gateway_config(mosquitto, tmp_path / "gw.db", devices, gate_held_open={"limit_s": 4.0})
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="restart")
    try:
        async with running_gateway(config) as gw:
            opened_at = time.monotonic()
            fleet.gate("gate-1").event("opened")
            for _ in range(2):  # two of the three samples electrical_leakage needs
                fleet.electrical_fire("efm-1").telemetry(residual_current_ma=350.0)
            await gw.wait_for_messages(3)
        async with running_gateway(config) as gw:
            assert await gw.get("/api/v1/alerts") == []  # nothing raised by the restart itself
            fleet.electrical_fire("efm-1").telemetry(residual_current_ma=350.0)
            leak = await gw.wait_for_alert("electrical_leakage", "efm-1")
            assert leak["count"] == 1
            held = await gw.wait_for_alert("gate_held_open", "gate-1", timeout_s=10)
            # The open gate's timer ran on through the restart: not four seconds from the restart.
            assert time.monotonic() - opened_at < 9
            assert held["severity"] == "warning"
    finally:
        fleet.close()


async def test_rule_state_is_saved_while_running_so_a_power_cut_keeps_sample_counts(
    mosquitto: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.services.RULE_STATE_SAVE_INTERVAL_S", 0.5)
    devices = [DeviceSpec(id="efm-1", kind=DeviceKind.ELECTRICAL_FIRE, building="综合楼")]
    config = gateway_config(mosquitto, tmp_path / "gw.db", devices)
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="power-cut")
    try:
        async with running_gateway(config) as gw:
            for _ in range(2):  # two of the three samples electrical_leakage needs
                fleet.electrical_fire("efm-1").telemetry(residual_current_ma=350.0)
            await gw.wait_for_messages(2)
            await asyncio.sleep(2.5)  # a periodic save, then the power goes
            # What is committed on disk at this moment is what a power cut leaves.
            with sqlite3.connect(tmp_path / "gw.db") as running, sqlite3.connect(tmp_path / "cut.db") as cut:
                running.backup(cut)
        after_cut = gateway_config(mosquitto, tmp_path / "cut.db", devices)
        async with running_gateway(after_cut) as gw:
            fleet.electrical_fire("efm-1").telemetry(residual_current_ma=350.0)
            leak = await gw.wait_for_alert("electrical_leakage", "efm-1")
            assert leak["count"] == 1
    finally:
        fleet.close()
