"""The gateway's own topics reach a second, real mosquitto (the district's) over the shipped bridge."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from analytics.devices import DeviceKind, DeviceSpec
from simulators.fleet import Fleet
from sinks.config import MqttPublishConfig, SinksConfig
from tests.conftest import Broker, start_mosquitto, stop_process
from tests.harness import gateway_config, running_gateway

SHIPPED_BRIDGE = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "bridge.conf"
Received = tuple[str, bytes, bool]


def bridge_to(district: Broker, campus_id: str) -> str:
    """The shipped bridge.conf aimed at `district` (plain TCP, anonymous, as the test broker is)."""
    kept = [
        line
        for line in SHIPPED_BRIDGE.read_text().splitlines()
        if not line.startswith(("remote_username", "remote_password", "bridge_cafile"))
    ]
    text = "\n".join(kept).replace("CAMPUS_ID", campus_id)
    return (
        text.replace("address district-broker.example:8883", f"address {district.host}:{district.port}")
        + "\n"
    )


class Listener:
    """A district-side subscriber to `campus/+/gateway/#` that queues what arrives."""

    def __init__(self, broker: Broker, client_id: str) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = lambda c, *_: c.subscribe("campus/+/gateway/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, bool(m.retain)))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5)

    def wait_for(self, topic_part: str, timeout_s: float = 15.0) -> Received:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            if topic_part in message[0]:
                return message
        raise AssertionError(f"no message on a topic with {topic_part!r} within {timeout_s} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    district_proc, district = start_mosquitto(tmp_path / "district")
    campus_proc, campus = start_mosquitto(tmp_path / "campus", bridge_to(district, "test"))
    yield campus, district
    stop_process(campus_proc)
    stop_process(district_proc)


async def test_an_alert_raised_on_the_campus_reaches_the_district_broker(
    brokers: tuple[Broker, Broker], tmp_path: Path
) -> None:
    campus, district = brokers
    devices = [DeviceSpec(id="p1", kind=DeviceKind.PANIC, building="教学楼", zone="门卫室")]
    config = gateway_config(campus, tmp_path / "gw.db", devices).model_copy(
        update={"sinks": SinksConfig(mqtt=MqttPublishConfig(enabled=True))}
    )
    listener = Listener(district, "district-live")
    fleet = Fleet("test", campus.host, campus.port, client_id="test-fleet")
    try:
        topic, payload, _ = listener.wait_for("/bridge/state")
        assert (topic, payload) == ("campus/test/gateway/bridge/state", b"1")
        async with running_gateway(config) as gw:
            assert listener.wait_for("gateway/status")[1] == b"online"
            fleet.panic("p1").press()
            await gw.wait_for_alert("panic_pressed", "p1")
            topic, payload, _ = listener.wait_for("/alerts/")
            alert = json.loads(payload)
            assert topic == f"campus/test/gateway/alerts/{alert['id']}"
            assert (alert["rule"], alert["state"], alert["building"]) == ("panic_pressed", "active", "教学楼")
            # A district consumer that connects later gets the current state, retained.
            late = Listener(district, "district-late")
            try:
                topic, payload, retained = late.wait_for("/alerts/")
                assert retained and json.loads(payload)["state"] == "active"
            finally:
                late.close()
            response = await gw.http.post(
                f"/api/v1/alerts/{alert['id']}/resolve", headers=gw.headers(), json={"note": "误触"}
            )
            response.raise_for_status()
            assert json.loads(listener.wait_for("/alerts/")[1])["state"] == "resolved"
            assert listener.wait_for("/alerts/")[1] == b""  # the retained copy is cleared
        assert listener.wait_for("gateway/status")[1] == b"offline"
    finally:
        fleet.close()
        listener.close()
