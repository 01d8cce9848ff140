"""Protocol v1 decoding and the ingest validator behind it: every way a payload can be wrong has
its own dead-letter reason; seqs drop redeliveries; clock skew is flagged."""

from __future__ import annotations

import json

import pytest

from analytics.devices import DeviceSpec, Inventory
from analytics.ingest import Duplicate, IngestValidator
from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, Record, StatusChange
from analytics.sessions import SeqWindow
from drivers.errors import PayloadError
from drivers.mqtt.codec import ProtocolV1Decoder

NOW = 1_800_000_000.0
INVENTORY = Inventory(
    [
        DeviceSpec(id="s1", kind=DeviceKind.SMOKE),
        DeviceSpec(id="g1", kind=DeviceKind.GATE),
        DeviceSpec(id="c1", kind=DeviceKind.CHEM_CABINET),
    ]
)


class Ingest:
    """The MQTT path up to the records: decode, then validate (as the pipeline does)."""

    def __init__(self) -> None:
        self.decoder = ProtocolV1Decoder("school", INVENTORY)
        self.validator = IngestValidator(INVENTORY)

    def decode(self, topic: str, payload: bytes, received_at: float) -> list[Record] | Duplicate:
        admitted = self.validator.admit(self.decoder.decode(topic, payload, received_at))
        return admitted if isinstance(admitted, Duplicate) else list(admitted)


def decoder() -> Ingest:
    return Ingest()


def test_telemetry_becomes_one_reading_per_value_and_booleans_become_numbers() -> None:
    records = decoder().decode(
        "campus/school/chem_cabinet/c1/telemetry",
        json.dumps({"ts": NOW - 1, "seq": 1, "values": {"voc_ppm": 3.5, "fan_on": True}}).encode(),
        NOW,
    )
    assert records == [
        Reading("c1", DeviceKind.CHEM_CABINET, "voc_ppm", NOW - 1, 3.5),
        Reading("c1", DeviceKind.CHEM_CABINET, "fan_on", NOW - 1, 1.0),
    ]


def test_event_and_status_and_rfc3339_time() -> None:
    codec = decoder()
    [event] = codec.decode(
        "campus/school/gate/g1/event",
        b'{"ts": "2027-01-15T08:00:00Z", "event": "access_denied", "attrs": {"person_id": "p7"}}',
        1_800_000_010.0,
    )  # type: ignore[misc]
    assert isinstance(event, DeviceEvent) and event.attrs == {"person_id": "p7"}
    assert event.ts == 1_800_000_000.0  # 2027-01-15T08:00:00Z
    [status] = codec.decode("campus/school/gate/g1/status", b'{"ts": 1800000000, "state": "offline"}', NOW)  # type: ignore[misc]
    assert status == StatusChange("g1", DeviceKind.GATE, DeviceState.OFFLINE, NOW, "status")


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("campus/school/smoke/s1", b"{}", "bad_topic"),
        ("campus/other/smoke/s1/telemetry", b"{}", "wrong_campus"),
        ("campus/school/toaster/s1/telemetry", b"{}", "unknown_kind"),
        ("campus/school/smoke/zz/telemetry", b"{}", "unknown_device"),
        ("campus/school/gate/s1/telemetry", b"{}", "kind_mismatch"),
        ("campus/school/smoke/s1/telemetry", b"{" + b" " * 70000 + b"}", "oversized"),
        ("campus/school/smoke/s1/telemetry", b"{nope", "malformed_json"),
        ("campus/school/smoke/s1/telemetry", b"\xff\xfe", "malformed_json"),
        ("campus/school/smoke/s1/telemetry", b"[]", "not_object"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {}}', "bad_values"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {"colour": 1}}', "unknown_metric"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {"temperature_c": "20"}}', "wrong_type"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {"temperature_c": null}}', "wrong_type"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {"temperature_c": NaN}}', "non_finite"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {"temperature_c": -Infinity}}', "non_finite"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {"temperature_c": 1e400}}', "non_finite"),
        ("campus/school/smoke/s1/telemetry", b'{"values": {"temperature_c": 1}, "note": NaN}', "non_finite"),
        ("campus/school/smoke/s1/status", b'{"state": "online", "x": [Infinity]}', "non_finite"),
        ("campus/school/smoke/s1/telemetry", b'{"ts": true, "values": {"temperature_c": 1}}', "bad_ts"),
        ("campus/school/smoke/s1/telemetry", b'{"ts": "noon", "values": {"temperature_c": 1}}', "bad_ts"),
        ("campus/school/smoke/s1/telemetry", b'{"seq": -1, "values": {"temperature_c": 1}}', "bad_seq"),
        ("campus/school/smoke/s1/telemetry", b'{"seq": 1.5, "values": {"temperature_c": 1}}', "bad_seq"),
        ("campus/school/smoke/s1/event", b'{"event": 3}', "bad_event"),
        ("campus/school/smoke/s1/event", b'{"event": "pressed"}', "unknown_event"),
        ("campus/school/smoke/s1/event", b'{"event": "alarm", "attrs": []}', "bad_attrs"),
        ("campus/school/smoke/s1/status", b'{"state": "sleepy"}', "bad_state"),
        ("campus/school/smoke/s1/config", b"{}", "bad_channel"),
    ],
)
def test_invalid_messages_name_their_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as error:
        decoder().decode(topic, payload, NOW)
    assert error.value.reason == reason


def test_seq_drops_redeliveries_but_accepts_a_restarted_counter() -> None:
    codec = decoder()
    topic = "campus/school/smoke/s1/telemetry"

    def send(seq: int) -> object:
        return codec.decode(topic, json.dumps({"seq": seq, "values": {"battery_pct": 90}}).encode(), NOW)

    assert isinstance(send(4980), list)
    assert isinstance(send(5000), list)
    assert send(5000) == Duplicate("s1", 5000)
    assert isinstance(send(4990), list)  # late, never seen: taken once...
    assert send(4990) == Duplicate("s1", 4990)  # ...then a redelivery
    assert send(4970) == Duplicate("s1", 4970)  # below the first seen: cannot tell, so not taken twice
    assert isinstance(send(1), list)  # far below: the device restarted its counter
    codec.decode("campus/school/smoke/s1/status", b'{"state": "online"}', NOW)
    assert isinstance(send(1), list)  # a device coming online may restart at any number


def test_clock_skew_uses_receive_time_and_flags_once_until_back_in_sync() -> None:
    codec = decoder()
    topic = "campus/school/smoke/s1/telemetry"
    first = codec.decode(topic, json.dumps({"ts": NOW - 3600, "values": {"battery_pct": 90}}).encode(), NOW)
    assert isinstance(first, list)
    assert [type(r).__name__ for r in first] == ["DeviceEvent", "Reading"]
    assert (
        isinstance(first[0], DeviceEvent)
        and first[0].name == "clock_skew"
        and first[0].attrs == {"skew_s": -3600.0}
    )
    assert first[1].ts == NOW
    second = codec.decode(topic, json.dumps({"ts": NOW - 3600, "values": {"battery_pct": 90}}).encode(), NOW)
    assert isinstance(second, list) and len(second) == 1
    back = codec.decode(topic, json.dumps({"ts": NOW - 2, "values": {"battery_pct": 90}}).encode(), NOW)
    assert isinstance(back, list) and isinstance(back[0], DeviceEvent) and back[0].name == "clock_skew_clear"


def test_events_and_telemetry_keep_separate_seq_lanes() -> None:
    """The gateway may process an event before earlier telemetry; neither is taken for a duplicate."""
    codec = decoder()
    event = codec.decode("campus/school/smoke/s1/event", b'{"seq": 6, "event": "alarm"}', NOW)
    telemetry = codec.decode(
        "campus/school/smoke/s1/telemetry", b'{"seq": 5, "values": {"battery_pct": 9}}', NOW
    )
    assert isinstance(event, list) and isinstance(telemetry, list)
    assert codec.decode("campus/school/smoke/s1/event", b'{"seq": 6, "event": "alarm"}', NOW) == Duplicate(
        "s1", 6
    )


def test_messages_resent_out_of_order_are_each_taken_once() -> None:
    """After a broker crash a publisher resent ...24, 31, 25...30: a high-water mark dropped 25-30."""
    codec = decoder()
    topic = "campus/school/smoke/s1/telemetry"

    def send(seq: int) -> object:
        return codec.decode(topic, json.dumps({"seq": seq, "values": {"battery_pct": 90}}).encode(), NOW)

    order = [*range(1, 25), 31, *range(25, 31)]
    assert all(isinstance(send(seq), list) for seq in order)
    assert all(send(seq) == Duplicate("s1", seq) for seq in order)


def test_a_refused_message_leaves_no_clock_skew_flag_behind() -> None:
    """The skew flag was set before the rest was validated: a refused skewed message swallowed the
    `clock_skew` event of the next good one."""
    codec = decoder()
    topic = "campus/school/smoke/s1/telemetry"
    with pytest.raises(PayloadError):
        codec.decode(topic, json.dumps({"ts": NOW - 3600, "values": {"colour": 1}}).encode(), NOW)
    records = codec.decode(topic, json.dumps({"ts": NOW - 3600, "values": {"battery_pct": 90}}).encode(), NOW)
    assert isinstance(records, list) and isinstance(records[0], DeviceEvent)
    assert records[0].name == "clock_skew"


def test_deep_json_is_dead_lettered_as_malformed_with_its_device() -> None:
    payload = b'{"event": "alarm", "attrs": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2000 + b"}"
    with pytest.raises(PayloadError) as error:
        decoder().decode("campus/school/smoke/s1/event", payload, NOW)
    assert (error.value.reason, error.value.device_id) == ("malformed_json", "s1")


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ('{"button": NaN}', "non_finite"),
        ('{"a": {"b": {"c": {"d": {"e": 1}}}}}', "bad_attrs"),
        ("{" + ", ".join(f'"k{n}": {n}' for n in range(100)) + "}", "bad_attrs"),
        ('{"note": "' + "x" * 5000 + '"}', "bad_attrs"),
    ],
)
def test_event_attrs_are_finite_shallow_and_small(attrs: str, reason: str) -> None:
    with pytest.raises(PayloadError) as error:
        decoder().decode(
            "campus/school/smoke/s1/event", f'{{"event": "alarm", "attrs": {attrs}}}'.encode(), NOW
        )
    assert error.value.reason == reason


def test_a_seq_sqlite_cannot_store_is_refused_at_the_edge() -> None:
    with pytest.raises(PayloadError) as error:
        decoder().decode(
            "campus/school/smoke/s1/event", b'{"seq": 9223372036854775808, "event": "alarm"}', NOW
        )
    assert error.value.reason == "bad_seq"


def test_the_seq_window_survives_being_saved_and_loaded() -> None:
    window = SeqWindow()
    for seq in (1, 2, 3, 7, 5):
        assert window.admit(seq)
    restored = SeqWindow.load(window.dump())
    assert restored == window and restored.missing == {4, 6}
    assert not restored.admit(5) and restored.admit(6) and restored.admit(4)
    assert SeqWindow.load(restored.dump()).missing == set()


def test_a_status_repeated_without_a_device_time_is_not_a_change() -> None:
    codec = decoder()
    topic = "campus/school/smoke/s1/status"
    assert len(codec.decode(topic, b'{"state": "online"}', NOW)) == 1  # type: ignore[arg-type]
    assert codec.decode(topic, b'{"state": "online"}', NOW + 5) == []  # the retained copy again
    assert len(codec.decode(topic, b'{"state": "offline"}', NOW + 9)) == 1  # type: ignore[arg-type]
