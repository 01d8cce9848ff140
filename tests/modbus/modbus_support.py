"""Helpers for the Modbus tests: a collecting sink, a running driver, waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from analytics.devices import DeviceSpec, Inventory
from analytics.records import DeviceEvent, DeviceState, Reading, Record, StatusChange
from drivers.errors import PayloadError
from drivers.modbus import ModbusDriver, ModbusSettings


class CollectingSink:
    """A ModbusSink that keeps everything, with the queries the tests ask."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.rejected: list[PayloadError] = []

    def submit(self, records: Sequence[Record]) -> None:
        self.records.extend(records)

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None:
        self.rejected.append(error)

    def values(self, device_id: str, metric: str) -> list[float]:
        return [
            r.value
            for r in self.records
            if isinstance(r, Reading) and r.device_id == device_id and r.metric == metric
        ]

    def latest(self, device_id: str) -> dict[str, float]:
        latest: dict[str, float] = {}
        for r in self.records:
            if isinstance(r, Reading) and r.device_id == device_id:
                latest[r.metric] = r.value
        return latest

    def events(self, device_id: str, name: str | None = None) -> list[DeviceEvent]:
        return [
            r
            for r in self.records
            if isinstance(r, DeviceEvent) and r.device_id == device_id and (name is None or r.name == name)
        ]

    def states(self, device_id: str) -> list[StatusChange]:
        return [r for r in self.records if isinstance(r, StatusChange) and r.device_id == device_id]

    def state(self, device_id: str) -> DeviceState | None:
        states = self.states(device_id)
        return states[-1].state if states else None


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `condition` every 20 ms; fail the test if it is not true within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)


def tcp_device(device_id: str, model: str, port: int, unit_id: int = 1, **extra: Any) -> dict[str, Any]:
    """A fast-polling device entry on a loopback TCP simulator."""
    return _fast_device(device_id, model, {"type": "tcp", "host": "127.0.0.1", "port": port}, unit_id, extra)


def rtu_device(device_id: str, model: str, port: str, unit_id: int, **extra: Any) -> dict[str, Any]:
    """A fast-polling device entry on one end of a serial pair."""
    transport = {"type": "rtu", "port": port, "baudrate": 19200, "parity": "N", "stopbits": 1}
    return _fast_device(device_id, model, transport, unit_id, extra)


def _fast_device(
    device_id: str, model: str, transport: dict[str, Any], unit_id: int, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": device_id,
        "model": model,
        "transport": transport,
        "unit_id": unit_id,
        "poll_interval_s": 0.1,
        "timeout_s": 0.3,
        "retries": 0,
        "offline_after_failures": 2,
    } | extra


@dataclass
class RunningDriver:
    driver: ModbusDriver
    sink: CollectingSink


@contextlib.asynccontextmanager
async def running_driver(
    devices: list[dict[str, Any]], kinds: dict[str, str], models_dir: Path | None = None
) -> AsyncIterator[RunningDriver]:
    """Build the driver from config dicts (as the gateway would), run it, cancel it after."""
    settings = ModbusSettings.model_validate({"models_dir": models_dir, "devices": devices})
    inventory = Inventory(DeviceSpec.model_validate({"id": i, "kind": k}) for i, k in kinds.items())
    sink = CollectingSink()
    driver = ModbusDriver(settings, inventory, sink)
    task = asyncio.create_task(driver.run())
    try:
        yield RunningDriver(driver, sink)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class SerialPair:
    """Two linked pseudo-terminals: the simulator opens `device_end`, the driver `gateway_end`."""

    device_end: str
    gateway_end: str
