"""The broker connection: paho-mqtt driven by the gateway's asyncio loop, handing over batches.

paho runs without a network thread: the loop watches its socket and reads up to `READ_CHUNK`
messages (or `READ_BUDGET_S` of reading) per pass, then hands them to `handle_batch` as one
batch, on the same thread. There
is no second thread contending for the GIL, and while a batch is processed nothing is read, so a
gateway that falls behind leaves the backlog at the broker (built for it), not in our memory.

QoS 1 messages are acknowledged manually, only after what they carried is committed to the
store, so a crash between receipt and commit leaves them with the broker (persistent session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

InboundMessage = tuple[str, bytes, int, int, float]  # topic, payload, mid, qos, received_at
# Takes a batch; returns a future that completes once all the batch caused is committed (or None
# when there is nothing to wait for).
BatchHandler = Callable[[list[InboundMessage]], "Future[None] | None"]
# Messages read per wake-up, and the time spent reading them: large enough to amortise the
# hand-over, small enough that everything else on the loop (the alarm lane, the live stream) gets
# a turn every few milliseconds. The chunk's processing takes about as long again as its reading.
READ_CHUNK = 100
READ_BUDGET_S = 0.001
PAUSE_POLL_S = 0.01
READ_AHEAD_BYTES = 64 * 1024


class _LeanClient(paho.Client):
    """paho.Client with a lean receive path: the broker connection of a gateway under load.

    Each of these cut a cost paho pays per message, measured on the loop thread at full load:
    - paho reads each packet with at least three recv calls (type byte, length, body) and writes
      each packet with its own send. Each system call also lets go of the GIL, which the SQLite
      writer thread then holds for up to a switch interval. Reads are served from one 64 KiB recv
      instead; bytes read ahead are not visible to the socket's readiness, so the owner must also
      read while `buffered_bytes` is non-zero. PUBACKs for committed batches go out in one send.
    - For each PUBLISH paho builds an MQTTMessage, parses MQTT v5 properties into an object, and
      walks its callback matcher. The gateway needs the topic, payload and message id only:
      `deliver` gets those as an `InboundMessage` (QoS 2, never subscribed here, stays paho's).
    """

    deliver: Callable[[InboundMessage], None] | None = None
    _read_ahead = b""
    _read_pos = 0
    _read_sock: object = None

    def buffered_bytes(self) -> int:
        if self._read_sock is not self._sock:
            return 0
        return max(0, len(self._read_ahead) - self._read_pos)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_sock is not self._sock:  # a new connection: bytes of the old one are void
            self._read_ahead, self._read_pos, self._read_sock = b"", 0, self._sock
        buffered, start = self._read_ahead, self._read_pos
        if start >= len(buffered):
            buffered = super()._sock_recv(READ_AHEAD_BYTES)  # raises as paho expects when empty
            if not buffered:
                return buffered  # end of stream: paho treats it as the connection lost
            self._read_ahead, start = buffered, 0
        self._read_pos = start + bufsize
        return buffered[start : start + bufsize]

    def _handle_publish(self) -> MQTTErrorCode:
        deliver = self.deliver
        qos = (self._in_packet["command"] & 0x06) >> 1
        if deliver is None or qos > 1:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            end = 2 + ((packet[0] << 8) | packet[1])
            # Undecodable bytes are kept visible (U+FFFD), so the decoder dead-letters the message.
            topic = bytes(packet[2:end]).decode("utf-8", errors="replace")
            mid = 0
            if qos:
                mid = (packet[end] << 8) | packet[end + 1]
                end += 2
            if self._protocol == paho.MQTTv5:
                # Skip the properties: a variable byte integer length, then that many bytes.
                length = shift = 0
                while True:
                    byte = packet[end]
                    end += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                end += length
        except IndexError:
            raise MalformedPacket("PUBLISH shorter than its headers") from None
        deliver((topic, bytes(packet[end:]), mid, qos, time.time()))
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """Queue a PUBACK for each QoS 1 message id and write them all now, in one send.

        paho's `ack` builds and queues one packet per message, each written with its own send;
        for the thousands a commit releases, that kept the loop busy for tens of milliseconds.
        The bytes are what paho sends for a successful PUBACK in MQTT 3.1.1 and 5 alike.
        """
        if not mids or self._sock is None:
            return  # disconnected: the broker redelivers them, and `seq` drops the duplicates
        data = struct.pack(f"!{len(mids)}I", *[_PUBACK_SUCCESS | mid for mid in mids])
        self._packet_queue(paho.PUBACK, data, 0, 0)
        self.loop_write()


_PUBACK_SUCCESS = (paho.PUBACK << 24) | (2 << 16)  # fixed header and remaining length; the mid follows


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    client_id: str
    topic_filters: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 60
    session_expiry_s: int = 7 * 24 * 3600
    # Unacknowledged QoS 1 messages the broker may send us (MQTT v5 Receive Maximum): bounds
    # what waits for the store's commit.
    receive_maximum: int = 20_000
    qos: int = 1
    mqtt_v5: bool = True  # False: MQTT 3.1.1 with clean_session=False (for brokers without v5)
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0


@dataclass
class ConnectionStats:
    connected: bool = False
    subscribed: bool = False
    connects: int = 0
    disconnects: int = 0
    messages: int = 0
    pauses: int = 0
    unacknowledged_batches: int = 0  # left to the broker to redeliver: their writes did not commit
    last_error: str = ""
    connected_since: float | None = None


class MqttSubscriber:
    """Subscribes to `topic_filters` and hands received messages to `handle_batch`.

    Args:
        handle_batch: called on the loop thread with messages in arrival order; returns a future
            that completes once the batch's effects are durable.
        ack_after_commit: acknowledge QoS 1 messages only once that future completes without
            error (False: on receipt).
        may_read: asked before each read; while False the socket is not read (backpressure from
            a store that fell behind).
        before_chunk: called before each chunk is read, so a higher-priority session (the alarm
            lane) is served first: `read_if_ready` of that session.
    """

    def __init__(
        self,
        endpoint: MqttEndpoint,
        loop: asyncio.AbstractEventLoop,
        handle_batch: BatchHandler,
        ack_after_commit: bool,
        may_read: Callable[[], bool] = lambda: True,
        before_chunk: Callable[[], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.stats = ConnectionStats()
        self._loop = loop
        self._handle_batch = handle_batch
        self._ack_after_commit = bool(ack_after_commit)
        self._may_read = may_read
        self._before_chunk = before_chunk
        self._pending: list[InboundMessage] = []
        self._reading_fd: int | None = None
        self._paused = False
        self._task: asyncio.Task[None] | None = None
        self._loop_thread_id = threading.get_ident()
        self._ack_lock = threading.Lock()
        self._acks_due: list[int] = []
        self._acks_scheduled = False
        self._read_again: asyncio.Handle | None = None
        self._last_read_at = 0.0
        client = self._client = _LeanClient(
            CallbackAPIVersion.VERSION2,
            client_id=endpoint.client_id,
            protocol=paho.MQTTv5 if endpoint.mqtt_v5 else paho.MQTTv311,
            clean_session=None if endpoint.mqtt_v5 else False,
            manual_ack=self._ack_after_commit,
        )
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.deliver = self._deliver
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write

    def start(self) -> None:
        """Connect and keep connected, with backoff, until `stop`. Call on the loop thread."""
        self._loop_thread_id = threading.get_ident()
        self._task = self._loop.create_task(self._stay_connected(), name=f"mqtt-{self.endpoint.client_id}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            self._client.disconnect()
            self._client.loop_write()  # flush the DISCONNECT now: there is no network thread
        self._stop_reading()

    async def _stay_connected(self) -> None:
        endpoint = self.endpoint
        delay_s = endpoint.reconnect_min_s
        first = True
        while True:
            try:
                # The TCP connect blocks, so it runs in a worker thread; paho reports the socket
                # through on_socket_open, which hops back to the loop.
                await self._loop.run_in_executor(None, self._connect if first else self._client.reconnect)
                first = False
            except OSError as exc:
                self.stats.last_error = f"cannot reach {endpoint.host}:{endpoint.port}: {exc}"
                log.warning(
                    "MQTT broker %s:%d unreachable (%s); retrying in %.0f s",
                    endpoint.host,
                    endpoint.port,
                    exc,
                    delay_s,
                )
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, endpoint.reconnect_max_s)
                continue
            connected_at = time.monotonic()
            # Keepalive pings and retries of unacknowledged messages.
            while self._client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
                await asyncio.sleep(1.0)
            self._stop_reading()
            # A connection that held for a while resets the backoff; one dropped at once grows it.
            delay_s = endpoint.reconnect_min_s if time.monotonic() - connected_at > 30 else delay_s
            log.warning(
                "MQTT connection to %s:%d lost; reconnecting in %.0f s", endpoint.host, endpoint.port, delay_s
            )
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, endpoint.reconnect_max_s)

    def _connect(self) -> None:
        endpoint = self.endpoint
        if endpoint.mqtt_v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = endpoint.session_expiry_s
            properties.ReceiveMaximum = endpoint.receive_maximum
            self._client.connect(
                endpoint.host, endpoint.port, endpoint.keepalive_s, clean_start=False, properties=properties
            )
        else:
            self._client.connect(endpoint.host, endpoint.port, endpoint.keepalive_s)

    # -- socket plumbing: paho asks, the loop watches -------------------------------------------

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._start_reading, sock.fileno())

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._stop_reading)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch_writable, sock.fileno())

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._loop.remove_writer, sock.fileno())

    def _on_loop(self, callback: Callable[[int], Any], fd: int) -> None:
        # paho asks for write readiness when it queues a packet and drops the ask once written.
        # On the loop thread (acknowledgements, pings) both happen in one call: act at once rather
        # than wake the loop through its self-pipe twice for asks that are already settled.
        if threading.get_ident() == self._loop_thread_id:
            callback(fd)
        else:
            self._loop.call_soon_threadsafe(callback, fd)

    def _watch_writable(self, fd: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._loop.add_writer(fd, self._client.loop_write)

    def _start_reading(self, fd: int) -> None:
        self._stop_reading()
        self._reading_fd = fd
        self._paused = False
        self._loop.add_reader(fd, self._on_readable)

    def _stop_reading(self) -> None:
        if self._reading_fd is not None:
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self._reading_fd)
                self._loop.remove_writer(self._reading_fd)
            self._reading_fd = None

    def read_if_ready(self) -> None:
        """Read now if the socket has data (a zero-timeout poll): lets another lane yield to this one."""
        fd = self._reading_fd
        if fd is None or self._paused:
            return
        if self._client.buffered_bytes():
            self._on_readable()
            return
        readable, _, _ = select.select([fd], [], [], 0)
        if readable:
            self._on_readable()

    def _on_readable(self) -> None:
        if self._before_chunk is not None:
            self._before_chunk()
        # Backpressure holds data back, not the CONNACK. (Not the SUBACK either, but a persistent
        # session's backlog arrives before it; the keepalive passes below read it in time.)
        if self.stats.connected and not self._may_read():
            self._pause()
            return
        self._read_pass()

    def _read_pass(self) -> None:
        self._last_read_at = time.monotonic()
        client = self._client
        clock = time.perf_counter
        deadline = clock() + READ_BUDGET_S
        for _ in range(READ_CHUNK):
            before = len(self._pending)
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or len(self._pending) == before:
                break  # nothing more to read now, a control packet, or the connection dropped
            if clock() > deadline:
                break
        if self._pending:
            self._flush()
        self._drain_read_ahead_soon()

    def _drain_read_ahead_soon(self) -> None:
        # The socket will not signal bytes already read ahead: come back for them, once. (Every
        # read scheduling another would pile up reads in each loop pass while the socket is busy.)
        if (
            self._read_again is None
            and self._reading_fd is not None
            and not self._paused
            and self._client.buffered_bytes()
        ):
            self._read_again = self._loop.call_soon(self._read_ahead_again)

    def _read_ahead_again(self) -> None:
        self._read_again = None
        self._on_readable()

    def _pause(self) -> None:
        if self._reading_fd is None or self._paused:
            return
        self._paused = True
        self.stats.pauses += 1
        self._loop.remove_reader(self._reading_fd)
        self._loop.call_later(PAUSE_POLL_S, self._maybe_resume)

    def _maybe_resume(self) -> None:
        if self._reading_fd is None or not self._paused:
            return
        if not self._may_read():
            if time.monotonic() - self._last_read_at >= self.endpoint.keepalive_s / 2:
                # A long hold must not starve the keepalive: a PINGRESP left unread would make
                # paho drop the connection. One bounded pass takes it (and up to a chunk of data).
                self._read_pass()
            self._loop.call_later(PAUSE_POLL_S, self._maybe_resume)
            return
        self._paused = False
        self._loop.add_reader(self._reading_fd, self._on_readable)
        self._drain_read_ahead_soon()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self.stats.messages += len(batch)
        mids = [mid for _, _, mid, qos, _ in batch if qos == 1] if self._ack_after_commit else []
        try:
            committed = self._handle_batch(batch)
        except Exception:
            # Not acknowledged: the broker redelivers these messages on the next connection.
            self.stats.unacknowledged_batches += 1
            log.exception("a batch of %d messages failed; left to the broker to redeliver", len(batch))
            return
        if not mids:
            return
        if committed is None:
            self._committed(mids)
        else:
            committed.add_done_callback(lambda done: self._batch_done(done, mids))

    def _batch_done(self, done: Future[None], mids: list[int]) -> None:
        if done.exception() is None:
            self._committed(mids)
            return
        self.stats.unacknowledged_batches += 1
        log.error(
            "a batch of %d messages was not committed (%s); left unacknowledged", len(mids), done.exception()
        )

    def _committed(self, mids: list[int]) -> None:
        # On the store's thread, once per batch: collect, and wake the loop once for all of them.
        with self._ack_lock:
            self._acks_due.extend(mids)
            if self._acks_scheduled:
                return
            self._acks_scheduled = True
        self._loop.call_soon_threadsafe(self._send_acks)

    def _send_acks(self) -> None:
        with self._ack_lock:
            mids, self._acks_due = self._acks_due, []
            self._acks_scheduled = False
        self._client.ack_many(mids)

    # -- MQTT callbacks (on the loop thread, from loop_read) ------------------------------------

    def _deliver(self, message: InboundMessage) -> None:
        self._pending.append(message)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._pending.append((message.topic, bytes(message.payload), message.mid, message.qos, time.time()))

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
            "connected to MQTT broker %s:%d as %s (session present: %s)",
            self.endpoint.host,
            self.endpoint.port,
            self.endpoint.client_id,
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
            log.warning("MQTT connection lost (%s)", reason)
