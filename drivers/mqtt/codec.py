"""Device protocol v1 (SPEC section 3): MQTT topic + JSON payload -> normalized records.

The decoder is the only place that knows topics and JSON. It keeps two pieces of per-device
state: the last `seq` seen (to drop QoS 1 redeliveries) and whether the device clock is skewed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.catalog import EVENTS, METRICS
from analytics.devices import Inventory
from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, Record, StatusChange
from drivers.errors import PayloadError
from drivers.mqtt.shapes import PayloadShape

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_CLOCK_SKEW_S = 300.0
# A seq this far below the last one is a device that restarted its counter, not a redelivery.
SEQ_RESTART_GAP = 1000
_EVENT_LANE = "\x00event"  # cannot occur in a device id
_KINDS = {kind.value: kind for kind in DeviceKind}
_STATES = {state.value: state for state in DeviceState}


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A QoS 1 redelivery, recognised by its `seq`; dropped as the spec says."""

    device_id: str
    seq: int


class ProtocolV1Decoder:
    """Decodes `campus/{campus_id}/{kind}/{device_id}/{channel}` messages.

    Args:
        campus_id: messages for any other campus are rejected.
        inventory: devices not in it are rejected with reason `unknown_device`.
        shapes: vendor payload shapes by name; a device whose `payload_shape` names one has its
            JSON body mapped to v1 first (config validation guarantees the name exists).
    """

    def __init__(
        self, campus_id: str, inventory: Inventory, shapes: Mapping[str, PayloadShape] | None = None
    ) -> None:
        self._campus_id = campus_id
        self._inventory = inventory
        self._shapes = dict(shapes or {})
        self._last_seq: dict[str, int] = {}
        self._skewed: set[str] = set()

    def restore_seq(self, last_seq: Mapping[str, int]) -> None:
        """Seed duplicate detection from the store, so a restart drops redeliveries too."""
        self._last_seq.update(last_seq)

    def seq_of(self, device_id: str) -> int | None:
        """The last telemetry seq of a device (persisted, so redeliveries after a restart drop too)."""
        return self._last_seq.get(device_id)

    def decode(self, topic: str, payload: bytes, received_at: float) -> list[Record] | Duplicate:
        """Return the records in one message, or `Duplicate`; raise PayloadError if invalid."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != "campus":
            raise PayloadError("bad_topic", f"topic {topic!r} is not campus/<id>/<kind>/<device>/<channel>")
        _, campus_id, kind_name, device_id, channel = parts
        if campus_id != self._campus_id:
            raise PayloadError("wrong_campus", f"campus {campus_id!r} is not {self._campus_id!r}", device_id)
        kind = _KINDS.get(kind_name)
        if kind is None:
            raise PayloadError("unknown_kind", f"kind {kind_name!r} is not a device kind", device_id)
        device = self._inventory.get(device_id)
        if device is None:
            raise PayloadError("unknown_device", f"device {device_id!r} is not in the inventory", device_id)
        if device.kind is not kind:
            raise PayloadError(
                "kind_mismatch", f"device {device_id!r} is a {device.kind.value}, not {kind_name}", device_id
            )
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadError("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}", device_id)
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError("malformed_json", str(exc)[:120], device_id) from None
        if not isinstance(body, dict):
            raise PayloadError("not_object", f"payload is a JSON {type(body).__name__}", device_id)
        if device.payload_shape:
            body = self._shapes[device.payload_shape].to_v1(body, channel, device_id)

        records: list[Record] = []
        ts = self._timestamp(body.get("ts"), received_at, device_id, kind, records)
        if channel == "status":
            state = _STATES.get(body.get("state"))
            if state is None:
                raise PayloadError(
                    "bad_state", f"state {body.get('state')!r} is not online/offline", device_id
                )
            if state is DeviceState.ONLINE:
                # A device (re)connecting may have restarted its seq counter.
                self._last_seq.pop(device_id, None)
                self._last_seq.pop(device_id + _EVENT_LANE, None)
            records.append(StatusChange(device_id, kind, state, ts, reason="status"))
            return records

        seq = body.get("seq")
        # Events and telemetry travel in separate lanes (alarms are not queued behind telemetry), so
        # each lane keeps its own last seq: a redelivery repeats within its lane, in order.
        seq_key = device_id if channel == "telemetry" else device_id + _EVENT_LANE
        if seq is not None:
            if type(seq) is not int or seq < 0:
                raise PayloadError("bad_seq", f"seq {seq!r} is not a non-negative integer", device_id)
            last = self._last_seq.get(seq_key)
            if last is not None and last - SEQ_RESTART_GAP < seq <= last:
                return Duplicate(device_id, seq)
        if channel == "telemetry":
            self._telemetry(body, device_id, kind, ts, records)
        elif channel == "event":
            self._event(body, device_id, kind, ts, records)
        else:
            raise PayloadError("bad_channel", f"channel {channel!r} is not telemetry/event/status", device_id)
        if seq is not None:
            self._last_seq[seq_key] = seq
        return records

    def _timestamp(
        self, raw: Any, received_at: float, device_id: str, kind: DeviceKind, records: list[Record]
    ) -> float:
        if raw is None:
            return received_at
        if isinstance(raw, bool):
            raise PayloadError("bad_ts", "ts is a boolean", device_id)
        if isinstance(raw, int | float):
            ts = float(raw)
            if not math.isfinite(ts):
                raise PayloadError("bad_ts", "ts is not finite", device_id)
        elif isinstance(raw, str):
            try:
                ts = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise PayloadError("bad_ts", f"ts {raw[:40]!r} is not RFC 3339", device_id) from None
        else:
            raise PayloadError("bad_ts", f"ts is a {type(raw).__name__}", device_id)
        skew_s = ts - received_at
        if abs(skew_s) > MAX_CLOCK_SKEW_S:
            if device_id not in self._skewed:
                self._skewed.add(device_id)
                records.append(
                    DeviceEvent(device_id, kind, "clock_skew", received_at, {"skew_s": round(skew_s, 1)})
                )
            return received_at
        if device_id in self._skewed:
            self._skewed.discard(device_id)
            records.append(DeviceEvent(device_id, kind, "clock_skew_clear", received_at, {}))
        return ts

    @staticmethod
    def _telemetry(
        body: dict[str, Any], device_id: str, kind: DeviceKind, ts: float, records: list[Record]
    ) -> None:
        values = body.get("values")
        if not isinstance(values, dict) or not values:
            raise PayloadError("bad_values", "telemetry needs a non-empty object `values`", device_id)
        allowed = METRICS[kind]
        for metric, raw in values.items():
            if metric not in allowed:
                raise PayloadError("unknown_metric", f"{kind.value} has no metric {metric!r}", device_id)
            if raw is True or raw is False:
                value = 1.0 if raw else 0.0
            elif isinstance(raw, int | float):
                value = float(raw)
                if not math.isfinite(value):
                    raise PayloadError("non_finite", f"{metric} is {raw}", device_id)
            else:
                raise PayloadError(
                    "wrong_type", f"{metric} is a {type(raw).__name__}, not a number", device_id
                )
            records.append(Reading(device_id, kind, metric, ts, value))

    @staticmethod
    def _event(
        body: dict[str, Any], device_id: str, kind: DeviceKind, ts: float, records: list[Record]
    ) -> None:
        name = body.get("event")
        if not isinstance(name, str):
            raise PayloadError("bad_event", "event needs a string `event`", device_id)
        if name not in EVENTS[kind]:
            raise PayloadError("unknown_event", f"{kind.value} has no event {name!r}", device_id)
        attrs = body.get("attrs", {})
        if not isinstance(attrs, dict):
            raise PayloadError("bad_attrs", "attrs must be an object", device_id)
        records.append(DeviceEvent(device_id, kind, name, ts, attrs))
