"""Decoded panel objects -> the normalized records every other driver makes (pure, no I/O).

Which event a status flag raises and which metric an analog type feeds is config: a default
table per device kind (`DEFAULT_MAPPINGS`), overridden per inventory `model` under
`gb26875.component_models`. A component that is not in the inventory is reported as unknown;
the caller quarantines it and raises `unknown_device`, as the MQTT path does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from analytics.catalog import EVENTS, METRICS
from analytics.devices import DeviceSpec, Inventory
from analytics.ingest import clock_skewed
from analytics.records import DeviceEvent, DeviceKind, Reading, Record
from drivers.gb26875.config import (
    AnalogMapping,
    ComponentFlagName,
    EventMapping,
    Gb26875Settings,
    TransmitterModel,
)
from drivers.gb26875.errors import FrameRejected, RejectReason
from drivers.gb26875.flags import (
    ComponentFlag,
    SystemFlag,
    SystemOperationFlag,
    TransmitterFlag,
    TransmitterOperationFlag,
    flag_names,
)
from drivers.gb26875.frame import TimeLabel
from drivers.gb26875.units import (
    ComponentAnalog,
    ComponentStatus,
    DataUnit,
    InfoObject,
    OpaqueUnit,
    SystemOperation,
    SystemStatus,
    TransmitterOperation,
    TransmitterStatus,
)

K = DeviceKind
_FAULTS: list[ComponentFlagName] = ["fault", "power_fault", "shielded"]  # a shielded detector detects nothing


def _events(alarm: tuple[str, str] | None) -> list[EventMapping]:
    events = [EventMapping(event="fault", clear="fault_clear", flags=_FAULTS)]
    if alarm is not None:
        events.insert(0, EventMapping(event=alarm[0], clear=alarm[1], flags=["fire_alarm"]))
    return events


@dataclass(frozen=True, slots=True)
class ComponentMapping:
    """How one device's status flags and analog values become records."""

    events: tuple[EventMapping, ...]
    analog: Mapping[int, AnalogMapping]


_TEMPERATURE = AnalogMapping(metric="temperature_c", scale=0.1)  # analog type 3: 0.1 °C
# Analog types of GB/T 26875.3 table 19: 3 temperature (0.1 °C), 6 gas (0.1 %LEL), 9 current
# (0.1 A). Residual current in mA has no standard type; vendors use 128-255, mapped per model.
DEFAULT_MAPPINGS: dict[DeviceKind, ComponentMapping] = {
    K.SMOKE: ComponentMapping(tuple(_events(("alarm", "alarm_clear"))), {3: _TEMPERATURE}),
    K.TEMPERATURE: ComponentMapping(tuple(_events(None)), {3: _TEMPERATURE}),
    K.ELECTRICAL_FIRE: ComponentMapping(
        tuple(_events(("leakage_alarm", "leakage_alarm_clear"))),
        {3: AnalogMapping(metric="temp_c_1", scale=0.1), 9: AnalogMapping(metric="current_a_1", scale=0.1)},
    ),
    K.CHEM_CABINET: ComponentMapping(
        tuple(_events(("leak_alarm", "leak_alarm_clear"))),
        {3: _TEMPERATURE, 6: AnalogMapping(metric="lel_pct", scale=0.1)},
    ),
    K.PANIC: ComponentMapping(tuple(_events(None)), {}),
    K.GATE: ComponentMapping(tuple(_events(None)), {}),
    K.CAMERA: ComponentMapping((EventMapping(event="camera_fault", clear="camera_ok", flags=_FAULTS),), {}),
    K.FIRE_PANEL: ComponentMapping(tuple(_events(("alarm", "alarm_clear"))), {}),
}

_COMPONENT_FLAGS: dict[ComponentFlagName, ComponentFlag] = {
    "fire_alarm": ComponentFlag.FIRE_ALARM,
    "fault": ComponentFlag.FAULT,
    "shielded": ComponentFlag.SHIELDED,
    "supervisory": ComponentFlag.SUPERVISORY,
    "started": ComponentFlag.STARTED,
    "feedback": ComponentFlag.FEEDBACK,
    "delayed": ComponentFlag.DELAYED,
    "power_fault": ComponentFlag.POWER_FAULT,
}
# Flags that must reach a rule: set on a device whose mapping has no event for them, they are
# dead-lettered (`unmapped_status`) rather than dropped.
_MUST_MAP = (ComponentFlag.FIRE_ALARM, ComponentFlag.FAULT)
_SYSTEM_FAULTS = (
    SystemFlag.FAULT | SystemFlag.MAIN_POWER_FAULT | SystemFlag.BACKUP_POWER_FAULT | SystemFlag.BUS_FAULT
)
_TRANSMITTER_FAULTS = (
    TransmitterFlag.FAULT
    | TransmitterFlag.MAIN_POWER_FAULT
    | TransmitterFlag.BACKUP_POWER_FAULT
    | TransmitterFlag.CHANNEL_FAULT
    | TransmitterFlag.LINE_FAULT
)


class MappingError(ValueError):
    """The gb26875 settings and the inventory disagree; the message names the entry."""


PointKey = tuple[str, int, int, int | None]  # transmitter id, system type, system address, component


@dataclass(frozen=True, slots=True)
class BoundTransmitter:
    device: DeviceSpec
    address: int
    model: TransmitterModel


@dataclass(frozen=True, slots=True)
class BoundPoint:
    device: DeviceSpec
    mapping: ComponentMapping


def component_id(transmitter_id: str, system_type: int, system_address: int, address: int) -> str:
    """A readable id for a component not in the inventory: `panel-a.s1-2.c10-2` (zone 10, position 2)."""
    return f"{transmitter_id}.s{system_type}-{system_address}.c{address & 0xFFFF}-{address >> 16}"


def bind(
    settings: Gb26875Settings, inventory: Inventory
) -> tuple[list[BoundTransmitter], dict[PointKey, BoundPoint]]:
    """Check the transmitters, panel points and mappings against the inventory and the catalogue.

    Raises:
        MappingError: naming the transmitter or inventory entry and what is wrong.
    """
    transmitters: list[BoundTransmitter] = []
    by_id: dict[str, BoundTransmitter] = {}
    for index, settings_entry in enumerate(settings.transmitters):
        here = f"gb26875.transmitters[{index}] ({settings_entry.id})"
        device = inventory.get(settings_entry.id)
        if device is None:
            raise MappingError(f"{here}.id: no device with this id in the inventory")
        if device.kind is not K.FIRE_PANEL or device.protocol != "gb26875":
            raise MappingError(f"{here}.id: the inventory entry must be kind fire_panel, protocol gb26875")
        model = settings.transmitter_models.get(settings_entry.model, TransmitterModel())
        bound = BoundTransmitter(device, settings_entry.address, model)
        transmitters.append(bound)
        by_id[device.id] = bound
    points: dict[PointKey, BoundPoint] = {}
    for device in inventory:
        point = device.gb26875
        if point is None:
            continue
        here = f"inventory device {device.id!r}.gb26875"
        if point.transmitter not in by_id:
            raise MappingError(f"{here}.transmitter: {point.transmitter!r} is not under gb26875.transmitters")
        if point.component_address is None and device.kind is not K.FIRE_PANEL:
            raise MappingError(f"{here}: a panel (no component_address) must be kind fire_panel")
        key = (point.transmitter, point.system_type, point.system_address, point.component_address)
        if (clash := points.get(key)) is not None:
            raise MappingError(f"{here}: the same panel point as {clash.device.id!r}")
        mapping = _mapping_for(device, settings, here)
        points[key] = BoundPoint(device, mapping)
    return transmitters, points


def _mapping_for(device: DeviceSpec, settings: Gb26875Settings, here: str) -> ComponentMapping:
    default = DEFAULT_MAPPINGS[device.kind]
    override = settings.component_models.get(device.model)
    mapping = ComponentMapping(
        tuple(override.events) if override and override.events is not None else default.events,
        dict(override.analog) if override and override.analog is not None else default.analog,
    )
    for event in mapping.events:
        for name in (event.event, event.clear):
            if name not in EVENTS[device.kind]:
                raise MappingError(f"{here}: {name!r} is not an event of {device.kind.value}")
    for analog_type, analog in mapping.analog.items():
        if analog.metric not in METRICS[device.kind]:
            raise MappingError(
                f"{here}: analog {analog_type} -> {analog.metric!r} is not a metric of {device.kind.value}"
            )
    return mapping


@dataclass
class _EdgeState:
    """Which sources hold each (device, event) active: raise on every report, clear on the last."""

    active: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def report(self, device: str, event: str, source: str, on: bool) -> bool | None:
        """True: emit the event; False: emit its clear; None: nothing new."""
        key = (device, event)
        holders = self.active.get(key)
        if on:
            self.active.setdefault(key, set()).add(source)
            return True
        if holders is None:  # first word of this device since start: say it is clear, once
            self.active[key] = set()
            return False
        if source in holders:
            holders.discard(source)
            return False if not holders else None
        return None


class PanelMapper:
    """Maps the objects of one transmission device's frames to records; keeps the edge state.

    Args:
        inventory: the devices; panel points and transmitters are checked by `bind`.
        settings: the gb26875 section.
        tz: the campus time zone (time labels are local time).
    """

    def __init__(self, inventory: Inventory, settings: Gb26875Settings, tz: tzinfo) -> None:
        self.transmitters, self._points = bind(settings, inventory)
        self._by_address = {bound.address: bound for bound in self.transmitters}
        self._tz = tz
        self._edges = _EdgeState()

    def transmitter(self, address: int) -> BoundTransmitter | None:
        return self._by_address.get(address)

    def map_unit(
        self, transmitter: BoundTransmitter, unit: DataUnit | OpaqueUnit, raw: bytes, received_at: float
    ) -> tuple[list[Record], list[FrameRejected]]:
        """Records and rejections for one data unit (`raw` is its bytes, for dead letters)."""
        records: list[Record] = []
        rejected: list[FrameRejected] = []
        panel = transmitter.device
        if isinstance(unit, OpaqueUnit):
            reason = RejectReason.VENDOR_TYPE if unit.vendor else RejectReason.UNSUPPORTED_TYPE
            rejected.append(
                FrameRejected(
                    reason,
                    f"data unit type {unit.type_code}, {unit.count} object(s)",
                    raw,
                    device_id=panel.id,
                )
            )
            return records, rejected
        for obj in unit.objects:
            ts = self._timestamp(getattr(obj, "time", None), received_at)
            self._map_object(transmitter, obj, ts, raw, records, rejected)
        return records, rejected

    def device_clock(self, unit: DataUnit | OpaqueUnit) -> float | None:
        """The latest time the panel put on the unit's objects, for the ingest validator's
        clock-skew check of its transmission device; None if it gave none."""
        times = [
            self._label_time(label)
            for obj in getattr(unit, "objects", ())
            if (label := getattr(obj, "time", None)) is not None
        ]
        return max((ts for ts in times if ts is not None), default=None)

    def _map_object(
        self,
        transmitter: BoundTransmitter,
        obj: InfoObject,
        ts: float,
        raw: bytes,
        records: list[Record],
        rejected: list[FrameRejected],
    ) -> None:
        tid = transmitter.device.id
        if isinstance(obj, ComponentStatus | ComponentAnalog):
            point = self._component_point(tid, obj, raw, rejected)
            if point is None:
                return
            if isinstance(obj, ComponentStatus):
                self._component_status(point, obj, ts, raw, records, rejected)
                return
            analog = point.mapping.analog.get(obj.analog_type)
            if analog is None:
                detail = f"{point.device.id}: analog type {obj.analog_type} has no metric in its mapping"
                rejected.append(
                    FrameRejected(RejectReason.UNMAPPED_ANALOG, detail, raw, device_id=point.device.id)
                )
                return
            spec = point.device
            records.append(Reading(spec.id, spec.kind, analog.metric, ts, obj.raw_value * analog.scale))
        elif isinstance(obj, SystemStatus):
            device = self._system_device(tid, obj.system_type, obj.system_address, transmitter)
            system = SystemFlag(obj.flags)
            attrs: dict[str, Any] = {
                "system": f"{obj.system_type}-{obj.system_address}",
                "flags": flag_names(system),
            }
            source = f"system:{obj.system_type}-{obj.system_address}"
            self._edge(
                device, "alarm", "alarm_clear", source, SystemFlag.FIRE_ALARM in system, ts, attrs, records
            )
            self._edge(
                device, "fault", "fault_clear", source, bool(system & _SYSTEM_FAULTS), ts, attrs, records
            )
        elif isinstance(obj, SystemOperation):
            device = self._system_device(tid, obj.system_type, obj.system_address, transmitter)
            operations = SystemOperationFlag(obj.flags)
            attrs = {
                "system": f"{obj.system_type}-{obj.system_address}",
                "operations": flag_names(operations),
                "operator": obj.operator,
            }
            records.append(DeviceEvent(device.id, device.kind, "operation", ts, attrs))
            if SystemOperationFlag.RESET in operations:
                self._reset(tid, obj.system_type, obj.system_address, ts, records)
        elif isinstance(obj, TransmitterStatus):
            device = transmitter.device
            own = TransmitterFlag(obj.flags)
            attrs = {"flags": flag_names(own)}
            alarm = TransmitterFlag.FIRE_ALARM in own
            self._edge(device, "alarm", "alarm_clear", "transmitter", alarm, ts, attrs, records)
            fault = bool(own & _TRANSMITTER_FAULTS)
            self._edge(device, "fault", "fault_clear", "transmitter", fault, ts, attrs, records)
        elif isinstance(obj, TransmitterOperation):
            attrs = {"operations": flag_names(TransmitterOperationFlag(obj.flags)), "operator": obj.operator}
            records.append(DeviceEvent(tid, transmitter.device.kind, "operation", ts, attrs))
        # Versions, configuration texts and clocks carry nothing a rule reads; their times
        # feed the clock-skew check (`device_clock`).

    def _component_point(
        self, tid: str, obj: ComponentStatus | ComponentAnalog, raw: bytes, rejected: list[FrameRejected]
    ) -> BoundPoint | None:
        point = self._points.get((tid, obj.system_type, obj.system_address, obj.component_address))
        if point is None:
            device_id = component_id(tid, obj.system_type, obj.system_address, obj.component_address)
            detail = f"component type {obj.component_type} at {device_id} is not in the inventory"
            rejected.append(FrameRejected(RejectReason.UNKNOWN_DEVICE, detail, raw, device_id=device_id))
            return None
        expected = point.device.gb26875.component_type if point.device.gb26875 else None
        if expected is not None and expected != obj.component_type:
            detail = f"{point.device.id} is component type {expected}, the panel says {obj.component_type}"
            rejected.append(FrameRejected(RejectReason.KIND_MISMATCH, detail, raw, device_id=point.device.id))
            return None
        return point

    def _component_status(
        self,
        point: BoundPoint,
        obj: ComponentStatus,
        ts: float,
        raw: bytes,
        records: list[Record],
        rejected: list[FrameRejected],
    ) -> None:
        flags = ComponentFlag(obj.flags)
        attrs: dict[str, Any] = {"flags": flag_names(flags), "description": obj.description}
        # Bit 0 clear is "test mode", yet real panels (and the standard's own example) send
        # alarms with it clear: it is reported, never a reason to drop the alarm.
        attrs["panel_test_mode"] = ComponentFlag.RUNNING not in flags
        mapped = ComponentFlag(0)
        for event in point.mapping.events:
            mask = ComponentFlag(0)
            for name in event.flags:
                mask |= _COMPONENT_FLAGS[name]
            mapped |= mask
            self._edge(
                point.device, event.event, event.clear, "component", bool(flags & mask), ts, attrs, records
            )
        for flag in _MUST_MAP:
            if flag in flags and flag not in mapped:
                detail = (
                    f"{point.device.id} ({point.device.kind.value}) reports {flag.name} with no event mapped"
                )
                rejected.append(
                    FrameRejected(RejectReason.UNMAPPED_STATUS, detail, raw, device_id=point.device.id)
                )

    def _reset(
        self, tid: str, system_type: int, system_address: int, ts: float, records: list[Record]
    ) -> None:
        """A panel reset (复位) restores every fire alarm of that panel; a still-burning one is re-sent."""
        for (transmitter, st, sa, address), point in self._points.items():
            if (transmitter, st, sa) != (tid, system_type, system_address) or address is None:
                continue
            for event in point.mapping.events:
                if "fire_alarm" in event.flags:
                    self._edge(
                        point.device,
                        event.event,
                        event.clear,
                        "component",
                        False,
                        ts,
                        {"reset": True},
                        records,
                        only_if_active=True,
                    )

    def _system_device(
        self, tid: str, system_type: int, system_address: int, transmitter: BoundTransmitter
    ) -> DeviceSpec:
        # A panel not in the inventory in its own right reports through its transmission device.
        point = self._points.get((tid, system_type, system_address, None))
        return point.device if point is not None else transmitter.device

    def _edge(
        self,
        device: DeviceSpec,
        event: str,
        clear: str,
        source: str,
        on: bool,
        ts: float,
        attrs: Mapping[str, Any],
        records: list[Record],
        only_if_active: bool = False,
    ) -> None:
        if only_if_active and not self._edges.active.get((device.id, event)):
            return
        verdict = self._edges.report(device.id, event, source, on)
        if verdict is not None:
            records.append(DeviceEvent(device.id, device.kind, event if verdict else clear, ts, dict(attrs)))

    def _timestamp(self, label: TimeLabel | None, received_at: float) -> float:
        # A record's time; whether the clock is off is flagged by the ingest validator.
        ts = self._label_time(label) if label is not None else None
        return received_at if ts is None or clock_skewed(ts, received_at) else ts

    def _label_time(self, label: TimeLabel) -> float | None:
        try:
            return label.to_timestamp(self._tz)
        except ValueError:
            return None
