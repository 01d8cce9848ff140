"""The driver as an RTU master on a real serial line: a socat pty pair, two slaves on one bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from modbus_support import RunningDriver, SerialPair, rtu_device, running_driver, wait_until

from analytics.records import DeviceState
from drivers.modbus.registers import load_models
from simulators.modbus_sim import ModbusSimulator, SimulatedDevice

MODELS = load_models()
KINDS = {"efm-1": "electrical_fire", "cab-1": "chem_cabinet"}


@contextlib.asynccontextmanager
async def bus(pair: SerialPair) -> AsyncIterator[tuple[ModbusSimulator, RunningDriver]]:
    """An EFM4 as unit 1 and a chemical cabinet as unit 2 on one line, and the driver polling both."""
    sim = ModbusSimulator(
        [SimulatedDevice(MODELS["generic_efm4"], 1), SimulatedDevice(MODELS["generic_chem_cabinet"], 2)]
    )
    await sim.serve_rtu(pair.device_end, baudrate=19200)
    devices = [
        rtu_device("efm-1", "generic_efm4", pair.gateway_end, 1),
        rtu_device("cab-1", "generic_chem_cabinet", pair.gateway_end, 2),
    ]
    try:
        async with running_driver(devices, KINDS) as run:
            yield sim, run
    finally:
        await sim.stop()


async def test_rtu_reads_both_slaves_on_one_bus(serial_pair: SerialPair) -> None:
    async with bus(serial_pair) as (sim, run):
        sim[1].values |= {"residual_current_ma_4": 512, "temp_c_1": -5.5}
        sim[2].values |= {"voc_ppm": 61.5, "lel_pct": 26.0}
        sim[2].flags["lock_b"] = True
        await wait_until(lambda: run.sink.latest("cab-1").get("voc_ppm") == 61.5)
        await wait_until(lambda: run.sink.latest("efm-1").get("residual_current_ma") == 512)
        stats = run.driver.stats()
    assert run.sink.latest("efm-1")["temp_c_1"] == pytest.approx(-5.5)
    assert (run.sink.latest("cab-1")["lel_pct"], run.sink.latest("cab-1")["lock_b"]) == (26.0, 1.0)
    for device in ("efm-1", "cab-1"):
        assert stats[device]["timeouts"] == stats[device]["crc_errors"] == 0


async def test_a_slow_slave_holds_its_bus(serial_pair: SerialPair) -> None:
    async with bus(serial_pair) as (sim, run):
        await wait_until(lambda: run.sink.state("cab-1") is DeviceState.ONLINE)
        sim[1].play("slow", delay_s=0.2)
        before = run.driver.stats()["cab-1"]["good_reads"]
        await asyncio.sleep(1.0)
        stats = run.driver.stats()
    # Alone, the cabinet would be read 10 times a second; sharing the line with a device that
    # takes 0.2 s per answer, each of its polls waits for the other's.
    assert 2 <= stats["cab-1"]["good_reads"] - before <= 6
    assert stats["efm-1"]["last_cycle_s"] >= 0.2


async def test_crc_errors_are_counted_and_take_the_slave_offline(serial_pair: SerialPair) -> None:
    async with bus(serial_pair) as (sim, run):
        await wait_until(lambda: run.sink.state("cab-1") is DeviceState.ONLINE)
        sim[2].play("corrupt_crc")
        await wait_until(lambda: run.sink.state("cab-1") is DeviceState.OFFLINE)
        sim[2].calm()
        await wait_until(lambda: run.sink.state("cab-1") is DeviceState.ONLINE)
        stats = run.driver.stats()
    assert run.sink.states("cab-1")[1].reason.startswith("2 failed polls: crc")
    assert stats["cab-1"]["crc_errors"] >= 2
    assert stats["efm-1"]["crc_errors"] == 0
    assert [s.state for s in run.sink.states("efm-1")] == [DeviceState.ONLINE]


async def test_an_unplugged_slave_times_out_while_its_neighbour_stays_online(serial_pair: SerialPair) -> None:
    async with bus(serial_pair) as (sim, run):
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE)
        sim[1].play("unplugged")
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.OFFLINE)
        sim[1].calm()
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE)
        stats = run.driver.stats()
    assert stats["efm-1"]["timeouts"] >= 2
    assert [s.state for s in run.sink.states("cab-1")] == [DeviceState.ONLINE]
