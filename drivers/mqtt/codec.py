"""Device protocol v1 (SPEC section 3): MQTT topic + JSON payload -> an `Envelope` of records.

The decoder is the only place that knows topics and JSON, and it keeps no state: what holds for
every driver (known devices and metrics, finite values, clock skew, duplicates by seq) is the
ingest validator's (`analytics.ingest`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from analytics.devices import Inventory
from analytics.ingest import Envelope
from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, Record, StatusChange
from analytics.sessions import Lane
from drivers.errors import PayloadError
from drivers.mqtt.shapes import PayloadShape

MAX_PAYLOAD_BYTES = 64 * 1024
_KINDS = {kind.value: kind for kind in DeviceKind}
_STATES = {state.value: state for state in DeviceState}
_LANES = {lane.value: lane for lane in Lane}


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


class ProtocolV1Decoder:
    """Decodes `campus/{campus_id}/{kind}/{device_id}/{channel}` messages.

    Args:
        campus_id: messages for any other campus are rejected.
        inventory: where a device's `payload_shape` is looked up; devices not in it are rejected
            with reason `unknown_device` before their payload is parsed.
        shapes: vendor payload shapes by name; a device whose `payload_shape` names one has its
            JSON body mapped to v1 first (config validation guarantees the name exists).
    """

    def __init__(
        self, campus_id: str, inventory: Inventory, shapes: Mapping[str, PayloadShape] | None = None
    ) -> None:
        self._campus_id = campus_id
        self._inventory = inventory
        self._shapes = dict(shapes or {})

    def decode(self, topic: str, payload: bytes, received_at: float) -> Envelope:
        """Return the message as an envelope; raise PayloadError if it is not protocol v1."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != "campus":
            raise PayloadError("bad_topic", f"topic {topic!r} is not campus/<id>/<kind>/<device>/<channel>")
        _, campus_id, kind_name, device_id, channel = parts
        if campus_id != self._campus_id:
            raise PayloadError("wrong_campus", f"campus {campus_id!r} is not {self._campus_id!r}", device_id)
        kind = _KINDS.get(kind_name)
        if kind is None:
            raise PayloadError("unknown_kind", f"kind {kind_name!r} is not a device kind", device_id)
        lane = _LANES.get(channel)
        if lane is None:
            raise PayloadError("bad_channel", f"channel {channel!r} is not telemetry/event/status", device_id)
        device = self._inventory.get(device_id)
        if device is None:
            raise PayloadError("unknown_device", f"device {device_id!r} is not in the inventory", device_id)
        if device.kind is not kind:  # the topic is wrong: its payload would be read as the wrong kind
            raise PayloadError(
                "kind_mismatch", f"device {device_id!r} is a {device.kind.value}, not {kind_name}", device_id
            )
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadError("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}", device_id)
        try:
            # NaN and Infinity are not JSON (RFC 8259), whatever Python's parser accepts: refused
            # anywhere in a payload, so none can reach a store, a page or a webhook.
            body = _JSON.decode(payload.decode("utf-8-sig"))
        except _NonFinite as exc:
            raise PayloadError("non_finite", f"payload holds {exc}", device_id) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError("malformed_json", str(exc)[:120], device_id) from None
        except RecursionError:
            raise PayloadError("malformed_json", "JSON nested too deep", device_id) from None
        if not isinstance(body, dict):
            raise PayloadError("not_object", f"payload is a JSON {type(body).__name__}", device_id)
        if device.payload_shape:
            body = self._shapes[device.payload_shape].to_v1(body, channel, device_id)

        device_ts = self._timestamp(body.get("ts"), device_id)
        ts = received_at if device_ts is None else device_ts
        records: list[Record] = []
        seq = None
        if lane is Lane.STATUS:
            raw_state = body.get("state")
            state = _STATES.get(raw_state) if isinstance(raw_state, str) else None
            if state is None:
                raise PayloadError("bad_state", f"state {raw_state!r:.60} is not online/offline", device_id)
            records.append(StatusChange(device_id, kind, state, ts, reason="status"))
        else:
            seq = body.get("seq")
            if seq is not None and (type(seq) is not int or seq < 0):
                raise PayloadError("bad_seq", f"seq {seq!r} is not a non-negative integer", device_id)
            if lane is Lane.TELEMETRY:
                self._telemetry(body, device_id, kind, ts, records)
            else:
                self._event(body, device_id, kind, ts, records)
        return Envelope(topic, device_id, kind, lane, received_at, tuple(records), seq, device_ts)

    @staticmethod
    def _timestamp(raw: Any, device_id: str) -> float | None:
        if raw is None:
            return None
        if isinstance(raw, bool):
            raise PayloadError("bad_ts", "ts is a boolean", device_id)
        if isinstance(raw, int | float):
            try:
                return float(raw)  # the validator refuses what is not finite
            except OverflowError:
                raise PayloadError("bad_ts", "ts is out of range", device_id) from None
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise PayloadError("bad_ts", f"ts {raw[:40]!r} is not RFC 3339", device_id) from None
        raise PayloadError("bad_ts", f"ts is a {type(raw).__name__}", device_id)

    @staticmethod
    def _telemetry(
        body: dict[str, Any], device_id: str, kind: DeviceKind, ts: float, records: list[Record]
    ) -> None:
        values = body.get("values")
        if not isinstance(values, dict) or not values:
            raise PayloadError("bad_values", "telemetry needs a non-empty object `values`", device_id)
        for metric, raw in values.items():
            if raw is True or raw is False:
                value = 1.0 if raw else 0.0
            elif isinstance(raw, int | float):
                try:
                    value = float(raw)
                except OverflowError:
                    raise PayloadError("non_finite", f"{metric} is out of range", device_id) from None
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
        attrs = body.get("attrs", {})
        if not isinstance(attrs, dict):
            raise PayloadError("bad_attrs", "attrs must be an object", device_id)
        records.append(DeviceEvent(device_id, kind, name, ts, attrs))
