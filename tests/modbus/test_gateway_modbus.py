"""Modbus through the whole gateway: a real pymodbus server's leakage becomes an API alert."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from drivers.modbus import ModbusSettings
from drivers.modbus.registers import load_models
from simulators.modbus_sim import ModbusSimulator, SimulatedDevice
from tests.conftest import Broker
from tests.harness import gateway_config, running_gateway
from tests.modbus.modbus_support import tcp_device


async def test_residual_current_past_300_ma_raises_electrical_leakage_and_unplugging_goes_offline(
    mosquitto: Broker, tmp_path: Path
) -> None:
    sim = ModbusSimulator([SimulatedDevice(load_models()["generic_efm4"], 1)])
    port = await sim.serve_tcp(port=0)
    try:
        device = DeviceSpec(id="efm-1", kind=DeviceKind.ELECTRICAL_FIRE, building="综合楼", zone="配电室",
                            protocol="modbus", model="generic_efm4")  # fmt: skip
        config = gateway_config(mosquitto, tmp_path / "gw.db", [device])
        config.modbus = ModbusSettings.model_validate(
            {"devices": [{"id": "efm-1", "model": "generic_efm4", "unit_id": 1, "poll_interval_s": 0.1,
                          "timeout_s": 0.3, "retries": 0, "offline_after_failures": 2,
                          "transport": {"type": "tcp", "host": "127.0.0.1", "port": port}}]}
        )  # fmt: skip
        async with running_gateway(config) as gw:
            await gw.wait_for(lambda: gw.is_online("efm-1") is True, what="first good poll")
            sim[1].play("leakage_rising", channel=2, from_ma=200, rate_ma_per_s=400)
            leak = await gw.wait_for_alert("electrical_leakage", "efm-1")
            assert leak["severity"] == "major" and leak["title"]["zh-CN"] == "电气剩余电流超限"
            health = (await gw.http.get("/api/v1/health")).json()
            assert health["modbus"]["efm-1"]["good_reads"] >= 3
            sim[1].play("unplugged")
            offline = await gw.wait_for_alert("device_offline", "efm-1")
            assert "timeout" in offline["details"]["reason"]
    finally:
        await sim.stop()


async def test_a_nan_register_is_dead_lettered_and_every_other_reading_is_stored(
    mosquitto: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 4: a NaN f32 voc_ppm used to fail the store's batch and lose other devices' readings."""
    models = load_models()
    cabinet = SimulatedDevice(models["generic_chem_cabinet"], 1, values={"voc_ppm": math.nan})
    sim = ModbusSimulator([cabinet, SimulatedDevice(models["generic_efm4"], 2)])
    port = await sim.serve_tcp(port=0)
    try:
        devices = [
            DeviceSpec(
                id="cab-1", kind=DeviceKind.CHEM_CABINET, protocol="modbus", model="generic_chem_cabinet"
            ),
            DeviceSpec(id="efm-1", kind=DeviceKind.ELECTRICAL_FIRE, protocol="modbus", model="generic_efm4"),
        ]
        config = gateway_config(mosquitto, tmp_path / "gw.db", devices)
        config.modbus = ModbusSettings.model_validate(
            {"devices": [tcp_device("cab-1", "generic_chem_cabinet", port, 1),
                         tcp_device("efm-1", "generic_efm4", port, 2)]}
        )  # fmt: skip
        async with running_gateway(config) as gw:
            store, modbus = gw.gateway.store, gw.gateway.modbus
            assert modbus is not None
            await gw.wait_for(
                lambda: all(int(stats["good_reads"]) >= 3 for stats in modbus.stats().values()),
                what="three polls of each device",
            )
            gw.flush_store()
            dead = store.dead_letters("non_finite")
            assert dead and {d.device_id for d in dead} == {"cab-1"}
            assert "voc_ppm" in dead[0].detail and "nan" in dead[0].detail
            since, until = 0.0, time.time() + 60
            assert store.readings("cab-1", "voc_ppm", since, until) == []
            assert len(store.readings("cab-1", "lel_pct", since, until)) >= 3, "the rest of the poll is kept"
            assert len(store.readings("efm-1", "residual_current_ma_1", since, until)) >= 3
            assert store.write_errors == 0
            assert gw.gateway.counters.get("dead_letters", "non_finite") >= 3
            assert modbus.stats()["cab-1"]["non_finite"] >= 3
        logged = [r for r in caplog.records if "non_finite" in r.getMessage() and "cab-1" in r.getMessage()]
        assert len(logged) == 1, "one log line per device and reason a minute, not one per poll"
    finally:
        await sim.stop()
