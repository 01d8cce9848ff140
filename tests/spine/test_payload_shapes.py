"""Vendor payload shapes: another JSON layout mapped onto protocol v1 by config, not code."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from analytics.devices import DeviceSpec, Inventory
from analytics.ingest import IngestValidator
from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, StatusChange
from drivers.errors import PayloadError
from drivers.mqtt.codec import ProtocolV1Decoder
from drivers.mqtt.shapes import PayloadShape
from gateway.config import ConfigError, load_config
from simulators.fleet import Fleet
from tests.conftest import Broker
from tests.harness import gateway_config, running_gateway

NOW = 1_800_000_000.0
ACME_SMOKE = PayloadShape.model_validate(
    {
        "ts": {"path": "time", "unit": "ms"},
        "seq": "frame.no",
        "values": {
            "temperature_c": {"path": "data.tempF", "scale": 5 / 9, "offset": -160 / 9},
            "obscuration_pct_m": {"path": "data.channels.0.smoke", "scale": 0.1},
            "battery_pct": {"path": "dev.bat"},
        },
        "event": {
            "path": "alm.code",
            "names": {"1": "alarm", "0": "alarm_clear"},
            "attrs": {"zone": "alm.z"},
        },
        "status": {"path": "st", "online": [1, "on"]},
    }
)
INVENTORY = Inventory(
    [
        DeviceSpec(id="acme-1", kind=DeviceKind.SMOKE, payload_shape="acme_smoke"),
        DeviceSpec(id="v1-smoke", kind=DeviceKind.SMOKE),
    ]
)


def decode(channel: str, body: Any, device_id: str = "acme-1") -> Any:
    """Decode and validate, as the pipeline does: the mapped body is checked like any v1 payload."""
    decoder = ProtocolV1Decoder("school", INVENTORY, {"acme_smoke": ACME_SMOKE})
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    envelope = decoder.decode(f"campus/school/smoke/{device_id}/{channel}", payload, NOW)
    return list(IngestValidator(INVENTORY).admit(envelope))  # type: ignore[arg-type]


def test_telemetry_fields_units_time_and_seq_are_mapped() -> None:
    body = {
        "time": (NOW - 2) * 1000,
        "frame": {"no": 7},
        "data": {"tempF": 212.0, "channels": [{"smoke": 25}]},
        "dev": {"bat": 88},
        "vendor_extra": "ignored",
    }
    records = decode("telemetry", body)
    assert [(r.metric, round(r.value, 6), r.ts) for r in records] == [
        ("temperature_c", 100.0, NOW - 2),
        ("obscuration_pct_m", 2.5, NOW - 2),
        ("battery_pct", 88.0, NOW - 2),
    ]
    assert all(isinstance(r, Reading) for r in records)


def test_a_partial_frame_keeps_what_it_has_and_an_empty_one_is_refused() -> None:
    [reading] = decode("telemetry", {"dev": {"bat": 50}})
    assert (reading.metric, reading.value, reading.ts) == ("battery_pct", 50.0, NOW)
    with pytest.raises(PayloadError) as empty:
        decode("telemetry", {"data": {}})
    assert empty.value.reason == "bad_values"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"dev": {"bat": NaN}}', "non_finite"),
        ({"dev": {"bat": "full"}}, "wrong_type"),
        ({"time": "yesterday", "dev": {"bat": 1}}, "bad_ts"),
        ({"frame": {"no": -1}, "dev": {"bat": 1}}, "bad_seq"),
    ],
)
def test_mapped_values_are_validated_like_any_v1_payload(body: Any, reason: str) -> None:
    with pytest.raises(PayloadError) as refused:
        decode("telemetry", body)
    assert (refused.value.reason, refused.value.device_id) == (reason, "acme-1")


def test_events_are_named_through_the_table_with_their_attributes() -> None:
    [event] = decode("event", {"alm": {"code": 1, "z": "3F-east"}})
    assert event == DeviceEvent("acme-1", DeviceKind.SMOKE, "alarm", NOW, {"zone": "3F-east"})
    [clear] = decode("event", {"alm": {"code": 0}})
    assert (clear.name, clear.attrs) == ("alarm_clear", {})
    with pytest.raises(PayloadError) as unmapped:
        decode("event", {"alm": {"code": 9}})
    assert unmapped.value.reason == "unknown_event" and "unmapped:9" in unmapped.value.detail
    with pytest.raises(PayloadError) as missing:
        decode("event", {"alarm": 1})
    assert missing.value.reason == "shape_mismatch" and "alm.code" in missing.value.detail


def test_status_values_map_to_online_and_offline() -> None:
    [online] = decode("status", {"st": "on"})
    [offline] = decode("status", {"st": 0})
    assert isinstance(online, StatusChange) and online.state is DeviceState.ONLINE
    assert isinstance(offline, StatusChange) and offline.state is DeviceState.OFFLINE


def test_devices_without_a_shape_still_speak_v1() -> None:
    [reading] = decode("telemetry", {"values": {"battery_pct": 70}}, device_id="v1-smoke")
    assert reading.value == 70.0
    with pytest.raises(PayloadError) as vendor_body:
        decode("telemetry", {"dev": {"bat": 70}}, device_id="v1-smoke")
    assert vendor_body.value.reason == "bad_values"


def _write_config(tmp_path: Path, device: dict[str, Any], shapes: dict[str, Any]) -> Path:
    config = {"campus": {"id": "school", "name": "学校"}, "inventory": [device], "mqtt_shapes": shapes}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def test_config_loads_shapes_and_binds_devices_to_them(tmp_path: Path) -> None:
    path = _write_config(
        tmp_path,
        {"id": "acme-1", "kind": "smoke", "payload_shape": "acme"},
        {"acme": {"values": {"temperature_c": {"path": "t", "scale": 0.1}}}},
    )
    config = load_config(path)
    assert math.isclose(config.mqtt_shapes["acme"].values["temperature_c"].scale, 0.1)


@pytest.mark.parametrize(
    ("device", "shapes", "message"),
    [
        (
            {"id": "acme-1", "kind": "smoke", "payload_shape": "acme"},
            {},
            "inventory[0] (id 'acme-1').payload_shape: 'acme' is not under mqtt_shapes (defined: none)",
        ),
        (
            {"id": "acme-1", "kind": "smoke", "payload_shape": "acme"},
            {"acme": {"values": {"voc_ppm": {"path": "v"}}}},
            "mqtt_shapes.acme.values.voc_ppm is not a metric of smoke",
        ),
        (
            {"id": "acme-1", "kind": "smoke", "payload_shape": "acme"},
            {"acme": {"event": {"path": "e", "names": {"1": "pressed"}}}},
            "mqtt_shapes.acme.event.names maps to 'pressed', not an event of smoke",
        ),
    ],
)
def test_config_errors_name_the_device_and_the_key(
    tmp_path: Path, device: dict[str, Any], shapes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write_config(tmp_path, device, shapes))
    assert message in str(error.value)
    assert str(tmp_path / "gateway.yaml") in str(error.value)


def test_a_shape_with_a_bad_field_is_refused_at_load(tmp_path: Path) -> None:
    path = _write_config(
        tmp_path, {"id": "v1", "kind": "smoke"}, {"acme": {"ts": {"path": "time", "unit": "minutes"}}}
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "mqtt_shapes.acme.ts.unit" in str(error.value)


async def test_a_vendor_smoke_detector_through_the_broker_raises_fire_alarm(
    mosquitto: Broker, tmp_path: Path
) -> None:
    devices = [DeviceSpec(id="acme-1", kind=DeviceKind.SMOKE, building="教学楼", payload_shape="acme_smoke")]
    config = gateway_config(mosquitto, tmp_path / "gw.db", devices)
    config.mqtt_shapes = {"acme_smoke": ACME_SMOKE}
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="acme-fleet")
    try:
        async with running_gateway(config) as gw:
            topic = "campus/test/smoke/acme-1"
            fleet.publish(f"{topic}/telemetry", json.dumps({"data": {"tempF": 98.6}}).encode())
            fleet.publish(f"{topic}/event", json.dumps({"alm": {"code": 1, "z": "3F"}}).encode())
            alert = await gw.wait_for_alert("fire_alarm", "acme-1")
            assert alert["state"] == "active"
            gw.flush_store()  # the API reads readings from the store, a commit behind the alert
            readings = await gw.get(
                "/api/v1/devices/acme-1/readings", metric="temperature_c", **{"from": "0"}
            )
            assert [round(p["value"], 1) for p in readings["points"]] == [37.0]
    finally:
        fleet.close()
