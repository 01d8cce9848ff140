"""A real gateway forwarding a fleet's readings to a real VictoriaMetrics: the TSDB is stopped for
minutes under load, the gateway is killed with SIGKILL once while it replays the backlog, and in
the end every reading is in the TSDB exactly once (same series and timestamp overwrite: a batch
sent again after the kill is stored once, proved by the counts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import free_port
from tests.conftest import Broker
from tests.sinks.conftest import Victoria

DEVICES = 20
MESSAGES = 45_000  # two readings each
RATE_MSGS_S = 250.0  # 3 minutes of load
OUTAGE_S = 150.0
READINGS = '{__name__=~"temperature_.+"}'
REPLAY_ROWS_S = 4000.0  # the sink's pace: the replay after the outage takes ~20 s


def write_config(tmp_path: Path, broker: Broker, victoria: Victoria, api_port: int) -> Path:
    devices = "\n".join(
        f"  - {{id: t{n:02d}, kind: temperature, building: B{n % 3}, zone: z{n}, reporting_interval_s: 3600}}"
        for n in range(DEVICES)
    )
    (tmp_path / "inventory.yaml").write_text(f"devices:\n{devices}\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
campus: {{id: k9, name: outage}}
broker: {{host: 127.0.0.1, port: {broker.port}, client_id: gw-sink}}
storage: {{sqlite_path: gw.db}}
api: {{host: 127.0.0.1, port: {api_port}, tokens: [{{name: op, role: operator, sha256: "{"a" * 64}"}}]}}
inventory: inventory.yaml
sinks:
  influx:
    url: {victoria.url}
    org: district
    bucket: campuses
    batch_rows: 1000
    max_rows_per_s: {REPLAY_ROWS_S}
    poll_interval_s: 0.2
    retry_base_s: 0.5
    retry_max_s: 5
"""
    )
    return config


def start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(config.parent / "gateway.log").open("ab"),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def sink_health(api_port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v1/health", timeout=2) as response:
            health: dict[str, Any] = json.loads(response.read())
    except OSError:
        return None
    return dict(health["sinks"]["influx"])


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def publish(broker: Broker, done: threading.Event) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="outage-fleet")
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    started = time.time()
    # Device time 200 s behind, paced like the publishing: never in the future (an export up to
    # now would miss it), within the 300 s the validator trusts, and unique per device.
    base = started - 200
    infos = []
    for n in range(MESSAGES):
        device, seq = n % DEVICES, n // DEVICES + 1
        body = {
            "ts": base + n / RATE_MSGS_S,
            "seq": seq,
            "values": {"temperature_c": 20.0 + n % 7, "humidity_pct": 40},
        }
        infos.append(
            client.publish(f"campus/k9/temperature/t{device:02d}/telemetry", json.dumps(body), qos=1)
        )
        ahead_s = (n + 1) / RATE_MSGS_S - (time.time() - started)
        if ahead_s > 0:
            time.sleep(ahead_s)
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()
    done.set()


def test_tsdb_outage_and_a_kill_9_while_replaying_lose_nothing_and_store_each_reading_once(
    mosquitto: Broker, victoria: Victoria, tmp_path: Path
) -> None:
    api_port = free_port()
    config = write_config(tmp_path, mosquitto, victoria, api_port)
    gateway = start(config)
    try:
        wait_until(lambda: sink_health(api_port) is not None, 30, "the gateway's API")
        published = threading.Event()
        threading.Thread(target=publish, args=(mosquitto, published), daemon=True).start()
        wait_until(lambda: (sink_health(api_port) or {}).get("rows_sent", 0) > 1000, 60, "live forwarding")
        victoria.stop()
        time.sleep(OUTAGE_S)
        during = sink_health(api_port)
        assert during is not None
        assert during["retries"] > 0 and during["rows_behind"] > 0.5 * RATE_MSGS_S * 2 * OUTAGE_S
        assert during["oldest_unsent_age_s"] > OUTAGE_S  # by device time, which runs 200 s behind
        assert during["spool_bytes"] > 0  # rendered ahead while away: the kill below finds a spool
        victoria.start()
        # Killed while the backlog replays: what was sent after the last persisted cursor goes again.
        resent_from = during["rows_sent"]
        wait_until(
            lambda: (sink_health(api_port) or {}).get("rows_sent", 0) > resent_from + 20_000, 120, "replay"
        )
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        gateway = start(config)
        assert published.wait(600)

        def caught_up() -> bool:
            health = sink_health(api_port)
            return (
                health is not None
                and health["rows_behind"] == 0
                and victoria.points(READINGS)[1] >= 2 * MESSAGES
            )

        wait_until(caught_up, 300, "the sink to catch up")
        assert victoria.points(READINGS) == (2 * DEVICES, 2 * MESSAGES)  # every reading, once
        assert victoria.count(READINGS) == 2 * MESSAGES
        health = sink_health(api_port)
        assert health is not None and health["rows_dropped"] == 0 and health["batches_dead_lettered"] == 0
    finally:
        gateway.kill()
        gateway.wait(10)
