"""`campus-gateway demo`: broker + gateway + simulated campus + live page, on embedded defaults."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import signal
import socket
import threading
from pathlib import Path

from gateway.broker import free_port, start_local_broker
from gateway.config import (
    ApiConfig,
    BrokerConfig,
    CampusConfig,
    GatewayConfig,
    StorageConfig,
    TokenConfig,
    hash_token,
)
from gateway.runtime import Gateway
from simulators.campus import demo_campus
from simulators.fleet import Fleet
from simulators.scenarios import SCENARIOS, announce_online, normal_telemetry

log = logging.getLogger(__name__)


def demo_config(
    data_dir: Path, broker_port: int, api_port: int, operator_token: str, mqtt_version: int
) -> GatewayConfig:
    return GatewayConfig(
        campus=CampusConfig(id="demo", name="示范中学 Demo Middle School"),
        broker=BrokerConfig(port=broker_port, client_id="campus-gateway-demo", mqtt_version=mqtt_version),  # type: ignore[arg-type]
        storage=StorageConfig(sqlite_path=data_dir / "gateway.db"),
        api=ApiConfig(port=api_port, tokens=[TokenConfig(name="demo-operator", role="operator", sha256=hash_token(operator_token))]),
        inventory=demo_campus(),
    )  # fmt: skip


def _simulate(fleet: Fleet, stop: threading.Event, period_s: float = 5.0) -> None:
    """Normal telemetry every few seconds, and one scenario from the rotation every ~20 s."""
    devices = demo_campus()
    rng = random.Random(7)
    announce_online(fleet, devices)
    names = list(SCENARIOS)
    rounds = 0
    while not stop.wait(period_s):
        normal_telemetry(fleet, devices, rng)
        rounds += 1
        if rounds % 4 == 0:
            name = names[(rounds // 4 - 1) % len(names)]
            log.info("demo scenario: %s", name)
            SCENARIOS[name](fleet, devices)
        if rounds % 4 == 2:
            announce_online(fleet, devices)  # devices that dropped off come back
            for device in devices:
                if device.kind.value == "smoke":
                    fleet.smoke(device.id).alarm_clear()


async def run_demo(
    data_dir: Path, api_port: int | None, host: str, broker_kind: str = "auto", period_s: float = 5.0
) -> int:
    broker = start_local_broker(data_dir / "broker", prefer=broker_kind)
    token = secrets.token_urlsafe(24)
    port = api_port or 8080
    config = demo_config(data_dir, broker.port, port, token, broker.mqtt_version)
    config.api.host = host
    gateway = Gateway(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, gateway.stop)
    stop_simulation = threading.Event()
    run_task = asyncio.create_task(gateway.run())
    fleet: Fleet | None = None
    simulator: threading.Thread | None = None
    try:
        await asyncio.wait(
            {run_task, asyncio.create_task(gateway.ready.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if run_task.done():
            return run_task.result() or 1
        fleet = Fleet("demo", "127.0.0.1", broker.port, client_id="demo-fleet")
        simulator = threading.Thread(target=_simulate, args=(fleet, stop_simulation, period_s), daemon=True)
        simulator.start()
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(
            f"\nCampus Safety Gateway demo is running ({broker.implementation} broker on port {broker.port}).\n"
            f"  Live page:       http://{shown_host}:{port}/#token={token}\n"
            f"  Operator token:  {token}\n"
            f"  API docs:        http://{shown_host}:{port}/docs\n"
            f"  Data:            {data_dir}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        await run_task
        return 0
    finally:
        stop_simulation.set()
        if simulator is not None:
            simulator.join(timeout=10)
        if fleet is not None:
            fleet.close()
        if not run_task.done():
            gateway.stop()
            await run_task
        broker.stop()
        print("demo stopped", flush=True)


def pick_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()
