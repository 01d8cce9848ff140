"""The MQTT subscriber alone against a real mosquitto: batching, read-ahead and backpressure."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import Future

import pytest

from drivers.mqtt.client import READ_AHEAD_BYTES, READ_CHUNK, InboundMessage, MqttEndpoint, MqttSubscriber
from simulators.fleet import Fleet
from tests.conftest import Broker

BACKLOG = 2_000  # ~260 KB: several read-ahead buffers, each holding several chunks


def _endpoint(broker: Broker, client_id: str) -> MqttEndpoint:
    return MqttEndpoint(broker.host, broker.port, client_id, ("campus/t/+/+/telemetry",))


async def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _longer_than(items: list[InboundMessage], length: int) -> Callable[[], bool]:
    return lambda: len(items) > length


def _publish_backlog(broker: Broker, count: int) -> None:
    fleet = Fleet("t", broker.host, broker.port, qos=1, client_id="backlog-publisher")
    try:
        device = fleet.temperature("temp-1")
        for seq in range(count):
            device.publish("telemetry", {"seq": seq, "values": {"temperature_c": 21.5}})
        fleet.flush()
    finally:
        fleet.close()


async def _subscribe_once(broker: Broker, client_id: str) -> None:
    """Create the persistent session, so the broker keeps what is published while we are away."""
    subscriber = MqttSubscriber(
        _endpoint(broker, client_id), asyncio.get_running_loop(), lambda _: None, None
    )
    subscriber.start()
    await _wait_for(lambda: subscriber.stats.subscribed)
    subscriber.stop()
    await asyncio.sleep(0.2)


async def test_a_backlog_larger_than_the_read_ahead_arrives_whole_in_order_in_bounded_batches(
    mosquitto: Broker,
) -> None:
    await _subscribe_once(mosquitto, "sub-backlog")
    _publish_backlog(mosquitto, BACKLOG)
    assert BACKLOG * 120 > 3 * READ_AHEAD_BYTES
    batches: list[list[InboundMessage]] = []
    acked: list[int] = []

    def committed_at_once(batch: list[InboundMessage]) -> Future[None]:
        batches.append(batch)
        done: Future[None] = Future()
        done.add_done_callback(lambda _: acked.append(1))
        done.set_result(None)
        return done

    subscriber = MqttSubscriber(
        _endpoint(mosquitto, "sub-backlog"), asyncio.get_running_loop(), committed_at_once, True
    )
    subscriber.start()
    try:
        # The last bytes of the backlog are read ahead with others and then never signalled by the
        # socket again: they must still arrive.
        await _wait_for(lambda: sum(map(len, batches)) >= BACKLOG)
        seqs = [json.loads(payload)["seq"] for batch in batches for _, payload, *_ in batch]
        assert seqs == list(range(BACKLOG))
        assert max(map(len, batches)) <= READ_CHUNK
        assert len(acked) == len(batches)
        await asyncio.sleep(0.1)  # the last acknowledgements are sent from the loop, as scheduled
    finally:
        subscriber.stop()
    # Every PUBACK reached the broker (they go out coalesced): the session holds nothing more.
    redelivered: list[InboundMessage] = []
    again = MqttSubscriber(
        _endpoint(mosquitto, "sub-backlog"), asyncio.get_running_loop(), redelivered.extend, None
    )
    again.start()
    try:
        await _wait_for(lambda: again.stats.subscribed)
        await asyncio.sleep(0.5)
        assert redelivered == []
    finally:
        again.stop()


async def test_reading_paused_by_backpressure_resumes_with_what_was_already_read_ahead(
    mosquitto: Broker,
) -> None:
    await _subscribe_once(mosquitto, "sub-paused")
    _publish_backlog(mosquitto, BACKLOG)
    received: list[InboundMessage] = []
    store_behind = False

    def handle(batch: list[InboundMessage]) -> None:
        nonlocal store_behind
        received.extend(batch)
        store_behind = True  # every batch makes the "store" fall behind until released below

    subscriber = MqttSubscriber(
        _endpoint(mosquitto, "sub-paused"),
        asyncio.get_running_loop(),
        handle,
        None,
        may_read=lambda: not store_behind,
    )
    subscriber.start()
    try:
        while len(received) < BACKLOG:
            before = len(received)
            await asyncio.sleep(0.05)
            assert len(received) - before <= READ_CHUNK  # nothing read while paused
            store_behind = False
            await _wait_for(_longer_than(received, before))
        assert len(received) == BACKLOG
        assert subscriber.stats.pauses > 0
    finally:
        subscriber.stop()


@pytest.mark.parametrize("mqtt_v5", [True, False], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("qos", [0, 1])
async def test_topic_payload_and_qos_arrive_intact(mosquitto: Broker, mqtt_v5: bool, qos: int) -> None:
    received: list[InboundMessage] = []
    endpoint = MqttEndpoint(
        mosquitto.host,
        mosquitto.port,
        f"sub-intact-{mqtt_v5}-{qos}",
        ("campus/t/#",),
        qos=qos,
        mqtt_v5=mqtt_v5,
    )
    subscriber = MqttSubscriber(endpoint, asyncio.get_running_loop(), received.extend, None)
    subscriber.start()
    # Sizes around the read-ahead buffer and the 1- to 3-byte MQTT length encodings.
    sent = [
        (f"campus/t/smoke/dev-{n}/telemetry", bytes([n % 256]) * size)
        for n, size in enumerate(
            [0, 1, 127, 128, 16_383, 16_384, READ_AHEAD_BYTES - 10, READ_AHEAD_BYTES + 10, 200_000, 5]
        )
    ]
    fleet = Fleet("t", mosquitto.host, mosquitto.port, qos=1, client_id=f"pub-intact-{mqtt_v5}-{qos}")
    try:
        await _wait_for(lambda: subscriber.stats.subscribed)
        for topic, payload in sent:
            fleet.publish(topic, payload)
        fleet.flush()
        await _wait_for(lambda: len(received) >= len(sent))
        assert [(topic, payload) for topic, payload, *_ in received] == sent
        assert {message[3] for message in received} == {qos}
        if qos:
            assert all(message[2] > 0 for message in received)  # message ids, for the PUBACKs
    finally:
        fleet.close()
        subscriber.stop()


async def test_a_long_hold_completes_the_handshake_and_keeps_the_connection_alive(mosquitto: Broker) -> None:
    received: list[InboundMessage] = []
    endpoint = MqttEndpoint(
        mosquitto.host, mosquitto.port, "sub-held", ("campus/t/+/+/telemetry",), keepalive_s=2
    )
    # The store is behind from the start and stays behind for several keepalive periods.
    subscriber = MqttSubscriber(
        endpoint, asyncio.get_running_loop(), received.extend, None, may_read=lambda: False
    )
    subscriber.start()
    try:
        await _wait_for(lambda: subscriber.stats.subscribed, timeout_s=5)
        _publish_backlog(mosquitto, BACKLOG)
        await asyncio.sleep(6)  # paho drops a connection whose PINGRESP goes unread for 1.5 x keepalive
        assert subscriber.stats.connected and subscriber.stats.connects == 1
        assert subscriber.stats.disconnects == 0
        assert len(received) < BACKLOG / 2  # held back: only the keepalive passes read a little
    finally:
        subscriber.stop()
