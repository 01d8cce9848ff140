"""A panel fire alarm through the whole gateway: receiver, pipeline, fire_alarm, WebSocket."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import websockets

from drivers.gb26875.frame import Command
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
        # Panel points report on change only: long past every interval, only the transmitter is silent.
        assert gw.gateway.pipeline is not None
        later = gw.gateway.pipeline.engine.tick(time.time() + 30 * 86400)
        assert {s.subject for s in later if s.rule == "device_offline"} == {"panel-a"}


def alarm_rows(db_path: Path) -> int:
    with closing(sqlite3.connect(db_path)) as conn:
        query = "SELECT count(*) FROM events WHERE device_id = 'panel-a-smoke-1' AND name = 'alarm'"
        return int(conn.execute(query).fetchone()[0])


@asynccontextmanager
async def write_lock(db_path: Path) -> AsyncIterator[None]:
    """SQLite's write lock, held from another connection: the gateway's writer cannot commit."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


async def test_a_panel_alarm_is_confirmed_only_after_it_has_committed(
    mosquitto: Broker, tmp_path: Path
) -> None:
    db_path = tmp_path / "gw.db"
    config = gateway_config(mosquitto, db_path, support.panel_devices())
    port = free_port()
    config.gb26875 = support.settings(host="127.0.0.1", port=port)
    async with running_gateway(config) as gw:
        await gw.wait_for(lambda: gw.gateway.gb26875 is not None and gw.gateway.gb26875.tcp_port == port)
        device = sim.SimulatedTransmitter(support.DEVICE_ADDRESS, "127.0.0.1", port, support.CENTRE_ADDRESS)
        await device.connect()
        assert (await sim.heartbeat(device))[0].confirmed
        async with write_lock(db_path):
            sending = asyncio.create_task(sim.panel_fire_alarm(device))
            await asyncio.sleep(1.0)
            assert not any(
                frame.command is Command.CONFIRM and frame.serial == 2 for frame in device.received
            )
            assert alarm_rows(db_path) == 0
        ((result,),) = [await asyncio.wait_for(sending, 5)]
        assert result.confirmed and result.attempts == 1
        assert alarm_rows(db_path) == 1  # committed before the device heard the confirm
        await gw.wait_for_alert("fire_alarm", "panel-a-smoke-1")
        await device.close()


async def test_a_store_that_cannot_commit_in_time_withholds_the_confirm_and_the_retry_is_dropped(
    mosquitto: Broker, tmp_path: Path
) -> None:
    db_path = tmp_path / "gw.db"
    config = gateway_config(mosquitto, db_path, support.panel_devices())
    port = free_port()
    config.gb26875 = support.settings(host="127.0.0.1", port=port, commit_wait_s=0.5)
    async with running_gateway(config) as gw:
        receiver = gw.gateway.gb26875
        assert receiver is not None
        await gw.wait_for(lambda: receiver.tcp_port == port)
        device = sim.SimulatedTransmitter(
            support.DEVICE_ADDRESS, "127.0.0.1", port, support.CENTRE_ADDRESS, confirm_timeout_s=1.0
        )
        await device.connect()
        assert (await sim.heartbeat(device))[0].confirmed
        async with write_lock(db_path):
            sending = asyncio.create_task(sim.panel_fire_alarm(device))
            await asyncio.sleep(1.6)  # first copy withheld at 0.5 s; the retry (1 s) too, at 1.5 s
            assert receiver.stats()["confirms_withheld"] >= 1
        ((result,),) = [await asyncio.wait_for(sending, 10)]
        assert result.confirmed and result.attempts >= 2
        assert receiver.stats()["duplicates_dropped"] == result.attempts - 1
        assert alarm_rows(db_path) == 1
        await device.close()
