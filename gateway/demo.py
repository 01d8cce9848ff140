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

import yaml

from analytics.tickets.config import TicketsConfig
from analytics.tickets.people import PersonConfig
from api.plans import save_plan_image
from drivers.gb26875.config import Gb26875Settings, TransmitterSettings
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
from simulators import gb26875_sim as panel_sim
from simulators.campus import DEMO_PANEL_ADDRESS, DEMO_TRANSMITTER, demo_campus
from simulators.fleet import Fleet
from simulators.plans import demo_plans
from simulators.scenarios import SCENARIOS, announce_online, normal_telemetry

log = logging.getLogger(__name__)


def demo_config(
    data_dir: Path, broker_port: int, api_port: int, operator_token: str, mqtt_version: int, panel_port: int
) -> GatewayConfig:
    return GatewayConfig(
        campus=CampusConfig(id="demo", name="示范中学 Demo Middle School"),
        broker=BrokerConfig(port=broker_port, client_id="campus-gateway-demo", mqtt_version=mqtt_version),  # type: ignore[arg-type]
        storage=StorageConfig(sqlite_path=data_dir / "gateway.db"),
        api=ApiConfig(port=api_port, tokens=[TokenConfig(name="demo-operator", role="operator", sha256=hash_token(operator_token))]),
        inventory=demo_campus(),
        gb26875=Gb26875Settings(host="127.0.0.1", port=panel_port,
                                transmitters=[TransmitterSettings(id=DEMO_TRANSMITTER, address=DEMO_PANEL_ADDRESS)]),
        tickets=TicketsConfig(people=DEMO_PEOPLE),
    )  # fmt: skip


# Enough people to walk a ticket's whole loop: one responsible, another verifies (two-person rule).
DEMO_PEOPLE = [
    PersonConfig(id="zhang-wei", name="张伟", role="总务主任 facilities director", phone="13800000001"),
    PersonConfig(id="li-na", name="李娜", role="安全办主任 safety officer", phone="13800000002"),
    PersonConfig(id="wang-qiang", name="王强", role="电工 electrician", phone="13800000003"),
]


def write_demo_plans(plan_dir: Path) -> None:
    """The demo campus's floor plans, beside its database (as an admin's uploads would be)."""
    for (building, floor), svg in demo_plans(demo_campus()).items():
        save_plan_image(plan_dir, building, floor, svg)


def _simulate(fleet: Fleet, stop: threading.Event, period_s: float = 5.0) -> None:
    """Normal telemetry every few seconds, and one scenario from the rotation every ~20 s."""
    devices = [device for device in demo_campus() if device.protocol == "mqtt"]
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


# The library panel's school day, one step a period: (component address, flags) to report, or
# None for a heartbeat. A fire alarm in the stacks and its restore; a heat detector's fault and
# its restore; in between, the transmission device's heartbeats.
_STACKS, _HEAT = 1 | 2 << 16, 1 | 3 << 16
_PANEL_DAY: list[tuple[int, int] | None] = [
    None,
    (_STACKS, panel_sim.ALARM),
    None,
    (_STACKS, panel_sim.RUNNING),
    (_HEAT, panel_sim.RUNNING | panel_sim.FAULT),
    None,
    (_HEAT, panel_sim.RUNNING),
    None,
]


async def _simulate_panel(port: int, period_s: float) -> None:
    """The library's transmission device: connects to the gateway and plays `_PANEL_DAY` in a loop."""
    device = panel_sim.SimulatedTransmitter(DEMO_PANEL_ADDRESS, "127.0.0.1", port, confirm_timeout_s=5.0)
    for _ in range(50):  # the receiver may still be binding its port
        try:
            await device.connect()
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        log.warning("demo panel: the gb26875 receiver on port %d does not answer", port)
        return
    try:
        step = 0
        while True:
            await asyncio.sleep(period_s)
            report = _PANEL_DAY[step % len(_PANEL_DAY)]
            step += 1
            if report is None:
                await device.send(None)
                continue
            address, flags = report
            component_type = 30 if address == _HEAT else 40
            await device.send(
                panel_sim.component(device, address, flags, component_type, description="图书馆")
            )
    except ConnectionError:
        log.info("demo panel: the gateway closed the connection")
    finally:
        await device.close()


async def run_demo(
    data_dir: Path, api_port: int | None, host: str, broker_kind: str = "auto", period_s: float = 5.0
) -> int:
    broker = start_local_broker(data_dir / "broker", prefer=broker_kind)
    token = secrets.token_urlsafe(24)
    port = api_port or 8080
    config = demo_config(data_dir, broker.port, port, token, broker.mqtt_version, free_port())
    config.api.host = host
    write_demo_plans(config.storage.sqlite_path.parent / "plans")
    config_path = write_demo_config(config, data_dir)
    gateway = Gateway(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, gateway.stop)
    stop_simulation = threading.Event()
    run_task = asyncio.create_task(gateway.run())
    fleet: Fleet | None = None
    simulator: threading.Thread | None = None
    panel: asyncio.Task[None] | None = None
    try:
        await asyncio.wait(
            {run_task, asyncio.create_task(gateway.ready.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if run_task.done():
            return run_task.result() or 1
        fleet = Fleet("demo", "127.0.0.1", broker.port, client_id="demo-fleet")
        simulator = threading.Thread(target=_simulate, args=(fleet, stop_simulation, period_s), daemon=True)
        simulator.start()
        assert config.gb26875 is not None
        panel = asyncio.create_task(_simulate_panel(config.gb26875.port, period_s), name="demo-panel")
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(
            f"\nCampus Safety Gateway demo is running ({broker.implementation} broker on port {broker.port}).\n"
            f"  Live page:       http://{shown_host}:{port}/#token={token}\n"
            f"  Operator token:  {token}\n"
            f"  API docs:        http://{shown_host}:{port}/docs\n"
            f"  Data:            {data_dir}\n"
            f"  Config:          {config_path}\n"
            f"  Other commands:  campus-gateway report monthly --month YYYY-MM --config {config_path}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        await run_task
        return 0
    finally:
        stop_simulation.set()
        if panel is not None:
            panel.cancel()
            try:
                await panel
            except asyncio.CancelledError:
                pass
            except Exception:  # the simulated panel must not turn a clean Ctrl-C into a failure
                log.exception("demo panel stopped with an error")
        if simulator is not None:
            simulator.join(timeout=10)
        if fleet is not None:
            fleet.close()
        if not run_task.done():
            gateway.stop()
            await run_task
        broker.stop()
        print("demo stopped", flush=True)


def write_demo_config(config: GatewayConfig, data_dir: Path) -> Path:
    """The demo's config as a file, so `report`, `backup` and `check-config` can be pointed at it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "gateway.yaml"
    body = yaml.safe_dump(
        config.model_dump(mode="json", exclude_defaults=True), allow_unicode=True, sort_keys=False
    )
    path.write_text(
        f"# Written by `campus-gateway demo` at each start; ports change between runs.\n{body}", "utf-8"
    )
    return path


def pick_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()
