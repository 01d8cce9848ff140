"""MQTT ingest benchmark: the gateway's full path against a bare paho subscriber, on one broker.

Throughput is a subscriber's drain rate of a backlog the broker already holds, so it measures the
subscriber, not the Python publisher. For each QoS:
  1. persistent sessions are created for (a) a bare paho subscriber that only counts messages and
     (b) the gateway (`campus-gateway run`), both subscribed to campus/bench/+/+/+, then closed;
  2. the fleet simulator publishes N telemetry messages from 1,000 temperature devices at full
     speed; a QoS 1 marker acknowledged by the broker proves it holds them all;
  3. (a) connects and is timed from CONNACK to its N-th message; then (b) is started and timed
     from CONNACK (its own log line) until /api/v1/health reports N MQTT messages processed.
Latency: a fresh gateway (QoS 1) ingests a continuous fleet load from another process (full speed,
or `--load-rate`) while 50 panic presses, each stamped with its publish time, are injected; the
time to each panic_pressed alert on the WebSocket stream is recorded. The gateway's RSS is
sampled throughout. Exit status 0 only if every target passes.

Usage: python bench/ingest.py [--messages 500000] [--qos 0 1] [--panics 50] [--load-rate MSGS_PER_S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from websockets.asyncio.client import connect as ws_connect

from gateway.broker import free_port
from gateway.config import hash_token
from simulators.fleet import Fleet
from simulators.scenarios import run_load

CAMPUS_ID = "bench"
TOPIC_FILTER = f"campus/{CAMPUS_ID}/+/+/+"
DEVICE_PREFIX = "sim-temp-"
PANIC_PREFIX = "bench-panic-"
TOKEN = "bench-operator-token"
SESSION_EXPIRY_S = 3600
HEALTH_POLL_S = 0.05
STALL_S = 20.0
RSS_SAMPLE_S = 0.1
PANIC_INTERVAL_S = 0.1
PUBLISH_WINDOW = 20_000
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 300.0


def device_ids(count: int) -> list[str]:
    return [f"{DEVICE_PREFIX}{n:04d}" for n in range(count)]


def panic_ids(count: int) -> list[str]:
    return [f"{PANIC_PREFIX}{n:03d}" for n in range(count)]


def _connect_properties() -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    return properties


def _new_subscriber_client(client_id: str) -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)


# --- (a) the bare subscriber -------------------------------------------------------------------


def create_bare_session(host: str, port: int, client_id: str, qos: int) -> None:
    """Connect once with a persistent MQTT v5 session, subscribe, disconnect."""
    subscribed = threading.Event()
    client = _new_subscriber_client(client_id)
    client.on_connect = lambda c, *_: c.subscribe([(TOPIC_FILTER, SubscribeOptions(qos=qos))])
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port, keepalive=30, clean_start=False, properties=_connect_properties())
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise RuntimeError(f"bare subscriber {client_id} got no SUBACK")
    finally:
        client.disconnect()
        client.loop_stop()


def bare_subscriber(
    host: str,
    port: int,
    client_id: str,
    qos: int,
    expected: int,
    results: multiprocessing.connection.Connection,
) -> None:
    """Child process: count messages until `expected`; send CONNACK and done times and byte sizes."""
    state: dict[str, Any] = {"count": 0, "payload_bytes": 0, "topic_bytes": 0, "connected_at": 0.0}
    client = _new_subscriber_client(client_id)

    def on_connect(c: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        state["connected_at"] = time.time()
        state["session_present"] = bool(getattr(flags, "session_present", False))
        c.subscribe([(TOPIC_FILTER, SubscribeOptions(qos=qos))])

    def on_message(c: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        state["count"] += 1
        if state["count"] <= 10_000:
            state["payload_bytes"] += len(message.payload)
            state["topic_bytes"] += len(message.topic)
        if state["count"] == expected:
            state["done_at"] = time.time()
            c.disconnect()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port, keepalive=30, clean_start=False, properties=_connect_properties())
    client.loop_forever()
    results.send(state)


def run_bare(
    host: str, port: int, client_id: str, qos: int, expected: int, timeout_s: float
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=bare_subscriber, args=(host, port, client_id, qos, expected, sender), name="bare-subscriber"
    )
    child.start()
    try:
        if not receiver.poll(timeout_s):
            raise RuntimeError(f"bare subscriber did not receive {expected} messages in {timeout_s:.0f} s")
        result: dict[str, Any] = receiver.recv()
        return result
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()


# --- (b) the gateway ---------------------------------------------------------------------------


@dataclass
class RssSampler:
    """Samples one process's RSS and CPU in a thread; keeps the peak."""

    pid: int
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name=f"rss-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            process = psutil.Process(self.pid)
            while not self._stop.is_set():
                self.peak_rss = max(self.peak_rss, process.memory_info().rss)
                times = process.cpu_times()
                self.cpu_seconds = times.user + times.system
                self._stop.wait(RSS_SAMPLE_S)
        except psutil.Error:
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class GatewayProcess:
    """`campus-gateway run` as a child process with a generated config and its own log file."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        broker_port: int,
        qos: int,
        devices: int,
        panics: int,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.api_port = free_port()
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        inventory: list[dict[str, Any]] = [
            {
                "id": d,
                "kind": "temperature",
                "building": f"B{n % 10}",
                "zone": f"room-{n}",
                "reporting_interval_s": 60,
            }
            for n, d in enumerate(device_ids(devices))
        ]
        inventory += [
            {"id": p, "kind": "panic", "building": "B0", "zone": f"desk-{n}", "reporting_interval_s": 3600}
            for n, p in enumerate(panic_ids(panics))
        ]
        config = {
            "campus": {"id": CAMPUS_ID, "name": "Benchmark campus"},
            "broker": {
                "host": "127.0.0.1",
                "port": broker_port,
                "qos": qos,
                "client_id": f"bench-gw-{name}",
                "mqtt_version": 5,
                "ack_after_commit": True,
            },
            "storage": {"sqlite_path": str(workdir / f"{name}.db")},
            "api": {
                "host": "127.0.0.1",
                "port": self.api_port,
                "tokens": [{"name": "bench", "role": "operator", "sha256": hash_token(TOKEN)}],
            },
            "inventory": inventory,
        }
        for key, value in (extra_config or {}).items():
            if key == "inventory":
                config["inventory"] = inventory + list(value)
            else:
                config[key] = value
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None
        self.sampler: RssSampler | None = None
        self._log_file: Any = None
        self._log_offset = 0

    def start(self) -> None:
        executable = shutil.which("campus-gateway")
        command = [executable] if executable else [sys.executable, "-m", "gateway.cli"]
        self._log_file = self.log_path.open("ab")
        self._log_offset = self._log_file.tell()
        self.proc = subprocess.Popen(
            [*command, "run", "--config", str(self.config_path)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.sampler = RssSampler(self.proc.pid).start()

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.api_port}/api/v1/health", timeout=2
            ) as reply:
                body: dict[str, Any] = json.load(reply)
                return body
        except OSError:
            return None

    def wait_ready(self, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway {self.name} exited:\n{self.log_tail()}")
            body = self.health()
            if body is not None and body["broker"]["connected"]:
                return body
            time.sleep(HEALTH_POLL_S)
        raise RuntimeError(f"gateway {self.name} not connected within {timeout_s:.0f} s:\n{self.log_tail()}")

    def wait_subscribed(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        """Prove the subscription is live: publish a status probe until the gateway counts it."""
        probe = Fleet(CAMPUS_ID, host, port, qos=1, client_id=f"bench-probe-{self.name}")
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                probe.device("temperature", device_ids(1)[0]).publish(
                    "status", {"ts": time.time(), "state": "online"}
                )
                time.sleep(0.2)
                body = self.health()
                if body is not None and body["ingest"]["mqtt_messages"] > 0:
                    return
            raise RuntimeError(f"gateway {self.name} never received a probe")
        finally:
            probe.close()

    def connack_time(self) -> tuple[float, bool]:
        """Wall time of the first 'connected to MQTT broker' line since `start`, and session present."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            text = log.read().decode(errors="replace")
        for line in text.splitlines():
            if "connected to MQTT broker" in line:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                return stamp.timestamp(), "session present: True" in line
        raise RuntimeError(f"gateway {self.name} logged no MQTT connection:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sampler is not None:
            self.sampler.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


# --- the broker and the publisher --------------------------------------------------------------


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[tuple[int, psutil.Process]]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "queue_qos0_messages true\n"
        f"log_dest file {workdir}/mosquitto.log\n"
    )
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not listen within 10 s") from None
                time.sleep(0.05)
        yield port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class PacedFleet(Fleet):
    """The simulator's Fleet with a bounded window of unacknowledged QoS 1 publishes.

    `run_load` on a plain Fleet at QoS 1 queues more than 65,535 unacknowledged messages in paho,
    whose message ids then wrap and collide: paho refuses those publishes (MQTT_ERR_QUEUE_SIZE)
    and run_load ignores the result, so messages are silently lost. Fleet also caps paho at 1,000
    in flight, and paho scans its outgoing messages on every PUBACK, which limits a QoS 1 publisher
    to about 4,000 msg/s here. So this client is built like Fleet's but with paho's in-flight
    limit off, and the semaphore window bounds what is unacknowledged instead.
    """

    def __init__(self, port: int, qos: int, client_id: str, window: int = PUBLISH_WINDOW) -> None:
        self.campus_id = CAMPUS_ID
        self.qos = qos
        self._window = threading.Semaphore(window)
        connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = lambda *_: connected.set()
        self.client.on_publish = lambda *_: self._window.release()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not connected.wait(10):
            raise ConnectionError(f"publisher could not connect to 127.0.0.1:{port}")

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> paho.MQTTMessageInfo:
        if self.qos:
            self._window.acquire()
        info = self.client.publish(topic, payload, qos=self.qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish to {topic} refused by paho: {paho.error_string(info.rc)}")
        return info


def publish_backlog(port: int, qos: int, devices: int, messages: int) -> float:
    """Publish the fleet load at full speed and wait until the broker has acknowledged the last one."""
    fleet = PacedFleet(port, qos, f"bench-fleet-q{qos}")
    try:
        started = time.perf_counter()
        run_load(fleet, device_ids(devices), messages)
        fleet.flush(timeout_s=600)
        # Fleet.flush returns on timeout too; a second marker checked explicitly proves the backlog.
        marker = fleet.client.publish("campus/_bench_marker", b"", qos=1)
        marker.wait_for_publish(600)
        if not marker.is_published():
            raise RuntimeError("the broker did not acknowledge the backlog marker")
        return time.perf_counter() - started
    finally:
        fleet.close()


def load_publisher(
    port: int,
    devices: int,
    messages: int,
    rate_per_s: float | None,
    results: multiprocessing.connection.Connection,
) -> None:
    """Child process: the continuous fleet load of the latency phase (QoS 1, full speed by default)."""
    fleet = PacedFleet(port, 1, "bench-load")
    started = time.time()
    seconds = run_load(fleet, device_ids(devices), messages, rate_per_s)
    ended = time.time()
    fleet.flush(timeout_s=120)
    fleet.close()
    results.send({"started": started, "ended": ended, "seconds": seconds, "messages": messages})


# --- phases ------------------------------------------------------------------------------------


@dataclass
class ThroughputResult:
    qos: int
    messages: int
    publish_s: float
    bare_s: float
    gateway_s: float
    payload_bytes: float
    topic_bytes: float
    readings: int
    dead_letters: dict[str, int]
    duplicates: int
    peak_rss: int
    gateway_cpu_s: float
    session_present: bool
    processed: int
    broker_connects: int
    broker_error: str

    @property
    def complete(self) -> bool:
        return self.processed >= self.messages

    @property
    def bare_rate(self) -> float:
        return self.messages / self.bare_s

    @property
    def gateway_rate(self) -> float:
        """Messages processed per second until the last one (or the last progress, if it stalled)."""
        return self.processed / self.gateway_s

    @property
    def ratio(self) -> float:
        return self.gateway_rate / self.bare_rate


def throughput(
    workdir: Path,
    port: int,
    qos: int,
    devices: int,
    messages: int,
    panics: int,
    extra_config: dict[str, Any] | None = None,
    name: str = "",
    linger_s: float = 0.0,
) -> ThroughputResult:
    """The gateway's QoS `qos` drain of a broker-held backlog against bare paho's, on one broker.

    `linger_s`: how long the gateway keeps running after its drain (a sink catching up, which
    the caller samples), before it is stopped.
    """
    drain_timeout_s = max(120.0, messages / 1000)
    bare_id = f"bench-bare-{name or f'q{qos}'}"
    create_bare_session("127.0.0.1", port, bare_id, qos)
    gateway = GatewayProcess(workdir, name or f"q{qos}", port, qos, devices, panics, extra_config)
    try:
        gateway.start()
        gateway.wait_ready()
        gateway.wait_subscribed("127.0.0.1", port)
        gateway.stop()
        print(f"  QoS {qos}: sessions created; publishing {messages:,} messages ...", flush=True)
        publish_s = publish_backlog(port, qos, devices, messages)
        print(
            f"  QoS {qos}: broker holds the backlog (published in {publish_s:.1f} s); draining (a) ...",
            flush=True,
        )
        bare = run_bare("127.0.0.1", port, bare_id, qos, messages, drain_timeout_s)
        if not bare.get("session_present"):
            raise RuntimeError("bare subscriber's session was not present: the backlog was lost")
        bare_s = bare["done_at"] - bare["connected_at"]
        print(f"  QoS {qos}: (a) drained in {bare_s:.2f} s; draining (b) ...", flush=True)
        gateway.start()
        deadline = time.monotonic() + drain_timeout_s
        body: dict[str, Any] | None = None
        processed, last_progress = 0, time.time()
        done = False
        while time.monotonic() < deadline:
            if gateway.proc is not None and gateway.proc.poll() is not None:
                raise RuntimeError(f"gateway exited during the drain:\n{gateway.log_tail()}")
            body = gateway.health()
            now = time.time()
            count = body["ingest"]["mqtt_messages"] if body else processed
            if count > processed:
                processed, last_progress = count, now
            if processed >= messages:
                done = True
                break
            if now - last_progress > STALL_S:
                break  # the rest is lost (QoS 0) or stuck; report what arrived
            time.sleep(HEALTH_POLL_S)
        connected_at, session_present = gateway.connack_time()
        time.sleep(1.0)  # let the last batch reach the counters before reading them
        final = gateway.health() or body
        assert final is not None and gateway.sampler is not None
        ingest = final["ingest"]
        if not done:
            print(
                f"  QoS {qos}: (b) STALLED at {processed:,} of {messages:,} messages "
                f"(broker connects {final['broker']['connects']}, last error {final['broker']['last_error']!r})",
                flush=True,
            )
        result = ThroughputResult(
            qos=qos,
            messages=messages,
            publish_s=publish_s,
            bare_s=bare_s,
            gateway_s=last_progress - connected_at,
            processed=processed,
            broker_connects=max(lane["connects"] for lane in final["broker"]["sessions"].values()),
            broker_error="; ".join(
                lane["last_error"] for lane in final["broker"]["sessions"].values() if lane["last_error"]
            ),
            payload_bytes=bare["payload_bytes"] / min(messages, 10_000),
            topic_bytes=bare["topic_bytes"] / min(messages, 10_000),
            readings=ingest["readings"],
            dead_letters=ingest["dead_letters"],
            duplicates=ingest["duplicates_dropped"],
            peak_rss=gateway.sampler.peak_rss,
            gateway_cpu_s=gateway.sampler.cpu_seconds,
            session_present=session_present,
        )
        time.sleep(linger_s)
        return result
    finally:
        gateway.stop()


@dataclass
class LatencyResult:
    latencies_ms: list[float]
    injected: int
    load_messages: int
    load_rate: float
    load_covered_window: bool
    processed_rate: float
    backlog_at_end: int
    stream_reconnects: int
    peak_rss: int
    drain_s: float


async def _collect_alerts(
    api_port: int, published: dict[str, float], received: dict[str, float], stop: asyncio.Event
) -> int:
    """Read the live stream; record the arrival of each device's first panic_pressed alert."""
    reconnects = -1
    url = f"ws://127.0.0.1:{api_port}/api/v1/stream?token={TOKEN}"
    while not stop.is_set():
        reconnects += 1
        with contextlib.suppress(OSError, Exception):
            async with ws_connect(url, max_size=None, ping_interval=None) as websocket:
                async for text in websocket:
                    now = time.time()
                    message = json.loads(text)
                    if message.get("type") != "alert":
                        continue
                    alert = message["alert"]
                    device_id = alert.get("device_id")
                    if (
                        alert.get("rule") == "panic_pressed"
                        and device_id in published
                        and device_id not in received
                    ):
                        received[device_id] = now
                    if stop.is_set():
                        break
        if not stop.is_set():
            await asyncio.sleep(0.05)
    return reconnects


async def _latency_async(
    gateway: GatewayProcess, port: int, devices: int, panics: int, load_messages: int, load_rate: float | None
) -> LatencyResult:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    loader = context.Process(
        target=load_publisher, args=(port, devices, load_messages, load_rate, sender), name="load-publisher"
    )
    published: dict[str, float] = {}
    received: dict[str, float] = {}
    stop = asyncio.Event()
    panic_fleet = Fleet(CAMPUS_ID, "127.0.0.1", port, qos=1, client_id="bench-panic")
    collector: asyncio.Task[int] | None = None
    loader.start()
    try:

        async def processed() -> int:
            body = await asyncio.to_thread(gateway.health)
            return int(body["ingest"]["mqtt_messages"]) if body else 0

        # Every device comes online with its first reading; connect the stream after that burst.
        while await processed() < min(load_messages // 10, devices * 2) + 1:
            await asyncio.sleep(HEALTH_POLL_S)
        collector = asyncio.create_task(_collect_alerts(gateway.api_port, published, received, stop))
        await asyncio.sleep(0.5)
        window_start, processed_start = time.time(), await processed()
        for device_id in panic_ids(panics):
            sent = time.time()
            published[device_id] = sent
            panic_fleet.panic(device_id).event("pressed", ts=sent, button="main")
            await asyncio.sleep(PANIC_INTERVAL_S)
        window_end, processed_end = time.time(), await processed()
        loaded = await asyncio.to_thread(receiver.poll, max(60.0, load_messages / 2000))
        load = receiver.recv() if loaded else None
        expected_total = load_messages + panics + 1
        drain_started = time.time()
        deadline = time.monotonic() + max(60.0, load_messages / 2000)
        while time.monotonic() < deadline:
            if len(received) == panics and await processed() >= expected_total:
                break
            await asyncio.sleep(0.2)
        drain_s = time.time() - drain_started
        backlog = max(0, expected_total - await processed())
        stop.set()
        reconnects = 0
        if collector is not None:
            try:
                reconnects = await asyncio.wait_for(collector, 5)
            except TimeoutError:
                collector.cancel()
        assert gateway.sampler is not None
        return LatencyResult(
            latencies_ms=sorted((received[d] - published[d]) * 1000 for d in received),
            injected=panics,
            load_messages=load_messages,
            load_rate=load["messages"] / load["seconds"] if load else 0.0,
            load_covered_window=bool(load and load["started"] < window_start and load["ended"] > window_end),
            processed_rate=(processed_end - processed_start) / (window_end - window_start),
            backlog_at_end=backlog,
            stream_reconnects=max(0, reconnects),
            peak_rss=gateway.sampler.peak_rss,
            drain_s=drain_s,
        )
    finally:
        stop.set()
        if collector is not None and not collector.done():
            collector.cancel()
        panic_fleet.close()
        loader.join(1)
        if loader.is_alive():
            loader.kill()
            loader.join()


def latency(
    workdir: Path, port: int, devices: int, panics: int, load_messages: int, load_rate: float | None
) -> LatencyResult:
    gateway = GatewayProcess(workdir, "latency", port, 1, devices, panics)
    try:
        gateway.start()
        gateway.wait_ready()
        gateway.wait_subscribed("127.0.0.1", port)
        return asyncio.run(_latency_async(gateway, port, devices, panics, load_messages, load_rate))
    finally:
        gateway.stop()


# --- report ------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_header(args: argparse.Namespace) -> None:
    cpu = psutil.cpu_count()
    print("Campus Safety Gateway - MQTT ingest benchmark")
    print(
        f"  host: {cpu} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB, Python {sys.version.split()[0]}"
    )
    print(
        "  broker: one mosquitto on 127.0.0.1, persistence OFF for the bench (the shipped config has it on),\n"
        "          max_queued_messages 1000000, max_inflight_messages 0, queue_qos0_messages true"
    )
    print(
        f"  load: fleet simulator (run_load), {args.devices:,} temperature devices, {args.messages:,} telemetry "
        f"messages per QoS, full speed; QoS {', '.join(map(str, args.qos))}"
    )
    print(
        "  throughput = drain rate of a backlog the broker holds for a persistent MQTT v5 session:\n"
        "    (a) bare paho subscriber in a child process, counting only (QoS 1: paho acks on receipt),\n"
        "        timed from its CONNACK to its N-th message;\n"
        "    (b) `campus-gateway run` (decode, validate, rules, SQLite store; QoS 1 acked after commit),\n"
        f"        timed from its CONNACK log line until /api/v1/health shows N messages (polled every "
        f"{HEALTH_POLL_S * 1000:.0f} ms)"
    )
    print(
        f"  latency: fresh gateway at QoS 1 under a continuous fleet load from another process at "
        f"{'full speed' if args.load_rate is None else f'{args.load_rate:,.0f} msg/s'};\n"
        f"    {args.panics} panic presses from a separate client every {PANIC_INTERVAL_S * 1000:.0f} ms, ts = "
        "publish time; latency = arrival of the panic_pressed alert on WS /api/v1/stream - ts"
    )
    print(f"  RSS: gateway process sampled every {RSS_SAMPLE_S * 1000:.0f} ms with psutil; peak reported")
    print(f"  load average before the run: {_load_average()} (other work on the box skews every figure)")
    print(flush=True)


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500_000, help="messages per QoS (default 500000)")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--qos", type=int, nargs="+", choices=(0, 1), default=[0, 1])
    parser.add_argument("--panics", type=int, default=50, help="panic presses in the latency phase")
    parser.add_argument(
        "--load-messages",
        type=int,
        default=0,
        help="messages of the latency-phase load (default: enough for the publisher to outlast the presses)",
    )
    parser.add_argument(
        "--load-rate", type=float, default=None, help="latency-phase load in messages/s (default: full speed)"
    )
    args = parser.parse_args(argv)
    print_header(args)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    results: list[ThroughputResult] = []
    broker_peak_rss = 0
    try:
        with mosquitto(workdir) as (port, broker):
            broker_sampler = RssSampler(broker.pid).start()
            try:
                for qos in args.qos:
                    results.append(throughput(workdir, port, qos, args.devices, args.messages, args.panics))
                publish_rate = (
                    max(r.messages / r.publish_s for r in results if r.qos == 1) if 1 in args.qos else 0
                )
                window_s = 1.5 + args.panics * PANIC_INTERVAL_S + 3.0
                load_rate_estimate = args.load_rate or publish_rate or 30_000
                load_messages = args.load_messages or max(20_000, int(load_rate_estimate * window_s * 1.5))
                print(
                    f"  latency phase: {load_messages:,} messages of load, {args.panics} panic presses ...",
                    flush=True,
                )
                lat = latency(workdir, port, args.devices, args.panics, load_messages, args.load_rate)
            finally:
                broker_sampler.stop()
                broker_peak_rss = broker_sampler.peak_rss
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print("Throughput (messages/s, drain of a held backlog)")
    sizes = results[0]
    print(
        f"  message size: payload {sizes.payload_bytes:.0f} B + topic {sizes.topic_bytes:.0f} B "
        f"(mean of the first 10,000 received)"
    )
    print(
        f"  {'QoS':>3}  {'N':>9}  {'publish':>9}  {'(a) bare':>10}  {'(b) gateway':>11}  {'b/a':>5}  target"
    )
    for r in results:
        print(
            f"  {r.qos:>3}  {r.messages:>9,}  {r.messages / r.publish_s:>9,.0f}  {r.bare_rate:>10,.0f}  "
            f"{r.gateway_rate:>11,.0f}  {r.ratio:>5.2f}  >= {TARGET_RATIO}: "
            f"{verdict(r.ratio >= TARGET_RATIO and r.complete)}"
        )
    for r in results:
        dead = sum(r.dead_letters.values())
        print(
            f"  QoS {r.qos}: (a) {r.bare_s:.2f} s, (b) {r.gateway_s:.2f} s; gateway CPU {r.gateway_cpu_s:.1f} s; "
            f"readings stored {r.readings:,} (expected {2 * r.messages:,}); duplicates {r.duplicates}; "
            f"dead letters {dead} {r.dead_letters or ''}; session present {r.session_present}; "
            f"peak RSS {r.peak_rss / 2**20:.0f} MB"
        )
        print(
            f"         gateway processed {r.processed:,} of {r.messages:,} messages"
            f"{'' if r.complete else ' (INCOMPLETE: the rest never arrived)'}; MQTT connects "
            f"{r.broker_connects}{f', last error {r.broker_error!r}' if r.broker_error else ''}"
        )
    print()
    print("Panic latency under load (publish -> panic_pressed alert on the WebSocket)")
    arrived = len(lat.latencies_ms)
    print(
        f"  load: {lat.load_messages:,} messages at QoS 1, published at {lat.load_rate:,.0f} msg/s "
        f"({'full speed' if args.load_rate is None else f'paced at {args.load_rate:,.0f} msg/s'}; "
        f"covered the whole injection window: {'yes' if lat.load_covered_window else 'no'})"
    )
    print(
        f"  gateway processed {lat.processed_rate:,.0f} msg/s during the injection window; "
        f"drained the rest in {lat.drain_s:.1f} s; left unprocessed at the end: {lat.backlog_at_end:,}"
    )
    p99_ok = False
    if arrived:
        p50, p99 = percentile(lat.latencies_ms, 0.50), percentile(lat.latencies_ms, 0.99)
        p99_ok = p99 < TARGET_P99_MS and arrived == lat.injected
        print(
            f"  arrived {arrived} of {lat.injected}; p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat.latencies_ms[-1]:.1f} ms, "
            f"mean {statistics.fmean(lat.latencies_ms):.1f} ms; stream reconnects {lat.stream_reconnects}"
        )
    else:
        print(f"  arrived 0 of {lat.injected}")
    peak_rss = max([r.peak_rss for r in results] + [lat.peak_rss])
    print()
    print("Summary")
    all_ok = True
    for r in results:
        clean = r.complete and sum(r.dead_letters.values()) == 0 and r.readings == 2 * r.messages
        ok = r.ratio >= TARGET_RATIO and clean
        all_ok &= ok
        print(
            f"  ratio b/a at QoS {r.qos}: {r.ratio:.2f} (target >= {TARGET_RATIO}, all stored, no dead letters): {verdict(ok)}"
        )
    p99_text = f"{percentile(lat.latencies_ms, 0.99):.1f} ms" if arrived else "n/a"
    print(
        f"  panic p99 under load: {p99_text}, {arrived}/{lat.injected} arrived (target < {TARGET_P99_MS:.0f} ms): {verdict(p99_ok)}"
    )
    rss_ok = peak_rss / 2**20 < TARGET_RSS_MB
    print(
        f"  gateway peak RSS: {peak_rss / 2**20:.0f} MB (target < {TARGET_RSS_MB:.0f} MB): {verdict(rss_ok)}"
    )
    print(
        f"  (broker peak RSS {broker_peak_rss / 2**20:.0f} MB; bench wall time {time.monotonic() - started:.0f} s; "
        f"load average {_load_average()})"
    )
    all_ok &= p99_ok and rss_ok
    return 0 if all_ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
