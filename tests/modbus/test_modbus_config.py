"""Settings validation and binding devices to the inventory and the models."""

from __future__ import annotations

from typing import Any

import pytest
from modbus_support import CollectingSink
from pydantic import ValidationError

from analytics.devices import DeviceSpec, Inventory
from analytics.records import DeviceKind
from drivers.modbus.config import ModbusSettings
from drivers.modbus.driver import ModbusDriver, bind_devices
from drivers.modbus.errors import SettingsError
from drivers.modbus.registers import load_models

BUS = {"type": "rtu", "port": "/dev/ttyUSB0", "baudrate": 9600}


def entry(device_id: str, unit_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": device_id, "model": "generic_efm4", "transport": BUS, "unit_id": unit_id} | extra


def test_defaults() -> None:
    settings = ModbusSettings.model_validate({"devices": [entry("efm-1")]})
    device = settings.devices[0]
    assert (device.poll_interval_s, device.retries, device.offline_after_failures) == (5.0, 1, 3)
    assert device.transport.endpoint == "rtu:///dev/ttyUSB0"


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ([entry("a"), entry("a", 2)], "devices[1] (a).id: device id is listed twice"),
        ([entry("a"), entry("b")], "devices[1] (b).unit_id: rtu:///dev/ttyUSB0 unit 1 is a"),
        (
            [entry("a"), entry("b", 2, transport=BUS | {"baudrate": 19200})],
            "devices[1] (b).transport: line settings differ from a",
        ),
        ([entry("a"), entry("b", 2, timeout_s=3)], "devices[1] (b).timeout_s: differs from a"),
        ([entry("a", transport={"type": "tcp", "host": "h", "port": 70000})], "port"),
        ([entry("a", transport={"type": "can"})], "transport"),
        ([entry("a", poll_interval_s=0)], "poll_interval_s"),
    ],
)
def test_invalid_settings_say_which_device_and_field(devices: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(
        ValidationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        ModbusSettings.model_validate({"devices": devices})


@pytest.mark.parametrize(
    ("device", "kind", "message"),
    [
        (entry("ghost"), None, r"modbus.devices\[0\] \(ghost\).id: no device with this id"),
        (entry("a", model="nope"), "electrical_fire", r"\.model: unknown model 'nope' \(known: "),
        (entry("a", model="generic_chem_cabinet"), "electrical_fire", "is for kind 'chem_cabinet'"),
    ],
)
def test_binding_checks_inventory_and_models(device: dict[str, Any], kind: str | None, message: str) -> None:
    settings = ModbusSettings.model_validate({"devices": [device]})
    inventory = Inventory([DeviceSpec.model_validate({"id": "a", "kind": kind})] if kind else [])
    with pytest.raises(SettingsError, match=message):
        bind_devices(settings, inventory, load_models())


def test_the_driver_is_built_before_the_event_loop_runs() -> None:
    settings = ModbusSettings.model_validate({"devices": [entry("a"), entry("b", 2)]})
    inventory = Inventory(DeviceSpec(id=i, kind=DeviceKind.ELECTRICAL_FIRE) for i in ("a", "b"))
    driver = ModbusDriver(settings, inventory, CollectingSink())
    assert driver.stats()["b"] == driver.stats()["a"]
    assert (driver.stats()["a"]["polls"], driver.stats()["a"]["online"]) == (0, False)
