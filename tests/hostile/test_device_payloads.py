"""Hostile device payloads against a real gateway and a real broker (issue 11, items 1-4)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from analytics.devices import DeviceSpec
from analytics.quarantine import MAX_UNKNOWN_DEVICE_ALERTS
from analytics.records import DeviceKind
from simulators.fleet import Fleet
from tests.conftest import Broker
from tests.engine.test_gateway_engine import notify_to
from tests.harness import RunningGateway, gateway_config, running_gateway
from tests.hostile.strict import strict_loads
from tests.notify.receiver import http_receiver

DETECTORS = 30


def devices() -> list[DeviceSpec]:
    smoke = [
        DeviceSpec(id=f"smoke-{n:02d}", kind=DeviceKind.SMOKE, building="教学楼", zone=f"教室{n}")
        for n in range(DETECTORS + 1)
    ]
    return [*smoke, DeviceSpec(id="panic-1", kind=DeviceKind.PANIC, building="南门", zone="门卫室")]


async def api_json(gw: RunningGateway, path: str) -> Any:
    response = await gw.http.get(path, headers=gw.headers())
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:200]}"
    return strict_loads(response.text)


async def test_device_attrs_cannot_mark_a_real_panic_press_as_a_drill(
    mosquitto: Broker, tmp_path: Path
) -> None:
    """Finding 1: `"attrs": {"drill": true}` on a real press sent 0 police webhooks."""
    with http_receiver() as receiver:
        config = gateway_config(mosquitto, tmp_path / "gw.db", devices())
        config.notify = notify_to(receiver.url)
        fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="hostile-drill")
        try:
            async with running_gateway(config) as gw:
                fleet.panic("panic-1").event("pressed", button="main", drill=True, drill_id=7)
                alert = await gw.wait_for_alert("panic_pressed", "panic-1")
                police = await asyncio.to_thread(
                    lambda: [r for r in receiver.wait_for(1, 5) if r.path.endswith("/police")]
                )
                assert police, "a device's own attrs must never suppress the police call"
                assert json.loads(police[0].body)["drill"] is False
                assert "drill" not in alert["details"] and "drill_id" not in alert["details"]
                assert alert["details"]["attrs"] == {"button": "main", "drill": True, "drill_id": 7}
        finally:
            fleet.close()


POISON = {
    "nan": b'{"event": "alarm", "attrs": {"x": NaN}}',
    "infinity": b'{"event": "alarm", "attrs": {"x": [1, {"y": -Infinity}]}}',
    "nan_value": b'{"values": {"temperature_c": NaN}}',
    "deep_300": b'{"event": "alarm", "attrs": ' + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}",
    "deep_977": b'{"event": "alarm", "attrs": ' + b'{"a": ' * 977 + b"1" + b"}" * 977 + b"}",
    "deep_980": b'{"event": "alarm", "attrs": ' + b"[" * 980 + b"]" * 980 + b"}",
    "deep_10000": b'{"event": "alarm", "attrs": {"a": ' + b"[" * 10000 + b"]" * 10000 + b"}}",
    "many_keys": json.dumps({"event": "alarm", "attrs": {f"k{n}": n for n in range(2000)}}).encode(),
    "big_int": b'{"event": "alarm", "attrs": {"x": 123456789012345678901234567890}}',
    "big_attrs": json.dumps({"event": "alarm", "attrs": {f"k{n}": "x" * 1000 for n in range(60)}}).encode(),
}


async def test_poisoned_messages_are_dead_lettered_and_30_alarms_behind_them_all_raise(
    mosquitto: Broker, tmp_path: Path
) -> None:
    """Finding 3 (and 2, payload side): nested attrs, NaN and oversize attrs on one connection,
    followed by genuine alarms from other detectors: each poison is dead-lettered with a reason,
    every alarm raises, and the API serves valid JSON throughout."""
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="hostile-poison")
    try:
        async with running_gateway(gateway_config(mosquitto, tmp_path / "gw.db", devices())) as gw:
            for name, payload in POISON.items():
                channel = "telemetry" if name == "nan_value" else "event"
                fleet.publish(f"campus/test/smoke/smoke-{DETECTORS:02d}/{channel}", payload)
            for n in range(DETECTORS):
                fleet.smoke(f"smoke-{n:02d}").alarm()
            await gw.wait_for_messages(len(POISON) + DETECTORS)
            for n in range(DETECTORS):
                await gw.wait_for_alert("fire_alarm", f"smoke-{n:02d}", timeout_s=5)
            gw.flush_store()
            letters = gw.gateway.store.dead_letters()
            assert len(letters) == len(POISON), [(d.reason, d.detail) for d in letters]
            assert {d.device_id for d in letters} == {f"smoke-{DETECTORS:02d}"}
            assert gw.gateway.counters.total("dead_letters") == len(POISON)
            assert not [
                a for a in await api_json(gw, "/api/v1/alerts") if a["device_id"] == f"smoke-{DETECTORS:02d}"
            ]
            for n in (0, DETECTORS - 1):
                alert = await gw.wait_for_alert("fire_alarm", f"smoke-{n:02d}")
                await api_json(gw, f"/api/v1/alerts/{alert['id']}")
                await api_json(gw, f"/api/v1/devices/smoke-{n:02d}")
            await api_json(gw, f"/api/v1/devices/smoke-{DETECTORS:02d}")
    finally:
        fleet.close()


UNKNOWN_IDS = 2000


async def test_a_flood_of_unknown_ids_raises_bounded_alerts_and_log_lines(
    mosquitto: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 4: 2,000 distinct unknown ids gave 2,000 log lines and 2,000 open alerts."""
    caplog.set_level(logging.WARNING, logger="gateway.pipeline")
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="hostile-unknown")
    try:
        async with running_gateway(gateway_config(mosquitto, tmp_path / "gw.db", devices())) as gw:
            for n in range(UNKNOWN_IDS):
                fleet.smoke(f"ghost-{n:04d}").alarm()
            for n in range(UNKNOWN_IDS):  # the same ids again, and some other garbage
                fleet.publish(f"campus/test/no_such_kind/ghost-{n:04d}/event", b"{}")
            fleet.smoke("smoke-00").alarm()
            await gw.wait_for_messages(2 * UNKNOWN_IDS + 1, timeout_s=60)
            await gw.wait_for_alert("fire_alarm", "smoke-00")
            unknown = [a for a in await api_json(gw, "/api/v1/alerts") if a["rule"] == "unknown_device"]
            limit = MAX_UNKNOWN_DEVICE_ALERTS
            assert len(unknown) == limit + 1, len(unknown)
            [beyond] = [a for a in unknown if a["details"].get("quarantined_ids")]
            assert beyond["details"]["quarantined_ids"] == UNKNOWN_IDS - limit
            gw.flush_store()
            assert gw.gateway.counters.get("dead_letters", "unknown_device") == UNKNOWN_IDS
            assert gw.gateway.counters.get("dead_letters", "unknown_kind") == UNKNOWN_IDS
            assert len(await api_json(gw, "/api/v1/unknown-devices")) == UNKNOWN_IDS  # all kept
            lines = [r for r in caplog.records if r.name == "gateway.pipeline"]
            assert len(lines) <= 4, [r.getMessage() for r in lines[:6]]
            gw.gateway.pipeline._log_limiter._interval_s = 0.0  # the next minute, now
            fleet.smoke("ghost-new").alarm()
            await gw.wait_for_messages(2 * UNKNOWN_IDS + 2)
            last = [r.getMessage() for r in caplog.records if r.name == "gateway.pipeline"][-1]
            assert "ghost-new" in last and f"({UNKNOWN_IDS - 1} more like it since the last line)" in last
    finally:
        fleet.close()
