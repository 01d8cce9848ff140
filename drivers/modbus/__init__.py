"""Modbus TCP and RTU driver: YAML register maps, read coalescing, concurrent polling.

`ModbusSettings` is the config section, `ModbusDriver` the component the gateway runs, and
`load_models` reads the built-in and user device models.
"""

from drivers.modbus.config import ModbusDeviceSettings, ModbusSettings, RtuTransport, TcpTransport
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.errors import ModbusError, ModelError, SettingsError
from drivers.modbus.registers import DeviceModel, load_models

__all__ = [
    "DeviceModel",
    "ModbusDeviceSettings",
    "ModbusDriver",
    "ModbusError",
    "ModbusSettings",
    "ModelError",
    "RtuTransport",
    "SettingsError",
    "TcpTransport",
    "load_models",
]
