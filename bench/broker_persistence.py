"""What saving the broker's database after every change costs: QoS 1 publish rate, both ways.

Starts mosquitto twice with the shipped config (config/mosquitto/mosquitto.conf, on a free
loopback port, anonymous, persistence in a temporary directory): once with the old periodic
save (`autosave_interval 30`) and once as shipped (`autosave_on_changes true`,
`autosave_interval 1`: a save after every change). Each time a persistent session subscribes
to `campus/#` at QoS 1 and goes away (a stopped gateway), then N QoS 1 messages are published
by 10 device-like clients that each wait for a PUBACK before their next; the rate is N over the
time from the first publish to the last PUBACK, so it includes every save the broker made first.

    python bench/broker_persistence.py                  # 20,000 messages
    python bench/broker_persistence.py --messages 5000
"""

from __future__ import annotations

import argparse
import getpass
import re
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import find_mosquitto, free_port

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "mosquitto" / "mosquitto.conf"
PERIODIC = "autosave_interval 30\n"
TOPIC = "campus/bench/temperature/t-{index:03d}/telemetry"
PAYLOAD = b'{"ts": 1763860000.0, "seq": 1, "values": {"temperature_c": 24.5, "humidity_pct": 51.0}}'


def broker_config(workdir: Path, port: int, periodic: bool) -> Path:
    """The shipped config on `port`, anonymous, persisting in `workdir`; `periodic` restores the old save."""
    text = SHIPPED.read_text(encoding="utf-8")
    # Anonymous: no users, so neither their passwords, ACLs nor sessions named after them.
    text = re.sub(r"^(password_file|acl_file|use_username_as_clientid) .*\n", "", text, flags=re.M)
    text = text.replace("allow_anonymous false", "allow_anonymous true")
    text = text.replace("listener 1883 0.0.0.0", f"listener {port} 127.0.0.1")
    text = text.replace("/var/lib/mosquitto/", f"{workdir}/") + f"user {getpass.getuser()}\n"
    if periodic:
        text = re.sub(r"^autosave_on_changes .*\n", "", text, flags=re.M)
        text = re.sub(r"^autosave_interval .*\n", PERIODIC, text, flags=re.M)
    path = workdir / "mosquitto.conf"
    path.write_text(text, encoding="utf-8")
    return path


def start_broker(config: Path, port: int) -> subprocess.Popen[bytes]:
    # The log goes to a file: a save logs a line, and an unread stderr pipe would block the broker.
    with (config.parent / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen([find_mosquitto() or "mosquitto", "-c", str(config)], stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {(config.parent / 'mosquitto.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not listen within 10 s")


def connected_client(port: int, client_id: str, clean: bool, inflight: int = 20) -> paho.Client:
    connected = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    client.max_inflight_messages_set(inflight)
    client.on_connect = lambda c, u, f, reason, p: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(5):
        raise RuntimeError(f"{client_id} could not connect")
    return client


def publish_rate(port: int, messages: int, publishers: int) -> float:
    """QoS 1 messages per second into the stopped subscriber's queue, PUBACKs included.

    Each publisher is one device-like client that waits for each PUBACK before its next message.
    """
    gateway = connected_client(port, "stopped-gateway", clean=False)
    gateway.subscribe("campus/#", qos=1)
    time.sleep(0.2)
    gateway.disconnect()
    gateway.loop_stop()
    clients = [
        connected_client(port, f"bench-publisher-{n}", clean=True, inflight=1) for n in range(publishers)
    ]

    def publish(client: paho.Client, first: int) -> None:
        for index in range(first, messages, publishers):
            client.publish(TOPIC.format(index=index % 1000), PAYLOAD, qos=1).wait_for_publish(60)

    threads = [threading.Thread(target=publish, args=(client, n)) for n, client in enumerate(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for client in clients:
        client.disconnect()
        client.loop_stop()
    return messages / elapsed


def measure(messages: int, publishers: int, periodic: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="broker-persistence-") as tmp:
        workdir, port = Path(tmp), free_port()
        proc = start_broker(broker_config(workdir, port, periodic), port)
        try:
            rate = publish_rate(port, messages, publishers)
            db = workdir / "mosquitto.db"
            size = db.stat().st_size if db.exists() else 0
        finally:
            proc.kill()
            proc.wait()
        return rate, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--publishers", type=int, default=10, help="concurrent device-like clients")
    args = parser.parse_args()
    periodic_rate, periodic_db = measure(args.messages, args.publishers, periodic=True)
    print(
        f"{args.messages} QoS 1 messages from {args.publishers} publishers (one in flight each) "
        "into a stopped subscriber's persistent session"
    )
    print(
        f"  periodic save (autosave_interval 30):       {periodic_rate:9,.0f} msg/s  (db at kill: {periodic_db:,} B)"
    )
    change_rate, change_db = measure(args.messages, args.publishers, periodic=False)
    print(
        f"  save on every change (shipped, on_changes): {change_rate:9,.0f} msg/s  (db at kill: {change_db:,} B)"
    )
    print(f"  ratio on-changes / periodic: {change_rate / periodic_rate:.3f}")


if __name__ == "__main__":
    main()
