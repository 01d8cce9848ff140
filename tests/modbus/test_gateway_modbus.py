"""Modbus through the whole gateway: a real pymodbus server's leakage becomes an API alert."""

from __future__ import annotations

from pathlib import Path

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from drivers.modbus import ModbusSettings
from drivers.modbus.registers import load_models
from simulators.modbus_sim import ModbusSimulator, SimulatedDevice
from tests.conftest import Broker
from tests.harness import gateway_config, running_gateway


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
