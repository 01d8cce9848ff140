"""Simulators -> real mosquitto -> gateway -> SQLite and API, end to end."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from simulators.campus import demo_campus
from simulators.fleet import Fleet
from simulators.scenarios import bad_payloads, kitchen_fire
from tests.conftest import Broker
from tests.harness import TOKENS, gateway_config, running_gateway

DEVICES = demo_campus()


async def next_alert(ws: websockets.ClientConnection) -> dict[str, Any]:
    """The next alert pushed on the stream, skipping device status messages."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] == "alert":
            return dict(message["alert"])


@pytest.fixture
def fleet(mosquitto: Broker) -> Iterator[Fleet]:
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="test-fleet")
    yield fleet
    fleet.close()


async def test_kitchen_fire_raises_heat_and_fire_alerts_stored_in_sqlite(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        kitchen_fire(fleet, DEVICES)
        heat = await gw.wait_for_alert("heat_high", "kitchen-temp-01")
        fire = await gw.wait_for_alert("fire_alarm", "kitchen-smoke-01")
        assert heat["severity"] == "critical" and heat["state"] == "active"
        assert heat["count"] == 2  # 58.5 and 63.0 are one alert, deduplicated
        assert fire["title"] == {"zh-CN": "火灾报警", "en": "Fire alarm"}
        assert "食堂" in fire["message"]["zh-CN"]
        gw.flush_store()  # the API reads readings from the store, a commit behind the alert
        readings = await gw.get(
            "/api/v1/devices/kitchen-temp-01/readings", metric="temperature_c", **{"from": "0"}
        )
        assert [p["value"] for p in readings["points"]] == [35.0, 48.0, 58.5, 63.0]
        gw.flush_store()
    with sqlite3.connect(tmp_path / "gw.db") as db:
        rules = {row[0] for row in db.execute("SELECT rule FROM alerts")}
        assert {"heat_high", "fire_alarm"} <= rules
        assert (
            db.execute("SELECT COUNT(*) FROM readings WHERE device_id='kitchen-temp-01'").fetchone()[0] == 4
        )
        actions = [row[0] for row in db.execute("SELECT action FROM audit WHERE entity='alert'")]
        assert "raised" in actions


async def test_panic_press_reaches_the_websocket_and_operator_acks_and_resolves(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        url = f"ws://127.0.0.1:{config.api.port}/api/v1/stream?token={TOKENS['operator']}"
        async with websockets.connect(url) as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot == {"type": "snapshot", "alerts": []}
            fleet.panic("panic-gate-01").press()
            alert = await next_alert(ws)
            assert (alert["rule"], alert["device_id"], alert["state"]) == (
                "panic_pressed",
                "panic-gate-01",
                "active",
            )

            ack = await gw.http.post(f"/api/v1/alerts/{alert['id']}/ack", headers=gw.headers())
            assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
            assert ack.json()["acknowledged_by"] == "operator-1"
            assert (await next_alert(ws))["state"] == "acknowledged"

            empty_note = await gw.http.post(
                f"/api/v1/alerts/{alert['id']}/resolve", headers=gw.headers(), json={"note": " "}
            )
            assert empty_note.status_code == 422
            resolved = await gw.http.post(
                f"/api/v1/alerts/{alert['id']}/resolve", headers=gw.headers(), json={"note": "误触，已复位"}
            )
            assert resolved.json()["state"] == "resolved"
            again = await gw.http.post(f"/api/v1/alerts/{alert['id']}/ack", headers=gw.headers())
            assert again.status_code == 404
        detail = await gw.get(f"/api/v1/alerts/{alert['id']}")
        assert [entry["action"] for entry in detail["audit"]] == ["raised", "acknowledged", "resolved"]
        assert detail["audit"][2] == {**detail["audit"][2], "actor": "operator-1", "detail": "误触，已复位"}


async def test_an_operator_action_is_confirmed_once_committed(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    """A page reloaded right after "acknowledge" shows it: the answer waits for the store's commit."""
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        fleet.panic("panic-gate-01").press()
        alert = await gw.wait_for_alert("panic_pressed", "panic-gate-01")
        # Another connection holds SQLite's write lock: nothing the gateway writes can commit.
        holder = sqlite3.connect(tmp_path / "gw.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            ack = asyncio.create_task(gw.http.post(f"/api/v1/alerts/{alert['id']}/ack", headers=gw.headers()))
            await asyncio.sleep(0.5)
            assert not ack.done(), "the acknowledgement was confirmed before it was committed"
        finally:
            holder.execute("COMMIT")
            holder.close()
        assert (await ack).status_code == 200
        trail = gw.gateway.store.audit_trail("alert", str(alert["id"]))
        assert [entry.action for entry in trail] == ["raised", "acknowledged"]


async def test_an_acknowledge_does_not_wait_behind_a_telemetry_backlog(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    """An operator's write commits ahead of queued readings (it used to flush the whole queue)."""
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        fleet.panic("panic-gate-01").press()
        alert = await gw.wait_for_alert("panic_pressed", "panic-gate-01")
        store = gw.gateway.store
        for batch in range(200):
            store.add_readings(
                [("kitchen-temp-01", "temperature_c", float(batch * 500 + n), 20.0) for n in range(500)]
            )
        response = await gw.http.post(f"/api/v1/alerts/{alert['id']}/ack", headers=gw.headers())
        assert response.status_code == 200
        assert store.backlog_rows > 0, "the acknowledgement waited for the whole backlog"
        store.flush(timeout_s=60)


async def test_clear_before_ack_then_ack_keeps_cleared(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        gate = fleet.gate("gate-south")
        gate.force_open()
        alert = await gw.wait_for_alert("gate_forced", "gate-south", state="active")
        gate.close()
        await gw.wait_for_alert("gate_forced", "gate-south", state="cleared")
        acked = (await gw.http.post(f"/api/v1/alerts/{alert['id']}/ack", headers=gw.headers())).json()
        assert acked["state"] == "cleared" and acked["acknowledged_by"] == "operator-1"
        gate.force_open()  # the same condition again: the same open alert, counted
        again = await gw.wait_for_alert("gate_forced", "gate-south", state="acknowledged")
        assert again["id"] == alert["id"] and again["count"] == 2


async def test_roles_and_parameter_errors(mosquitto: Broker, tmp_path: Path) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        assert (await gw.http.get("/api/v1/health")).status_code == 200
        assert (await gw.http.get("/api/v1/alerts")).status_code == 401
        wrong = await gw.http.get("/api/v1/alerts", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await gw.http.get("/api/v1/alerts", headers=gw.headers("bureau"))).status_code == 403
        assert (await gw.http.get("/api/v1/devices", headers=gw.headers("bureau"))).status_code == 403
        assert (await gw.http.get("/api/v1/summary", headers=gw.headers("bureau"))).status_code == 200
        assert (await gw.http.get("/metrics", headers=gw.headers("bureau"))).status_code == 200
        bad_state = await gw.http.get("/api/v1/alerts", headers=gw.headers(), params={"state": "sleeping"})
        assert bad_state.status_code == 422 and "state" in bad_state.json()["detail"]
        bad_severity = await gw.http.get("/api/v1/alerts", headers=gw.headers(), params={"severity": "huge"})
        assert bad_severity.status_code == 422
        bad_time = await gw.http.get(
            "/api/v1/devices/gate-south/readings",
            headers=gw.headers(),
            params={"metric": "open", "from": "yesterday"},
        )
        assert bad_time.status_code == 422 and "from" in bad_time.json()["detail"]
        assert (await gw.http.get("/api/v1/devices/nope", headers=gw.headers())).status_code == 404
        assert (await gw.http.get("/", headers={})).status_code == 200
        async with websockets.connect(f"ws://127.0.0.1:{config.api.port}/api/v1/stream?token=bad") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_bad_payloads_are_dead_lettered_counted_and_the_gateway_keeps_working(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        bad_payloads(fleet, DEVICES)
        fleet.publish(
            "campus/test/smoke/tb-1f-smoke-01/telemetry", b'{"values": {"temperature_c": Infinity}}'
        )
        fleet.publish(
            "campus/test/smoke/tb-1f-smoke-01/telemetry",
            b'{"ts": "last tuesday", "values": {"temperature_c": 1}}',
        )
        fleet.publish("campus/test/toaster/t1/telemetry", b"{}")
        fleet.publish("campus/test/gate/tb-1f-smoke-01/event", b'{"event": "opened"}')
        fleet.smoke("tb-1f-smoke-01").alarm()  # and real traffic still flows
        await gw.wait_for_alert("fire_alarm", "tb-1f-smoke-01")
        health = (await gw.http.get("/api/v1/health")).json()
        assert health["ingest"]["dead_letters"] == {
            "malformed_json": 1,
            "not_object": 1,
            "wrong_type": 1,
            "non_finite": 2,
            "unknown_metric": 1,
            "oversized": 1,
            "unknown_device": 1,
            "bad_ts": 1,
            "unknown_kind": 1,
            "kind_mismatch": 1,
        }
        unknown = await gw.wait_for_alert("unknown_device", "not-in-inventory")
        assert unknown["severity"] == "warning"
        gw.flush_store()
        quarantined = await gw.get("/api/v1/unknown-devices")
        assert [row["device_id"] for row in quarantined] == ["not-in-inventory"]
        letters = await gw.get("/api/v1/dead-letters", reason="malformed_json")
        assert letters[0]["payload"] == "{not json" and letters[0]["device_id"] == "tb-1f-smoke-01"


async def test_duplicates_by_seq_are_dropped_and_clock_skew_is_flagged(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        sim = fleet.temperature("switchroom-temp-01")
        body = {"ts": 0, "seq": 7, "values": {"temperature_c": 30.0}}
        for _ in range(3):  # a QoS 1 redelivery looks like this
            sim.publish("telemetry", json.dumps(body).encode())
        await gw.wait_for_messages(3)
        assert gw.gateway.counters.get("duplicates_dropped") == 2
        skew = await gw.wait_for_alert("clock_skew", "switchroom-temp-01")
        assert skew["severity"] == "info"
        gw.flush_store()
        points = (
            await gw.get(
                "/api/v1/devices/switchroom-temp-01/readings", metric="temperature_c", **{"from": "0"}
            )
        )["points"]
        assert len(points) == 1 and points[0]["ts"] > 1_700_000_000  # replaced by the receive time


async def test_offline_status_and_heartbeat_silence_raise_device_offline(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    devices = [
        DeviceSpec(id="quiet-1", kind=DeviceKind.TEMPERATURE, reporting_interval_s=0.5, building="B"),
        DeviceSpec(id="lwt-1", kind=DeviceKind.SMOKE, reporting_interval_s=60, building="B"),
    ]
    config = gateway_config(mosquitto, tmp_path / "gw.db", devices)
    async with running_gateway(config) as gw:
        fleet.smoke("lwt-1").status("online")
        fleet.smoke("lwt-1").status("offline")
        offline = await gw.wait_for_alert("device_offline", "lwt-1")
        assert offline["details"]["reason"] == "status"
        silent = await gw.wait_for_alert("device_offline", "quiet-1", timeout_s=6)
        assert silent["details"]["reason"] == "silent"
        device = (await gw.get("/api/v1/devices/quiet-1"))["device"]
        assert device["online"] is False
        fleet.temperature("quiet-1").telemetry(temperature_c=21.0)
        await gw.wait_for_alert("device_offline", "quiet-1", state="cleared")
        fleet.smoke("lwt-1").status("online")
        await gw.wait_for_alert("device_offline", "lwt-1", state="cleared")


async def test_restart_keeps_open_alerts_and_receives_what_the_broker_held(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        fleet.smoke("tb-2f-smoke-01").alarm()
        first = await gw.wait_for_alert("fire_alarm", "tb-2f-smoke-01")
    # Gateway down: the broker queues QoS 1 messages for its persistent session.
    fleet.temperature("kitchen-temp-01").telemetry(temperature_c=70.0)
    fleet.smoke("tb-2f-smoke-01").alarm()
    fleet.flush()
    async with running_gateway(config) as gw:
        heat = await gw.wait_for_alert("heat_high", "kitchen-temp-01")
        assert heat["state"] == "active"
        again = await gw.wait_for_alert("fire_alarm", "tb-2f-smoke-01")
        assert again["id"] == first["id"]  # restored, not raised a second time
        # The repeat held by the broker is counted once (the wait used to pass on the first alarm).
        repeated = await gw.wait_for_alert("fire_alarm", "tb-2f-smoke-01", min_count=2)
        assert repeated["count"] == 2


async def test_last_will_of_a_device_that_loses_power_raises_device_offline(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        gate = fleet.connect_device("gate", "gate-north")
        gate.telemetry(open=False)
        await gw.wait_for(lambda: gw.is_online("gate-north") is True)
        gate.lose_power()
        offline = await gw.wait_for_alert("device_offline", "gate-north")
        assert offline["details"]["reason"] == "status"
        assert (await gw.get("/api/v1/devices/gate-north"))["device"]["online"] is False
