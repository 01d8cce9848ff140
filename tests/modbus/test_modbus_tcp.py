"""The driver against real pymodbus TCP servers on loopback, driven by simulator scenarios."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from modbus_support import running_driver, tcp_device, wait_until

from analytics.records import DeviceState
from drivers.modbus.registers import load_model, load_models
from simulators.modbus_sim import ModbusSimulator, SimulatedDevice

MODELS = load_models()


@contextlib.asynccontextmanager
async def simulator(*models: str, port: int = 0) -> AsyncIterator[tuple[ModbusSimulator, int]]:
    """Devices of the given models as unit ids 1, 2, ... on one loopback TCP port."""
    sim = ModbusSimulator([SimulatedDevice(MODELS[m], unit) for unit, m in enumerate(models, 1)])
    bound = await sim.serve_tcp(port=port)
    try:
        yield sim, bound
    finally:
        await sim.stop()


EFM = {"efm-1": "electrical_fire"}


async def test_both_builtin_models_decode_end_to_end() -> None:
    async with simulator("generic_efm4", "generic_chem_cabinet") as (sim, port):
        efm, cabinet = sim[1], sim[2]
        efm.values |= {"residual_current_ma_2": 87, "temp_c_3": -12.3, "current_a_1": 31.7}
        cabinet.values |= {"voc_ppm": 12.75, "lel_pct": 7.5, "temperature_c": -4.2, "humidity_pct": 61.3}
        cabinet.flags |= {"fan": True, "door": False, "lock_a": True, "lock_b": False}
        devices = [
            tcp_device("efm-1", "generic_efm4", port, 1),
            tcp_device("cab-1", "generic_chem_cabinet", port, 2),
        ]
        async with running_driver(devices, EFM | {"cab-1": "chem_cabinet"}) as run:
            await wait_until(
                lambda: "voc_ppm" in run.sink.latest("cab-1") and "temp_c_3" in run.sink.latest("efm-1")
            )
            stats = run.driver.stats()
        got = run.sink.latest("efm-1")
        assert (got["residual_current_ma_2"], got["residual_current_ma"]) == (87, 87)
        assert got["temp_c_3"] == pytest.approx(-12.3)
        assert got["current_a_1"] == pytest.approx(31.7)
        got = run.sink.latest("cab-1")
        assert got["voc_ppm"] == pytest.approx(12.75)
        assert (got["lel_pct"], got["temperature_c"], got["humidity_pct"]) == pytest.approx((7.5, -4.2, 61.3))
        assert (got["fan_on"], got["door_open"], got["lock_a"], got["lock_b"]) == (1.0, 0.0, 1.0, 0.0)
        # Coalescing: the EFM4 map is one request per poll, the cabinet's one per table (3).
        assert stats["efm-1"]["requests"] == stats["efm-1"]["polls"]
        assert stats["cab-1"]["requests"] == 3 * stats["cab-1"]["polls"]
        assert run.sink.states("efm-1")[0].state is DeviceState.ONLINE


async def test_leakage_rising_past_300_ma_raises_the_alarm() -> None:
    async with (
        simulator("generic_efm4") as (sim, port),
        running_driver([tcp_device("efm-1", "generic_efm4", port)], EFM) as run,
    ):
        await wait_until(lambda: bool(run.sink.values("efm-1", "residual_current_ma")))
        sim[1].play("leakage_rising", channel=3, from_ma=200, rate_ma_per_s=400)
        await wait_until(lambda: bool(run.sink.events("efm-1", "leakage_alarm")))
        await wait_until(lambda: sum(v >= 300 for v in run.sink.values("efm-1", "residual_current_ma")) >= 3)
        sim[1].calm()
        sim[1].values["residual_current_ma_3"] = 40
        sim[1].flags["leakage_alarm_3"] = False
        await wait_until(lambda: bool(run.sink.events("efm-1", "leakage_alarm_clear")))
    (alarm,) = run.sink.events("efm-1", "leakage_alarm")
    assert alarm.attrs == {"channel": 3, "flag": "leakage_alarm_3"}


async def test_cable_overheating_and_sensor_fault() -> None:
    async with (
        simulator("generic_efm4") as (sim, port),
        running_driver([tcp_device("efm-1", "generic_efm4", port)], EFM) as run,
    ):
        sim[1].play("cable_overheating", channel=2, from_c=60, rate_c_per_s=40)
        sim[1].play("sensor_fault", index=5)
        await wait_until(lambda: bool(run.sink.events("efm-1", "overtemp_alarm")))
        await wait_until(lambda: bool(run.sink.events("efm-1", "fault")))
    assert max(run.sink.values("efm-1", "temp_c_2")) >= 70
    assert run.sink.events("efm-1", "fault")[0].attrs == {
        "channel": 2,
        "sensor": "temperature",
        "flag": "temp_sensor_fault_2",
    }


async def test_chemical_leak_and_door_events() -> None:
    async with (
        simulator("generic_chem_cabinet") as (sim, port),
        running_driver([tcp_device("cab-1", "generic_chem_cabinet", port)], {"cab-1": "chem_cabinet"}) as run,
    ):
        await wait_until(lambda: bool(run.sink.values("cab-1", "door_open")))
        sim[1].flags["door"] = True
        sim[1].play("chem_leak", from_ppm=40, rate_ppm_per_s=50)
        await wait_until(lambda: bool(run.sink.events("cab-1", "leak_alarm")))
        await wait_until(lambda: bool(run.sink.events("cab-1", "door_opened")))
    assert max(run.sink.values("cab-1", "voc_ppm")) >= 50


@pytest.mark.parametrize(("code", "retried"), [(2, False), (4, False), (6, True)])
async def test_exception_responses_are_counted_by_code_and_take_the_device_offline(
    code: int, retried: bool
) -> None:
    async with simulator("generic_efm4") as (sim, port):
        devices = [tcp_device("efm-1", "generic_efm4", port, retries=1)]
        async with running_driver(devices, EFM) as run:
            await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE)
            sim[1].play("exception", code=code)
            await wait_until(lambda: run.sink.state("efm-1") is DeviceState.OFFLINE)
            sim[1].calm()
            await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE)
            stats = run.driver.stats()["efm-1"]
    assert run.sink.states("efm-1")[1].reason == f"2 failed polls: exception code {code}"
    assert stats[f"exception_{code}"] == stats["exceptions"] >= 2
    assert stats["failed_polls"] >= 2
    # Busy (6) is worth asking again at once; illegal address (2) or device failure (4) are not.
    assert (stats["exceptions"] >= 2 * stats["failed_polls"]) is retried


async def test_unplugged_device_times_out_goes_offline_and_comes_back() -> None:
    async with (
        simulator("generic_efm4") as (sim, port),
        running_driver([tcp_device("efm-1", "generic_efm4", port)], EFM) as run,
    ):
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE)
        sim[1].play("unplugged")
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.OFFLINE)
        assert run.driver.stats()["efm-1"]["online"] is False
        sim[1].calm()
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE)
        stats = run.driver.stats()["efm-1"]
    assert run.sink.states("efm-1")[1].reason.startswith("2 failed polls: timeout")
    assert stats["timeouts"] >= 2
    assert stats["online"] is True


async def test_reconnects_after_the_server_goes_away() -> None:
    async with (
        simulator("generic_efm4") as (sim, port),
        running_driver([tcp_device("efm-1", "generic_efm4", port)], EFM) as run,
    ):
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE)
        await sim.stop()
        await wait_until(lambda: run.sink.state("efm-1") is DeviceState.OFFLINE)
        async with simulator("generic_efm4", port=port):
            await wait_until(lambda: run.sink.state("efm-1") is DeviceState.ONLINE, timeout_s=5)
        stats = run.driver.stats()["efm-1"]
    assert stats["disconnects"] >= 2
    assert [s.state for s in run.sink.states("efm-1")] == [
        DeviceState.ONLINE,
        DeviceState.OFFLINE,
        DeviceState.ONLINE,
    ]


async def test_a_slow_device_does_not_delay_devices_on_other_endpoints() -> None:
    async with (
        simulator("generic_efm4") as (slow_sim, slow_port),
        simulator("generic_efm4") as (_, fast_port),
    ):
        slow_sim[1].play("slow", delay_s=0.25)
        devices = [
            tcp_device("slow", "generic_efm4", slow_port, timeout_s=1.0),
            tcp_device("fast", "generic_efm4", fast_port),
        ]
        async with running_driver(devices, {"slow": "electrical_fire", "fast": "electrical_fire"}) as run:
            await asyncio.sleep(1.5)
            stats = run.driver.stats()
    # 0.1 s interval: about 15 polls in 1.5 s for the fast device; the slow one manages about 6.
    assert stats["fast"]["good_reads"] >= 12
    assert stats["slow"]["good_reads"] <= 7
    assert stats["slow"]["last_cycle_s"] >= 0.25


async def test_a_new_model_needs_only_a_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "acme_th20.yaml").write_text(
        """
model: acme_th20
kind: temperature
description: a vendor's room heat sensor, low word first
word_order: little
values:
  - {metric: temperature_c, function: holding, address: 100, type: f32}
  - {metric: humidity_pct, function: holding, address: 102, type: i32, scale: 0.01}
flags:
  - {name: overheat, function: holding, address: 104, bit: 15, event_on: heat_alarm, event_off: heat_alarm_clear}
"""
    )
    sim = ModbusSimulator([SimulatedDevice(load_model(tmp_path / "acme_th20.yaml"), 7)])
    port = await sim.serve_tcp()
    sim[7].values |= {"temperature_c": 58.25, "humidity_pct": 33.71}
    sim[7].flags["overheat"] = True
    try:
        devices = [tcp_device("th-1", "acme_th20", port, unit_id=7)]
        async with running_driver(devices, {"th-1": "temperature"}, models_dir=tmp_path) as run:
            await wait_until(lambda: bool(run.sink.events("th-1", "heat_alarm")))
    finally:
        await sim.stop()
    assert run.sink.latest("th-1") == pytest.approx({"temperature_c": 58.25, "humidity_pct": 33.71})
