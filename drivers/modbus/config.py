"""Modbus settings as the gateway's config file declares them, validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TcpTransport(BaseModel):
    """Modbus TCP: a device with its own Ethernet port, or a TCP-to-RS-485 gateway."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["tcp"]
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.host}:{self.port}"


class RtuTransport(BaseModel):
    """Modbus RTU on a serial line (RS-485); every device on one port shares that bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["rtu"]
    port: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8

    @property
    def endpoint(self) -> str:
        return f"rtu://{self.port}"


Transport = Annotated[TcpTransport | RtuTransport, Field(discriminator="type")]


class ModbusDeviceSettings(BaseModel):
    """One polled device; `id` refers to an inventory entry, `model` to a register-map YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    model: str = Field(min_length=1)
    transport: Transport
    unit_id: int = Field(default=1, ge=0, le=255)
    poll_interval_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=1.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10, description="extra attempts per request")
    offline_after_failures: int = Field(default=3, ge=1, description="failed polls in a row")


class ModbusSettings(BaseModel):
    """The `modbus` section of the gateway config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models_dir: Path | None = Field(default=None, description="extra device-model YAML files")
    devices: list[ModbusDeviceSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_devices(self) -> ModbusSettings:
        ids: set[str] = set()
        addresses: dict[tuple[str, int], str] = {}
        first_on_endpoint: dict[str, ModbusDeviceSettings] = {}
        for index, device in enumerate(self.devices):
            here = f"devices[{index}] ({device.id})"
            if device.id in ids:
                raise ValueError(f"{here}.id: device id is listed twice")
            ids.add(device.id)
            endpoint = device.transport.endpoint
            if (clash := addresses.get((endpoint, device.unit_id))) is not None:
                raise ValueError(f"{here}.unit_id: {endpoint} unit {device.unit_id} is {clash}")
            addresses[(endpoint, device.unit_id)] = device.id
            # One client serves an endpoint, so its line settings and response timeout are shared.
            first = first_on_endpoint.setdefault(endpoint, device)
            if first.transport != device.transport:
                raise ValueError(f"{here}.transport: line settings differ from {first.id}")
            if first.timeout_s != device.timeout_s:
                raise ValueError(f"{here}.timeout_s: differs from {first.id} on {endpoint}")
        return self
