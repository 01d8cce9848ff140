"""The shipped mosquitto config enforces per-device ACLs: a device publishes only under its own id."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import free_port
from tests.conftest import Broker, launch_mosquitto, stop_process

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "mosquitto"


def client(broker: Broker, user: str) -> paho.Client:
    connected = threading.Event()
    mqtt = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}")
    mqtt.username_pw_set(user, f"{user}-pw")
    mqtt.on_connect = lambda c, u, f, reason, p: connected.set() if not reason.is_failure else None
    mqtt.connect(broker.host, broker.port)
    mqtt.loop_start()
    assert connected.wait(5), f"{user} could not connect"
    return mqtt


def test_device_may_publish_only_under_its_own_topic(tmp_path: Path) -> None:
    passwd_tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(passwd_tool).exists():
        pytest.fail("mosquitto_passwd is required (Debian package mosquitto)")
    passwd = tmp_path / "passwd"
    for user in ("gateway", "s1", "s2"):
        subprocess.run(
            [passwd_tool, "-b", *(["-c"] if user == "gateway" else []), str(passwd), user, f"{user}-pw"],
            check=True,
        )
    port = free_port()
    shipped = (SHIPPED / "mosquitto.conf").read_text()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        shipped.replace("listener 1883 0.0.0.0", f"listener {port} 127.0.0.1")
        .replace("/etc/mosquitto/campus/passwd", str(passwd))
        .replace("/etc/mosquitto/campus/acl", str(SHIPPED / "acl"))
        .replace("/var/lib/mosquitto/", f"{tmp_path}/")
        + f"user {getpass.getuser()}\n"
    )
    broker = Broker("127.0.0.1", port, config)
    proc = launch_mosquitto(broker)
    received: list[str] = []
    try:
        gateway = client(broker, "gateway")
        gateway.on_message = lambda c, u, message: received.append(message.topic)
        gateway.subscribe("campus/#", qos=1)
        time.sleep(0.3)
        device = client(broker, "s1")
        device.publish(
            "campus/school/smoke/s1/telemetry", b'{"values": {"battery_pct": 90}}', qos=1
        ).wait_for_publish(5)
        device.publish("campus/school/smoke/s2/event", b'{"event": "alarm"}', qos=1).wait_for_publish(5)
        time.sleep(0.5)
        assert received == ["campus/school/smoke/s1/telemetry"]  # s1 cannot raise an alarm as s2
        for mqtt in (gateway, device):
            mqtt.disconnect()
            mqtt.loop_stop()
    finally:
        stop_process(proc)
