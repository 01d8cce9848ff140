"""A campus with one panel behind one transmission device, for mapping and receiver tests."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from analytics.devices import DeviceSpec, Inventory, PanelPoint
from analytics.records import DeviceKind
from drivers.gb26875.config import Gb26875Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEVICE_ADDRESS = 0x000379  # the standard's example transmission device
CENTRE_ADDRESS = 0x015B38


def point(transmitter: str = "panel-a", address: int | str = "10-2", **extra: Any) -> PanelPoint:
    return PanelPoint.model_validate(
        {
            "transmitter": transmitter,
            "system_type": 1,
            "system_address": 1,
            "component_address": address,
            **extra,
        }
    )


def panel_devices(transmitter: str = "panel-a") -> list[DeviceSpec]:
    """The transmission device, the panel, and one component of each kind the tests use."""
    gb = {"protocol": "gb26875"}
    return [
        DeviceSpec(id=transmitter, kind=DeviceKind.FIRE_PANEL, building="b1", reporting_interval_s=30, **gb),
        DeviceSpec(
            id=f"{transmitter}-ctrl",
            kind=DeviceKind.FIRE_PANEL,
            gb26875=PanelPoint(transmitter=transmitter, system_address=1),
            **gb,
        ),
        DeviceSpec(
            id=f"{transmitter}-smoke-1",
            kind=DeviceKind.SMOKE,
            building="b1",
            zone="z1",
            gb26875=point(transmitter, "10-2", component_type=40),
            **gb,
        ),
        DeviceSpec(
            id=f"{transmitter}-smoke-2",
            kind=DeviceKind.SMOKE,
            building="b1",
            zone="z1",
            gb26875=point(transmitter, "10-3"),
            **gb,
        ),
        DeviceSpec(
            id=f"{transmitter}-heat-1", kind=DeviceKind.TEMPERATURE, gb26875=point(transmitter, "11-1"), **gb
        ),
        DeviceSpec(
            id=f"{transmitter}-efm-1",
            kind=DeviceKind.ELECTRICAL_FIRE,
            model="acme-efm",
            gb26875=point(transmitter, "20-1"),
            **gb,
        ),
    ]


def settings(*transmitters: tuple[str, int], **extra: Any) -> Gb26875Settings:
    pairs = transmitters or (("panel-a", DEVICE_ADDRESS),)
    return Gb26875Settings.model_validate(
        {
            "centre_address": CENTRE_ADDRESS,
            "transmitters": [
                {"id": tid, "address": address, "model": "bcd" if tid.endswith("bcd") else ""}
                for tid, address in pairs
            ],
            "transmitter_models": {"bcd": {"bcd_time": True, "vendor_types": {200: 4}}},
            "component_models": {
                # A vendor electrical-fire module: residual current as user-defined analog type 128.
                "acme-efm": {
                    "analog": {
                        128: {"metric": "residual_current_ma", "scale": 1.0},
                        3: {"metric": "temp_c_1", "scale": 0.1},
                    }
                }
            },
            **extra,
        }
    )


def inventory(*transmitters: str) -> Inventory:
    devices: list[DeviceSpec] = []
    for tid in transmitters or ("panel-a",):
        devices.extend(panel_devices(tid))
    return Inventory(devices)
