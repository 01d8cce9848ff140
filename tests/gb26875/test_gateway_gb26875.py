"""A panel fire alarm through the whole gateway: receiver, pipeline, fire_alarm, WebSocket."""

from __future__ import annotations

import json
from pathlib import Path

import websockets

from gateway.broker import free_port
from simulators import gb26875_sim as sim
from tests.conftest import Broker
from tests.gb26875 import support
from tests.harness import TOKENS, gateway_config, running_gateway
from tests.spine.test_gateway_integration import next_alert


async def test_panel_fire_alarm_raises_fire_alarm_on_the_websocket(mosquitto: Broker, tmp_path: Path) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", support.panel_devices())
    port = free_port()
    config.gb26875 = support.settings(host="127.0.0.1", port=port)
    async with running_gateway(config) as gw:
        url = f"ws://127.0.0.1:{config.api.port}/api/v1/stream?token={TOKENS['operator']}"
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            device = sim.SimulatedTransmitter(
                support.DEVICE_ADDRESS, "127.0.0.1", port, support.CENTRE_ADDRESS
            )
            await gw.wait_for(lambda: gw.gateway.gb26875 is not None and gw.gateway.gb26875.tcp_port == port)
            await device.connect()
            (result,) = await sim.panel_fire_alarm(device)
            assert result.confirmed
            alert = await next_alert(ws)
            assert (alert["rule"], alert["device_id"], alert["severity"]) == (
                "fire_alarm",
                "panel-a-smoke-1",
                "critical",
            )
            (unknown,) = await sim.panel_fire_alarm(device, address=99 | 7 << 16)
            assert unknown.confirmed
            await gw.wait_for_alert("unknown_device", "panel-a.s1-1.c99-7")
            await device.close()
        health = (await gw.http.get("/api/v1/health")).json()
        assert health["gb26875"]["confirms"] == 2
        assert gw.is_online("panel-a") is True
