"""kill -9 of a gateway process under load: every reading ends up stored exactly once.

Measured before the one-writer core: 11-14 of 100k readings stored twice (the telemetry seq was
persisted once a second, in a transaction of its own). Now the seen seqs commit with the rows
they guard, so a message is either committed with its seq (and dropped when redelivered) or not
committed at all (and processed when redelivered).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import free_port
from tests.conftest import Broker

DEVICES = 50
MESSAGES = 12_000


def _write_config(tmp_path: Path, broker: Broker) -> Path:
    devices = "\n".join(
        f"  - {{id: t{n:02d}, kind: temperature, reporting_interval_s: 3600}}" for n in range(DEVICES)
    )
    (tmp_path / "inventory.yaml").write_text(f"devices:\n{devices}\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
campus: {{id: k9, name: kill-9}}
broker: {{host: 127.0.0.1, port: {broker.port}, client_id: gw-k9}}
storage: {{sqlite_path: gw.db}}
api: {{host: 127.0.0.1, port: {free_port()}, tokens: [{{name: op, role: operator, sha256: "{"a" * 64}"}}]}}
inventory: inventory.yaml
"""
    )
    return config


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def _stored(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            total, distinct = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT device_id || ':' || ts) FROM readings"
            ).fetchone()
        except sqlite3.OperationalError as exc:  # the file exists before the gateway made its schema
            if "no such table" not in str(exc):
                raise
            return 0, 0
    return int(total), int(distinct)


def _publish(broker: Broker, done: threading.Event) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="k9-fleet")
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    base = time.time() - 60
    infos = []
    for n in range(MESSAGES):
        device, seq = n % DEVICES, n // DEVICES + 1
        body = {"ts": base + seq * 0.001, "seq": seq, "values": {"temperature_c": 20.0 + seq % 7}}
        infos.append(
            client.publish(f"campus/k9/temperature/t{device:02d}/telemetry", json.dumps(body), qos=1)
        )
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()
    done.set()


def test_kill_9_under_load_stores_every_reading_exactly_once(mosquitto: Broker, tmp_path: Path) -> None:
    config = _write_config(tmp_path, mosquitto)
    db = tmp_path / "gw.db"
    gateway = _start(config)
    try:
        deadline = time.monotonic() + 20
        while _stored(db)[0] == 0 and not (tmp_path / "gw.db-wal").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # subscribed (its persistent session now queues for it)
        published = threading.Event()
        threading.Thread(target=_publish, args=(mosquitto, published), daemon=True).start()
        kills = 0
        for _ in range(3):  # kill it mid-stream, more than once
            deadline = time.monotonic() + 30
            target = (kills + 1) * MESSAGES // 5
            while _stored(db)[0] < target and time.monotonic() < deadline:
                time.sleep(0.02)
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(10)
            kills += 1
            gateway = _start(config)
        assert published.wait(60)
        deadline = time.monotonic() + 60
        while _stored(db)[0] < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # anything redelivered late would land now
        total, distinct = _stored(db)
        assert kills == 3
        assert (total, distinct) == (MESSAGES, MESSAGES)
    finally:
        gateway.kill()
        gateway.wait(10)
