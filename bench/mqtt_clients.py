"""Which MQTT client should the gateway use? Drain rate of a broker-held backlog, bare clients.

Measures, on one mosquitto, how fast (a) paho-mqtt's threaded callback API and (b) aiomqtt's
`async for message in client.messages` take N QoS 1 messages the broker holds for their
persistent session, doing nothing but counting. Each runs in its own process.

    python bench/mqtt_clients.py --messages 200000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import start_local_broker
from simulators.fleet import Fleet
from simulators.scenarios import run_load

TOPIC_FILTER = "campus/bench/+/+/+"


def paho_drain(port: int, client_id: str, expected: int, result: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    received = 0
    done = multiprocessing.Event()
    started = time.perf_counter()

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received == expected:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe(TOPIC_FILTER, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(600)
    result.put(time.perf_counter() - started)
    client.disconnect()
    client.loop_stop()


def aiomqtt_drain(port: int, client_id: str, expected: int, result: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> float:
        started = time.perf_counter()
        received = 0
        async with aiomqtt.Client("127.0.0.1", port, identifier=client_id, clean_session=False) as client:
            await client.subscribe(TOPIC_FILTER, qos=1)
            async for _ in client.messages:
                received += 1
                if received == expected:
                    break
        return time.perf_counter() - started

    result.put(asyncio.run(main()))


def create_session(port: int, client_id: str) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.connect("127.0.0.1", port)
    client.subscribe(TOPIC_FILTER, qos=1)
    client.loop_start()
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


def measure(target: Callable[..., None], port: int, name: str, messages: int) -> float:
    create_session(port, name)
    fleet = Fleet("bench", "127.0.0.1", port, qos=1)
    run_load(fleet, [f"sim-temp-{n:04d}" for n in range(1000)], messages)
    fleet.flush(120)
    fleet.close()
    result: multiprocessing.Queue[float] = multiprocessing.Queue()
    process = multiprocessing.Process(target=target, args=(port, name, messages, result))
    process.start()
    seconds = result.get(timeout=600)
    process.join(30)
    return messages / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        broker = start_local_broker(Path(workdir), prefer="mosquitto")
        try:
            print(f"backlog drain, QoS 1, {args.messages} messages of ~120 bytes, one mosquitto")
            rates = {
                "paho-mqtt callback": measure(paho_drain, broker.port, "bench-paho", args.messages),
                "aiomqtt async-for": measure(aiomqtt_drain, broker.port, "bench-aiomqtt", args.messages),
            }
        finally:
            broker.stop()
    for name, rate in rates.items():
        print(f"{name:20s} {rate:10,.0f} msg/s")
    print(f"aiomqtt / paho       {rates['aiomqtt async-for'] / rates['paho-mqtt callback']:10.2f}")


if __name__ == "__main__":
    main()
