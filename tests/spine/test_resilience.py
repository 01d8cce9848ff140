"""The gateway rides out a broker restart and a flood of bad input without flooding the log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from simulators.campus import demo_campus
from simulators.fleet import Fleet
from tests.conftest import Broker, launch_mosquitto, start_mosquitto, stop_process
from tests.harness import gateway_config, running_gateway


async def test_reconnects_after_the_broker_restarts_and_keeps_ingesting(tmp_path: Path) -> None:
    proc, broker = start_mosquitto(tmp_path / "broker")
    try:
        config = gateway_config(broker, tmp_path / "gw.db", demo_campus())
        config.broker.session_expiry_s = 3600
        async with running_gateway(config) as gw:
            subscribers = gw.gateway.subscribers
            stop_process(proc)
            await gw.wait_for(
                lambda: not any(s.stats.connected for s in subscribers), what="disconnect noticed"
            )
            health = (await gw.http.get("/api/v1/health")).json()
            assert health["status"] == "degraded" and health["broker"]["connected"] is False
            # Same port, same persistence folder: the broker comes back with the gateway's session.
            proc = await asyncio.to_thread(launch_mosquitto, broker)
            await gw.wait_for(
                lambda: all(s.stats.subscribed for s in subscribers), timeout_s=20, what="reconnect"
            )
            assert [s.stats.connects for s in subscribers] == [2, 2]
            fleet = Fleet("test", broker.host, broker.port, client_id="after-restart")
            try:
                fleet.panic("panic-gate-01").press()
                await gw.wait_for_alert("panic_pressed", "panic-gate-01")
            finally:
                fleet.close()
    finally:
        stop_process(proc)


async def test_a_flood_of_bad_payloads_logs_once_per_device_and_reason(
    mosquitto: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", demo_campus())
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="flood")
    try:
        async with running_gateway(config) as gw:
            with caplog.at_level(logging.WARNING, logger="gateway.pipeline"):
                for _ in range(200):
                    fleet.publish("campus/test/smoke/tb-1f-smoke-01/telemetry", b"{broken")
                    fleet.publish("campus/test/smoke/tb-2f-smoke-01/telemetry", b'{"values": {"x": 1}}')
                fleet.flush()
                await gw.wait_for_messages(400)
            lines = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
            assert len(lines) == 2, lines
            dead = (await gw.http.get("/api/v1/health")).json()["ingest"]["dead_letters"]
            assert dead == {"malformed_json": 200, "unknown_metric": 200}
            gw.flush_store()
            assert gw.gateway.store.count("dead_letters") == 400  # every one kept, none silently dropped
    finally:
        fleet.close()


async def test_a_panic_is_not_held_back_while_telemetry_waits_for_the_store(
    mosquitto: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", demo_campus())
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="held-back")
    try:
        async with running_gateway(config) as gw:
            # As if SQLite had fallen far behind: telemetry stops being read; alarms must not.
            monkeypatch.setattr("gateway.services.MAX_STORE_BACKLOG_ROWS", 0)
            alarms, telemetry = gw.gateway.subscribers
            fleet.temperature("kitchen-temp-01").telemetry(temperature_c=22.0)
            fleet.panic("panic-gate-01").press()
            fleet.flush()
            await gw.wait_for_alert("panic_pressed", "panic-gate-01")
            assert telemetry.stats.messages == 0 and telemetry.stats.pauses == 1
            assert alarms.stats.messages >= 1
    finally:
        fleet.close()
