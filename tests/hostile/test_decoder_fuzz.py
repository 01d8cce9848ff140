"""Property test of the MQTT path a device reaches: decoder -> validator -> rules -> alert JSON.

Every payload, whatever its values and attrs (NaN, infinities, huge integers, long strings, deep
nesting, wrong types, bytes that are not JSON), is either admitted with finite, bounded content or
refused with a `PayloadError` naming a known reason; nothing else is ever raised, and every alert
it raises serialises to JSON a browser's `JSON.parse` accepts (stream, REST, webhooks)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.alerts import AlertService
from analytics.catalog import EVENTS, METRICS
from analytics.devices import DeviceSpec, Inventory
from analytics.errors import PayloadError
from analytics.ingest import MAX_ATTRS_BYTES, MAX_ATTRS_DEPTH, Duplicate, IngestValidator
from analytics.records import DeviceEvent, DeviceKind, Reading
from analytics.rules.defaults import default_rules
from analytics.rules.engine import RuleEngine
from analytics.sessions import Lane
from api.schemas import AlertOut
from drivers.mqtt.codec import ProtocolV1Decoder
from drivers.mqtt.shapes import PayloadShape
from gateway.notify.config import ChannelConfig
from gateway.notify.formats import render
from gateway.notify.policy import Dispatch, Reason
from tests.hostile.strict import strict_dumps, strict_loads
from tests.rules.scenario import MemoryJournal

NOW = 1_796_000_000.0
KINDS = [kind for kind in DeviceKind if kind is not DeviceKind.FIRE_PANEL]
SHAPE = PayloadShape.model_validate(
    {
        "ts": {"path": "time", "unit": "ms"},
        "seq": "frame.no",
        "values": {"temperature_c": {"path": "data.tempF", "scale": 0.5555556, "offset": -17.777778}},
        "event": {"path": "alm.code", "names": {"1": "alarm", "0": "alarm_clear"}, "attrs": {"x": "alm.x"}},
        "status": {"path": "st", "online": [1, "on"]},
    }
)
INVENTORY = Inventory(
    [DeviceSpec(id=f"d-{kind.value}", kind=kind, building="楼") for kind in KINDS]
    + [DeviceSpec(id="d-shaped", kind=DeviceKind.SMOKE, payload_shape="acme")]
)
CHANNELS = [ChannelConfig(name=f"c-{f}", url="http://x/", format=f) for f in ("json", "dingtalk", "wecom")]
REASONS = {
    "malformed_json", "not_object", "oversized", "bad_ts", "bad_seq", "bad_state", "bad_values",
    "wrong_type", "non_finite", "unknown_metric", "bad_event", "unknown_event", "bad_attrs", "shape_mismatch",
}  # fmt: skip

numbers = (
    st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 10**400, -(10**400)])
)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=1500)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=40,
)


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@st.composite
def shaped_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A vendor layout mapped by `SHAPE`: the same checks apply after the mapping."""
    channel = draw(st.sampled_from([lane.value for lane in Lane]))
    body = {
        "time": draw(numbers | json_values),
        "frame": {"no": draw(st.integers(0, 100) | json_values)},
        "data": draw(st.fixed_dictionaries({"tempF": numbers | json_values}) | json_values),
        "alm": {"code": draw(st.sampled_from([0, 1, "1"]) | json_values), "x": draw(json_values)},
        "st": draw(json_values),
    }
    return f"campus/fuzz/smoke/d-shaped/{channel}", json.dumps(body).encode()


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(KINDS))
    channel = draw(st.sampled_from([lane.value for lane in Lane]))
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["ts"] = draw(st.just(NOW) | st.floats(NOW - 600, NOW + 600) | numbers | st.text(max_size=30))
    if draw(st.booleans()):
        body["seq"] = draw(st.integers(0, 2**63) | st.integers(0, 100) | numbers | st.text(max_size=5))
    if channel == "telemetry":
        known = st.sampled_from(sorted(METRICS[kind]))
        plain = st.dictionaries(known, st.floats(-1e3, 1e3) | st.booleans(), min_size=1, max_size=3)
        hostile = st.dictionaries(known | st.text(max_size=10), numbers | json_values, max_size=5)
        body["values"] = draw(plain | hostile)
    elif channel == "event":
        body["event"] = draw(st.sampled_from(sorted(EVENTS[kind])) | json_values)
        body["attrs"] = draw(json_values)
    else:
        body["state"] = draw(st.sampled_from(["online", "offline"]) | json_values)
    payload = json.dumps(body).encode()  # NaN and Infinity as Python writes them
    if channel == "event" and draw(st.integers(0, 4)) == 0:
        depth = draw(st.integers(1, 20_000))
        payload = payload[:-1] + f', "attrs": {nested(depth)}}}'.encode()
    if draw(st.integers(0, 9)) == 0:
        payload = draw(st.binary(max_size=200) | st.just(payload[: draw(st.integers(0, len(payload)))]))
    return f"campus/fuzz/{kind.value}/d-{kind.value}/{channel}", payload


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages() | shaped_messages(), min_size=1, max_size=4))
def test_every_payload_is_admitted_bounded_or_dead_lettered_with_a_reason(
    batch: list[tuple[str, bytes]],
) -> None:
    decoder = ProtocolV1Decoder("fuzz", INVENTORY, {"acme": SHAPE})
    validator = IngestValidator(INVENTORY)
    failed_rules: list[str] = []
    engine = RuleEngine(default_rules(), on_error=failed_rules.append)
    alerts = AlertService(MemoryJournal(), lambda: NOW)
    for topic, payload in batch:
        try:
            admitted = validator.admit(decoder.decode(topic, payload, NOW))
        except PayloadError as error:
            assert error.reason in REASONS, error
            continue
        if isinstance(admitted, Duplicate):
            continue
        for record in admitted:
            if isinstance(record, Reading):
                assert abs(record.value) < float("inf") and abs(record.ts) < float("inf")
            if isinstance(record, DeviceEvent):
                size = len(json.dumps(record.attrs, ensure_ascii=False, separators=(",", ":")).encode())
                assert size <= MAX_ATTRS_BYTES and depth_of(record.attrs) <= MAX_ATTRS_DEPTH
                strict_dumps(record.attrs)
            for signal in engine.evaluate(record, INVENTORY.get(record.device_id)):  # type: ignore[arg-type]
                alert = alerts.apply(signal)
                if alert is None:
                    continue
                strict_dumps(AlertOut.of(alert, INVENTORY).model_dump())
                for channel in CHANNELS:
                    body = render(Dispatch(alert, channel.name, 0, Reason.RAISED), channel, "c", "楼", NOW)
                    strict_loads(body)
    assert failed_rules == []  # a rule that raised was isolated, but no payload may make one raise
