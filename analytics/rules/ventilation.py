"""ventilation_fault: the cabinet fan is off while vapour builds up inside."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import Reading, Record
from analytics.rules.base import Rule


class _Cabinet:
    __slots__ = ("fan_on", "ok_since", "raised", "voc")

    def __init__(self) -> None:
        self.fan_on: bool | None = None  # unknown until the first report
        self.voc = 0.0
        self.raised = False
        self.ok_since: float | None = None


@dataclass
class VentilationFaultRule(Rule):
    """Raise when `fan_metric` reads off while `voc_metric` >= `voc_at`; clear once the fan runs or
    the vapour falls under `voc_clear_below`, for `clear_hold_s` (a fan cycling at the limit
    does not flap the alert)."""

    fan_metric: str = "fan_on"
    voc_metric: str = "voc_ppm"
    voc_at: float = 10.0
    voc_clear_below: float = 8.0
    clear_hold_s: float = 30.0
    _cabinets: dict[str, _Cabinet] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.voc_clear_below > self.voc_at:
            raise ValueError(
                f"voc_clear_below ({self.voc_clear_below}) must not exceed voc_at ({self.voc_at})"
            )

    def listens_to(self) -> frozenset[str] | None:
        return frozenset({self.fan_metric, self.voc_metric})

    def restore(self, alert: Alert) -> None:
        cabinet = self._cabinets.setdefault(alert.device_id, _Cabinet())
        cabinet.raised, cabinet.fan_on, cabinet.voc = (
            True,
            False,
            float(alert.details.get("voc_ppm", self.voc_at)),
        )

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not Reading:
            return ()
        metric = record.metric
        if metric != self.fan_metric and metric != self.voc_metric:
            return ()
        cabinet = self._cabinets.get(device.id)
        if cabinet is None:
            cabinet = self._cabinets[device.id] = _Cabinet()
        if metric == self.fan_metric:
            cabinet.fan_on = record.value >= 0.5
        else:
            cabinet.voc = record.value
        limit = (
            self.param(device, "voc_clear_below", self.voc_clear_below)
            if cabinet.raised
            else self.param(device, "voc_at", self.voc_at)
        )
        if cabinet.fan_on is False and cabinet.voc >= limit:
            cabinet.ok_since = None
            if cabinet.raised:
                return ()
            cabinet.raised = True
            details = {"fan_on": False, "voc_ppm": cabinet.voc, "limit": limit}
            return (AlertSignal(self.name, device.id, True, record.ts, self.severity, device.id, details),)
        if not cabinet.raised:
            return ()
        if cabinet.ok_since is None:
            cabinet.ok_since = record.ts
        if record.ts - cabinet.ok_since < self.param(device, "clear_hold_s", self.clear_hold_s):
            return ()
        cabinet.raised, cabinet.ok_since = False, None
        return (AlertSignal(self.name, device.id, False, record.ts, self.severity, device.id),)
