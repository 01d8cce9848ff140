"""The broker connection: paho-mqtt's threaded client, handing messages to the event loop in batches.

paho's network thread only queues `(topic, payload, mid, qos, received_at)`; decoding and
everything after it run on the asyncio loop, in batches of at most `MAX_BATCH` so the loop stays
responsive. QoS 1 messages are acknowledged manually, and only after what they carried is
committed to the store, so a crash between receipt and commit leaves them with the broker
(persistent MQTT v5 session).

Backpressure: past `INBOX_HIGH_WATER` queued messages the network thread stops reading, so
the backlog waits at the broker (built for it) instead of in our memory. Events and status
messages go in a priority lane ahead of telemetry: a panic press does not wait behind a
backlog of temperature samples.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

InboundMessage = tuple[str, bytes, int, int, float]  # topic, payload, mid, qos, received_at
MAX_BATCH = 1000
INBOX_HIGH_WATER = 20_000
BatchHandler = Callable[[list[InboundMessage]], None]
AckScheduler = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    client_id: str
    topic_filters: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    qos: int = 1
    mqtt_v5: bool = True  # False: MQTT 3.1.1 with clean_session=False (for brokers without v5)
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30


@dataclass
class ConnectionStats:
    connected: bool = False
    subscribed: bool = False
    connects: int = 0
    disconnects: int = 0
    messages: int = 0
    last_error: str = ""
    connected_since: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class MqttSubscriber:
    """Subscribes to `topic_filters` and hands received messages to `handle_batch` on `loop`.

    Args:
        handle_batch: called on the loop thread with messages in arrival order.
        schedule_ack: given a callback, runs it once the batch's effects are durable; the
            callback sends the PUBACKs. Pass None to acknowledge on receipt.
    """

    def __init__(
        self,
        endpoint: MqttEndpoint,
        loop: asyncio.AbstractEventLoop,
        handle_batch: BatchHandler,
        schedule_ack: AckScheduler | None,
    ) -> None:
        self.endpoint = endpoint
        self.stats = ConnectionStats()
        self._loop = loop
        self._handle_batch = handle_batch
        self._schedule_ack = schedule_ack
        self._inbox: deque[InboundMessage] = deque()
        self._priority: deque[InboundMessage] = deque()
        self._drain_scheduled = False
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=endpoint.client_id,
            protocol=paho.MQTTv5 if endpoint.mqtt_v5 else paho.MQTTv311,
            clean_session=None if endpoint.mqtt_v5 else False,
            manual_ack=schedule_ack is not None,
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.reconnect_delay_set(endpoint.reconnect_min_s, endpoint.reconnect_max_s)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        if self.endpoint.mqtt_v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.endpoint.session_expiry_s
            self._client.connect_async(
                self.endpoint.host,
                self.endpoint.port,
                keepalive=self.endpoint.keepalive_s,
                clean_start=False,
                properties=properties,
            )
        else:
            self._client.connect_async(
                self.endpoint.host, self.endpoint.port, keepalive=self.endpoint.keepalive_s
            )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self.stats.last_error = f"connect refused: {reason}"
            log.error(
                "MQTT broker %s:%d refused the connection: %s", self.endpoint.host, self.endpoint.port, reason
            )
            return
        self.stats.connected = True
        self.stats.connects += 1
        self.stats.connected_since = time.time()
        log.info(
            "connected to MQTT broker %s:%d (session present: %s)",
            self.endpoint.host,
            self.endpoint.port,
            getattr(flags, "session_present", None),
        )
        if self.endpoint.mqtt_v5:
            options = SubscribeOptions(qos=self.endpoint.qos)
            client.subscribe([(topic, options) for topic in self.endpoint.topic_filters])
        else:
            client.subscribe([(topic, self.endpoint.qos) for topic in self.endpoint.topic_filters])

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Any
    ) -> None:
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            self.stats.last_error = f"subscription refused: {refused[0]}"
            log.error("broker refused the subscription to %s: %s", self.endpoint.topic_filters, refused[0])
        else:
            self.stats.subscribed = True

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if self.stats.connected:
            self.stats.disconnects += 1
        self.stats.connected = False
        self.stats.subscribed = False
        self.stats.connected_since = None
        if reason.is_failure:
            self.stats.last_error = str(reason)
            log.warning("MQTT connection lost (%s); paho reconnects with backoff", reason)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        topic = message.topic
        lane = self._inbox if topic.endswith("/telemetry") else self._priority
        lane.append((topic, bytes(message.payload), message.mid, message.qos, time.time()))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon_threadsafe(self._drain)
        while len(self._inbox) >= INBOX_HIGH_WATER and self.stats.connected:
            time.sleep(0.001)  # stop reading the socket until the loop catches up

    def _drain(self) -> None:
        # Clear the flag before popping, so a message appended meanwhile schedules another drain.
        self._drain_scheduled = False
        priority, inbox = self._priority, self._inbox
        batch = [priority.popleft() for _ in range(min(len(priority), MAX_BATCH))]
        batch += [inbox.popleft() for _ in range(min(len(inbox), MAX_BATCH - len(batch)))]
        if not batch:
            return
        if (priority or inbox) and not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)  # the rest after other tasks had their turn
        self.stats.messages += len(batch)
        try:
            self._handle_batch(batch)
        finally:
            # PUBACKs go in processing order; alarms that jumped the queue are acknowledged first.
            if self._schedule_ack is not None:
                acks = [(mid, qos) for _, _, mid, qos, _ in batch if qos > 0]
                if acks:
                    self._schedule_ack(lambda: self._send_acks(acks))

    def _send_acks(self, acks: list[tuple[int, int]]) -> None:
        for mid, qos in acks:
            self._client.ack(mid, qos)
