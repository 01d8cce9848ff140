"""Panel objects -> normalized records, by the mapping in config; fire_alarm applies unchanged."""

from __future__ import annotations

import pytest

from analytics.devices import DeviceSpec, Inventory, PanelPoint
from analytics.records import DeviceEvent, DeviceKind, Reading
from analytics.rules.defaults import default_rules
from analytics.rules.engine import RuleEngine
from drivers.gb26875.errors import RejectReason
from drivers.gb26875.frame import TimeLabel, decode_frame
from drivers.gb26875.mapping import MappingError, PanelMapper
from drivers.gb26875.units import (
    ComponentAnalog,
    ComponentStatus,
    DataUnit,
    OpaqueUnit,
    SystemOperation,
    SystemStatus,
    TransmitterStatus,
    decode_unit,
    unit_of,
)
from tests.gb26875 import support
from tests.gb26875 import vectors as v

AT = TimeLabel(2, 58, 9, 26, 9, 12)
NOW = AT.to_timestamp(support.SHANGHAI) + 1.0


@pytest.fixture
def mapper() -> PanelMapper:
    return PanelMapper(support.inventory(), support.settings(), support.SHANGHAI)


def run(mapper: PanelMapper, unit: DataUnit | OpaqueUnit, now: float = NOW) -> tuple[list, list]:  # type: ignore[type-arg]
    transmitter = mapper.transmitter(support.DEVICE_ADDRESS)
    assert transmitter is not None
    return mapper.map_unit(transmitter, unit, b"raw", now)


def smoke(flags: int, address: str | int = 0x0002000A, component_type: int = 40) -> DataUnit:
    if isinstance(address, str):
        zone, position = (int(p) for p in address.split("-"))
        address = zone | position << 16
    return unit_of(ComponentStatus(1, 1, component_type, address, flags, "三楼走廊", AT))


def names(records: list) -> list[str]:  # type: ignore[type-arg]
    return [r.name for r in records if isinstance(r, DeviceEvent)]


def test_standard_alarm_becomes_a_smoke_alarm_that_raises_fire_alarm(mapper: PanelMapper) -> None:
    unit = decode_unit(decode_frame(v.STANDARD_SMOKE_ALARM).data)
    records, rejected = run(mapper, unit)
    assert rejected == []
    (alarm, fault_clear) = records
    assert alarm == DeviceEvent(
        "panel-a-smoke-1",
        DeviceKind.SMOKE,
        "alarm",
        AT.to_timestamp(support.SHANGHAI),
        {"flags": ["fire_alarm"], "description": "", "panel_test_mode": True},
    )
    assert fault_clear.name == "fault_clear"
    engine = RuleEngine(default_rules())
    device = support.inventory().get("panel-a-smoke-1")
    assert device is not None
    signals = engine.evaluate(alarm, device)
    assert [(s.rule, s.raised) for s in signals] == [("fire_alarm", True)]


def test_restore_clears_once_and_repeats_raise_again(mapper: PanelMapper) -> None:
    assert names(run(mapper, smoke(0x0003))[0]) == ["alarm", "fault_clear"]
    assert names(run(mapper, smoke(0x0003))[0]) == ["alarm"]  # the panel re-reported: a repeat
    assert names(run(mapper, smoke(0x0001))[0]) == ["alarm_clear"]
    assert names(run(mapper, smoke(0x0001))[0]) == []


def test_fault_power_fault_and_shield_are_device_faults(mapper: PanelMapper) -> None:
    records, _ = run(mapper, smoke(0x0005))
    assert names(records) == ["alarm_clear", "fault"]
    assert names(run(mapper, smoke(0x0101))[0]) == ["fault"]
    records, _ = run(mapper, smoke(0x0009))
    assert records[0].attrs["flags"] == ["running", "shielded"]
    assert names(run(mapper, smoke(0x0001))[0]) == ["fault_clear"]


def test_reserved_component_bits_raise_nothing(mapper: PanelMapper) -> None:
    assert names(run(mapper, smoke(0xFE01))[0]) == ["alarm_clear", "fault_clear"]


def test_analog_values_become_readings_with_project_metrics(mapper: PanelMapper) -> None:
    # The electrical-fire module is at zone 20, position 1.
    unit = unit_of(
        ComponentAnalog(1, 1, 40, 0x0002000A, 3, 612, AT),
        ComponentAnalog(1, 1, 17, 20 | 1 << 16, 128, 320, AT),
    )
    records, rejected = run(mapper, unit)
    assert rejected == []
    ts = AT.to_timestamp(support.SHANGHAI)
    assert records == [
        Reading("panel-a-smoke-1", DeviceKind.SMOKE, "temperature_c", ts, pytest.approx(61.2)),  # type: ignore[arg-type]
        Reading("panel-a-efm-1", DeviceKind.ELECTRICAL_FIRE, "residual_current_ma", ts, 320.0),
    ]


def test_unmapped_analog_is_dead_lettered(mapper: PanelMapper) -> None:
    _, rejected = run(mapper, unit_of(ComponentAnalog(1, 1, 40, 0x0002000A, 12, 3, AT)))
    assert [r.reason_code for r in rejected] == [RejectReason.UNMAPPED_ANALOG]


def test_unknown_component_is_reported_with_a_readable_id(mapper: PanelMapper) -> None:
    records, rejected = run(mapper, smoke(0x0003, "99-7"))
    assert records == []
    (unknown,) = rejected
    assert unknown.reason_code is RejectReason.UNKNOWN_DEVICE
    assert unknown.device_id == "panel-a.s1-1.c99-7"


def test_component_type_mismatch(mapper: PanelMapper) -> None:
    _, rejected = run(mapper, smoke(0x0003, component_type=30))
    assert [r.reason_code for r in rejected] == [RejectReason.KIND_MISMATCH]


def test_fire_alarm_on_a_kind_without_an_alarm_event_is_dead_lettered_not_dropped(
    mapper: PanelMapper,
) -> None:
    records, rejected = run(mapper, smoke(0x0002, "11-1", component_type=31))
    assert names(records) == ["fault_clear"]
    assert [r.reason_code for r in rejected] == [RejectReason.UNMAPPED_STATUS]


def test_panel_reset_restores_its_fire_alarms(mapper: PanelMapper) -> None:
    run(mapper, smoke(0x0002))
    run(mapper, smoke(0x0002, "10-3"))
    records, _ = run(mapper, unit_of(SystemOperation(1, 1, 0x01, 7, AT)))
    assert [(r.device_id, r.name) for r in records] == [
        ("panel-a-ctrl", "operation"),
        ("panel-a-smoke-1", "alarm_clear"),
        ("panel-a-smoke-2", "alarm_clear"),
    ]
    assert records[0].attrs == {"system": "1-1", "operations": ["reset"], "operator": 7}


def test_system_power_faults_are_faults_of_the_panel(mapper: PanelMapper) -> None:
    records, _ = run(mapper, unit_of(SystemStatus(1, 1, 0x0201, AT)))
    assert [(r.device_id, r.name) for r in records] == [
        ("panel-a-ctrl", "alarm_clear"),
        ("panel-a-ctrl", "fault"),
    ]
    assert records[1].attrs["flags"] == ["running", "backup_power_fault"]


def test_system_not_in_the_inventory_reports_through_its_transmitter(mapper: PanelMapper) -> None:
    records, rejected = run(mapper, unit_of(SystemStatus(1, 9, 0x0003, AT)))
    assert rejected == [] and {r.device_id for r in records} == {"panel-a"}


def test_transmitter_main_power_fault(mapper: PanelMapper) -> None:
    unit = decode_unit(decode_frame(v.STANDARD_MAIN_POWER_FAULT).data)
    records, _ = run(mapper, unit)
    assert [(r.device_id, r.name) for r in records] == [("panel-a", "alarm_clear"), ("panel-a", "fault")]
    assert records[1].attrs == {"flags": ["main_power_fault"]}
    records, _ = run(mapper, unit_of(TransmitterStatus(0x01, AT)))
    assert names(records) == ["fault_clear"]


def test_vendor_units_are_kept_as_dead_letters(mapper: PanelMapper) -> None:
    _, rejected = run(mapper, OpaqueUnit(200, 1, b"\x01\x02\x03\x04"))
    assert [r.reason_code for r in rejected] == [RejectReason.VENDOR_TYPE]


def test_skewed_device_clock_is_replaced_by_receive_time(mapper: PanelMapper) -> None:
    # Flagging it (clock_skew on the transmission device) is the ingest validator's job: the
    # centre hands it `device_clock` with the transmission device's envelope.
    later = NOW + 3600
    unit = smoke(0x0003)
    records, _ = run(mapper, unit, now=later)
    assert records and all(r.ts == later for r in records)
    assert "clock_skew" not in names(records)
    assert mapper.device_clock(unit) == pytest.approx(NOW - 1, abs=1)
    records, _ = run(mapper, smoke(0x0001))
    assert all(r.ts != later for r in records)


def test_zone_position_addresses() -> None:
    assert support.point(address="10-2").component_address == 0x0002000A
    assert support.point(address=0x0002000A).component_address == 0x0002000A
    with pytest.raises(ValueError):
        support.point(address="70000-1")


def test_panel_point_requires_protocol_gb26875() -> None:
    with pytest.raises(ValueError):
        DeviceSpec(id="x", kind=DeviceKind.SMOKE, gb26875=PanelPoint(transmitter="t", system_address=1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"component_models": {"acme-efm": {"analog": {128: {"metric": "lel_pct"}}}}}, "not a metric"),
        (
            {
                "component_models": {
                    "acme-efm": {
                        "events": [{"event": "alarm", "clear": "alarm_clear", "flags": ["fire_alarm"]}]
                    }
                }
            },
            "not an event",
        ),
    ],
)
def test_mappings_are_checked_against_the_catalogue(change: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(MappingError, match=message):
        PanelMapper(support.inventory(), support.settings(**change), support.SHANGHAI)


def test_transmitter_must_be_a_fire_panel_in_the_inventory() -> None:
    devices = [d for d in support.panel_devices() if d.id != "panel-a"]
    with pytest.raises(MappingError, match="no device"):
        PanelMapper(Inventory(devices), support.settings(), support.SHANGHAI)
