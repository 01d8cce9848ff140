"""The one ingest validator: every driver's records pass here before anything acts on them.

Drivers decode their protocol (MQTT JSON, Modbus registers, video, GB/T 26875 frames) into an
`Envelope` and stay stateless; this module applies the rules that hold for all of them (SPEC 2,
3): the device must be in the inventory as that kind, values finite and known, attributes small
and plain, the device clock within `MAX_CLOCK_SKEW_S`, and a redelivery (same lane, same seq)
dropped. It keeps each device's `DeviceSession` and reports which ones changed, so the caller
persists them with the records they guard.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from math import isfinite
from typing import Any

from analytics.catalog import EVENTS, METRICS
from analytics.devices import Inventory
from analytics.errors import PayloadError
from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, Record, StatusChange
from analytics.sessions import DeviceSession, Lane, SessionChanges

_STATUS = Lane.STATUS  # enum member lookups cost a descriptor call on the hot path

MAX_CLOCK_SKEW_S = 300.0
# Attributes are a device's free-form extras: bounded so one device cannot make an alert, the
# store or the page choke (a payload nested 1,000 deep, or thousands of keys).
MAX_ATTRS_DEPTH = 4
MAX_ATTRS_ITEMS = 64
MAX_ATTRS_STRING = 1024
# The whole of one event's attrs as JSON: an alert carries them to the store, the page and every
# webhook, so 64 strings of 1 KiB each (a 64 KiB alert) are refused.
MAX_ATTRS_BYTES = 4096
# Integers beyond 64 bits cannot be stored or read back exactly (SQLite, JavaScript).
MAX_ATTRS_INT = 2**63 - 1
# SQLite integers are 64-bit signed; a seq beyond cannot be stored with the session.
MAX_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message from a driver, decoded but not yet validated.

    Args:
        source: where it came from, for dead letters (an MQTT topic, `modbus:host:port`, ...).
        records: what it says; their `ts` is the device's own time (or `received_at`).
        seq: the device's message counter, for dropping redeliveries; None if it has none.
        device_ts: the time the device put on the message, if any (checked for clock skew).
    """

    source: str
    device_id: str
    kind: DeviceKind
    lane: Lane
    received_at: float
    records: tuple[Record, ...]
    seq: int | None = None
    device_ts: float | None = None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A redelivery, recognised by its lane's seq; dropped as the spec says."""

    device_id: str
    seq: int


class IngestValidator:
    """Checks envelopes and keeps the device sessions.

    Args:
        inventory: devices not in it are rejected with reason `unknown_device`.
        sessions: sessions restored from the store.
    """

    def __init__(self, inventory: Inventory, sessions: Iterable[DeviceSession] = ()) -> None:
        self._inventory = inventory
        self._sessions = {session.device_id: session for session in sessions}
        self._windows_changed: dict[Lane, set[str]] = {}
        self._flags_changed: set[str] = set()

    def session(self, device_id: str) -> DeviceSession:
        session = self._sessions.get(device_id)
        if session is None:
            session = self._sessions[device_id] = DeviceSession(device_id)
        return session

    def admit(self, envelope: Envelope) -> tuple[Record, ...] | Duplicate:
        """The records to act on, or `Duplicate`; raises `PayloadError` for what must be refused.

        The session changes only once the whole envelope is valid, so a refused message leaves
        no trace in it (a skew flag set by a message that was then refused would never be raised).
        """
        device_id = envelope.device_id
        device = self._inventory.get(device_id)
        if device is None:
            raise PayloadError("unknown_device", f"device {device_id!r} is not in the inventory", device_id)
        if device.kind is not envelope.kind:
            raise PayloadError(
                "kind_mismatch",
                f"device {device_id!r} is a {device.kind.value}, not {envelope.kind.value}",
                device_id,
            )
        metrics = METRICS[device.kind]
        for record in envelope.records:
            # Readings are nearly all of the traffic: checked inline, the rest by `_check_record`.
            if (
                type(record) is Reading
                and record.metric in metrics
                and isfinite(record.value)
                and isfinite(record.ts)
            ):
                continue
            _check_record(record, device.kind)
        seq = envelope.seq
        if seq is not None and (type(seq) is not int or not 0 <= seq <= MAX_SEQ):
            raise PayloadError("bad_seq", f"seq {seq!r} is not an integer in 0..2^63-1", device_id)
        if envelope.device_ts is not None and not math.isfinite(envelope.device_ts):
            raise PayloadError("bad_ts", "ts is not finite", device_id)

        session = self.session(device_id)
        lane = envelope.lane
        if seq is not None:
            if not session.window(lane).admit(seq):
                return Duplicate(device_id, seq)
            changed = self._windows_changed.get(lane)
            if changed is None:
                changed = self._windows_changed[lane] = set()
            changed.add(device_id)
        records = envelope.records
        if lane is _STATUS:
            records = self._status(session, records)
        return self._clock(session, envelope, records)

    def take_changes(self) -> SessionChanges:
        """What changed in the sessions since the last call, for the caller to persist."""
        sessions = self._sessions
        windows = {
            lane: [(device_id, sessions[device_id].windows[lane].dump()) for device_id in device_ids]
            for lane, device_ids in self._windows_changed.items()
        }
        flags = [sessions[device_id] for device_id in self._flags_changed]
        self._windows_changed, self._flags_changed = {}, set()
        return SessionChanges(windows, flags)

    def _status(self, session: DeviceSession, records: tuple[Record, ...]) -> tuple[Record, ...]:
        kept: list[Record] = []
        for record in records:
            if not isinstance(record, StatusChange) or record.reason != "status":
                kept.append(record)
                continue
            # The broker hands the retained status to every new subscription, with or without a
            # device time on it: the state the device last reported, again, is not a change.
            if record.state is session.status:
                continue
            if record.state is DeviceState.ONLINE and session.status is not DeviceState.ONLINE:
                # A device coming (back) online may have restarted its counters.
                for lane, window in session.windows.items():
                    window.reset()
                    self._windows_changed.setdefault(lane, set()).add(session.device_id)
            session.status, session.status_ts = record.state, record.ts
            self._flags_changed.add(session.device_id)
            kept.append(record)
        return tuple(kept)

    def _clock(
        self, session: DeviceSession, envelope: Envelope, records: tuple[Record, ...]
    ) -> tuple[Record, ...]:
        if envelope.device_ts is None:
            return records
        received_at = envelope.received_at
        skew_s = envelope.device_ts - received_at
        skewed = clock_skewed(envelope.device_ts, received_at)
        if skewed:
            records = tuple(replace(record, ts=received_at) for record in records)
        if skewed is session.clock_skewed:
            return records
        session.clock_skewed = skewed
        self._flags_changed.add(session.device_id)
        marker = (
            DeviceEvent(
                envelope.device_id, envelope.kind, "clock_skew", received_at, {"skew_s": round(skew_s, 1)}
            )
            if skewed
            else DeviceEvent(envelope.device_id, envelope.kind, "clock_skew_clear", received_at, {})
        )
        return (marker, *records)


def clock_skewed(device_ts: float, received_at: float) -> bool:
    """A device time this far from the gateway's is not kept: its records take the receive time."""
    return abs(device_ts - received_at) > MAX_CLOCK_SKEW_S


def _check_record(record: Record, kind: DeviceKind) -> None:
    device_id = record.device_id
    if not math.isfinite(record.ts):
        raise PayloadError("bad_ts", "ts is not finite", device_id)
    if isinstance(record, Reading):
        if record.metric not in METRICS[kind]:
            raise PayloadError("unknown_metric", f"{kind.value} has no metric {record.metric!r}", device_id)
        if not math.isfinite(record.value):
            raise PayloadError("non_finite", f"{record.metric} is {record.value}", device_id)
    elif isinstance(record, DeviceEvent):
        if record.name not in EVENTS[kind]:
            raise PayloadError("unknown_event", f"{kind.value} has no event {record.name!r}", device_id)
        check_attrs(record.attrs, device_id)


def check_attrs(attrs: Mapping[str, Any], device_id: str = "") -> None:
    """Attributes must be plain JSON of bounded size: finite numbers, 64-bit integers, short strings,
    shallow, few items, at most `MAX_ATTRS_BYTES` as JSON."""
    items = 0
    stack: list[tuple[Any, int]] = [(attrs, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping | list):
            if depth > MAX_ATTRS_DEPTH:
                raise PayloadError("bad_attrs", f"attrs nest deeper than {MAX_ATTRS_DEPTH}", device_id)
            children = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
            items += len(children)
            if items > MAX_ATTRS_ITEMS:
                raise PayloadError("bad_attrs", f"attrs hold more than {MAX_ATTRS_ITEMS} items", device_id)
            for key, child in children:
                if not isinstance(key, str | int) or (isinstance(key, str) and len(key) > MAX_ATTRS_STRING):
                    raise PayloadError("bad_attrs", "attrs keys must be short strings", device_id)
                stack.append((child, depth + 1))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise PayloadError("non_finite", f"attrs hold {value}", device_id)
        elif isinstance(value, str):
            if len(value) > MAX_ATTRS_STRING:
                raise PayloadError(
                    "bad_attrs", f"an attrs string is longer than {MAX_ATTRS_STRING}", device_id
                )
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_ATTRS_INT <= value <= MAX_ATTRS_INT:
                raise PayloadError("bad_attrs", "an attrs integer is beyond 64 bits", device_id)
        elif value is not None and not isinstance(value, bool):
            raise PayloadError("bad_attrs", f"attrs hold a {type(value).__name__}", device_id)
    # Shallow and few items by now, so serialising them is cheap.
    size = len(json.dumps(attrs, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_ATTRS_BYTES:
        raise PayloadError("bad_attrs", f"attrs are {size} bytes as JSON > {MAX_ATTRS_BYTES}", device_id)
