"""A fleet of simulated devices speaking MQTT device protocol v1 (SPEC section 3).

fleet = Fleet("demo", host, port)
fleet.smoke("b1-3f-12").alarm()
fleet.temperature("kitchen-1").telemetry(temperature_c=61.0)
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class SimulatedDevice:
    """One device: publishes telemetry, events and status on its own topics with increasing seq."""

    def __init__(self, fleet: Fleet, kind: str, device_id: str) -> None:
        self.fleet = fleet
        self.kind = kind
        self.device_id = device_id
        self._seq = itertools.count(1)

    def topic(self, channel: str) -> str:
        return f"campus/{self.fleet.campus_id}/{self.kind}/{self.device_id}/{channel}"

    def telemetry(self, ts: float | None = None, **values: float | bool) -> None:
        self.publish("telemetry", {"ts": ts or time.time(), "seq": next(self._seq), "values": values})

    def event(self, name: str, ts: float | None = None, **attrs: Any) -> None:
        body: dict[str, Any] = {"ts": ts or time.time(), "seq": next(self._seq), "event": name}
        if attrs:
            body["attrs"] = attrs
        self.publish("event", body)

    def status(self, state: str) -> None:
        self.publish("status", {"ts": time.time(), "state": state}, retain=True)

    def publish(self, channel: str, body: Mapping[str, Any] | bytes, retain: bool = False) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.fleet.publish(self.topic(channel), payload, retain=retain)

    # The vocabulary of each kind, so scenarios read like what happens on campus.
    def alarm(self) -> None:
        self.event("alarm")

    def alarm_clear(self) -> None:
        self.event("alarm_clear")

    def press(self, button: str = "main") -> None:
        self.event("pressed", button=button)

    def cancel(self) -> None:
        self.event("cancelled")

    def force_open(self) -> None:
        self.event("forced_open")

    def close(self) -> None:
        self.event("closed")


class ConnectedDevice(SimulatedDevice):
    """A device with its own MQTT connection and last will (`status` offline), like real hardware."""

    def __init__(self, fleet: Fleet, kind: str, device_id: str, host: str, port: int) -> None:
        super().__init__(fleet, kind, device_id)
        connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{device_id}")
        will = json.dumps({"state": "offline"}).encode()
        self.client.will_set(self.topic("status"), will, qos=1, retain=True)
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        if not connected.wait(10):
            raise ConnectionError(f"device {device_id} could not connect to {host}:{port}")
        self.status("online")

    def publish(self, channel: str, body: Mapping[str, Any] | bytes, retain: bool = False) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(self.topic(channel), payload, qos=1, retain=retain).wait_for_publish(10)

    def lose_power(self) -> None:
        """Drop the TCP connection without an MQTT DISCONNECT, so the broker sends the last will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


class Fleet:
    """A paho client shared by many simulated devices.

    Args:
        qos: QoS of every publish; 1 waits for the broker's PUBACK flow control.
    """

    def __init__(self, campus_id: str, host: str, port: int, qos: int = 1, client_id: str = "") -> None:
        self.campus_id = campus_id
        self.qos = qos
        self._connected = threading.Event()
        # paho's message ids wrap at 65,535: more unacknowledged publishes than that collide, so the
        # fleet waits for the broker's acknowledgements past `max_outstanding`.
        self.max_outstanding = 20_000
        self._sent = 0
        self._acknowledged = 0
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        self.client.on_publish = self._on_publish
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = lambda *args: self._connected.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise ConnectionError(f"simulator fleet could not connect to {host}:{port}")
        self._devices: dict[str, SimulatedDevice] = {}

    def device(self, kind: str, device_id: str) -> SimulatedDevice:
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = SimulatedDevice(self, kind, device_id)
        return device

    def connect_device(self, kind: str, device_id: str) -> ConnectedDevice:
        host, port = self.client.host, self.client.port
        device = ConnectedDevice(self, kind, device_id, host, port)
        self._devices[device_id] = device
        return device

    def smoke(self, device_id: str) -> SimulatedDevice:
        return self.device("smoke", device_id)

    def temperature(self, device_id: str) -> SimulatedDevice:
        return self.device("temperature", device_id)

    def electrical_fire(self, device_id: str) -> SimulatedDevice:
        return self.device("electrical_fire", device_id)

    def panic(self, device_id: str) -> SimulatedDevice:
        return self.device("panic", device_id)

    def gate(self, device_id: str) -> SimulatedDevice:
        return self.device("gate", device_id)

    def chem_cabinet(self, device_id: str) -> SimulatedDevice:
        return self.device("chem_cabinet", device_id)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> paho.MQTTMessageInfo:
        while self._sent - self._acknowledged >= self.max_outstanding:
            time.sleep(0.0005)
        self._sent += 1
        return self.client.publish(topic, payload, qos=self.qos, retain=retain)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._acknowledged += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every QoS 1 publish so far has been acknowledged by the broker."""
        deadline = time.monotonic() + timeout_s
        info = self.client.publish("campus/_flush", b"", qos=1)
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
