"""Vendor payload shapes: per-model config that maps another JSON shape onto protocol v1 (SPEC 3).

A device whose inventory entry names a `payload_shape` publishes on the usual topic, but its JSON
body has the vendor's layout, field names and units. The shape turns that body into the v1 body
(`ts`, `seq`, `values` / `event` / `state`), which then goes through exactly the same validation
as any v1 message: a vendor's NaN or unknown metric is dead-lettered like anyone's.

    mqtt_shapes:
      acme_th20:
        ts: {path: time, unit: ms}
        seq: frame.no
        values:
          temperature_c: {path: data.tempF, scale: 0.5555556, offset: -17.777778}
          battery_pct: {path: dev.bat}
        event: {path: alarm.code, names: {"1": alarm, "0": alarm_clear}}
        status: {path: online, online: [1, "on"]}

Paths are dot-separated keys; a numeric part indexes a list (`data.channels.0.t`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import PayloadError

_PATH = r"^[^.\s]+(\.[^.\s]+)*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueField(_Strict):
    path: str = Field(pattern=_PATH)
    # v1 value = raw * scale + offset: converts the vendor's unit to the metric's (°F -> °C, ‰ -> %).
    scale: float = 1.0
    offset: float = 0.0


class TimestampField(_Strict):
    path: str = Field(pattern=_PATH)
    unit: Literal["s", "ms", "rfc3339"] = "s"


class EventField(_Strict):
    path: str = Field(pattern=_PATH)
    # The vendor's value (as text) -> v1 event name; without a table the value is the name.
    names: dict[str, str] = Field(default_factory=dict)
    # v1 attribute name -> path of its value in the vendor's body (missing ones are left out).
    attrs: dict[str, str] = Field(default_factory=dict)


class StatusField(_Strict):
    path: str = Field(pattern=_PATH)
    online: list[str | int | bool] = Field(min_length=1)  # values that mean online; others offline


class PayloadShape(_Strict):
    ts: TimestampField | None = None  # absent: the receive time
    seq: str | None = Field(default=None, pattern=_PATH)
    values: dict[str, ValueField] = Field(default_factory=dict)
    event: EventField | None = None
    status: StatusField | None = None

    def event_names(self) -> set[str]:
        return set(self.event.names.values()) if self.event is not None else set()

    def to_v1(self, body: Mapping[str, Any], channel: str, device_id: str) -> dict[str, Any]:
        """The v1 body for `channel`; PayloadError `shape_mismatch` when a required field is missing."""
        v1: dict[str, Any] = {}
        if self.ts is not None:
            found, raw = _lookup(body, self.ts.path)
            if found:
                v1["ts"] = _scaled(raw, 0.001) if self.ts.unit == "ms" else raw
        if self.seq is not None:
            found, raw = _lookup(body, self.seq)
            if found:
                v1["seq"] = raw
        if channel == "telemetry":
            values: dict[str, Any] = {}
            for metric, field in self.values.items():
                found, raw = _lookup(body, field.path)
                if found:  # vendors send partial frames; a frame with none of them is refused below
                    values[metric] = _scaled(raw, field.scale, field.offset)
            v1["values"] = values
        elif channel == "event":
            if self.event is None:
                raise PayloadError("shape_mismatch", "the payload shape maps no events", device_id)
            found, raw = _lookup(body, self.event.path)
            if not found:
                raise PayloadError("shape_mismatch", f"event field {self.event.path!r} is missing", device_id)
            key = str(raw).lower() if isinstance(raw, bool) else str(raw)
            v1["event"] = self.event.names.get(key, key if not self.event.names else f"unmapped:{key}")
            v1["attrs"] = {
                name: value
                for name, path in self.event.attrs.items()
                for found, value in [_lookup(body, path)]
                if found
            }
        elif channel == "status":
            if self.status is None:
                raise PayloadError("shape_mismatch", "the payload shape maps no status", device_id)
            found, raw = _lookup(body, self.status.path)
            if not found:
                raise PayloadError(
                    "shape_mismatch", f"status field {self.status.path!r} is missing", device_id
                )
            v1["state"] = "online" if raw in self.status.online else "offline"
        return v1


def _lookup(body: Any, path: str) -> tuple[bool, Any]:
    node = body
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _scaled(raw: Any, scale: float, offset: float = 0.0) -> Any:
    # Only numbers are converted; anything else passes unchanged so v1 validation names its type.
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return raw * scale + offset
        except OverflowError:  # an integer beyond any float: the validator refuses it as non-finite
            return math.inf
    return raw
