"""The TCP and UDP servers: many transmission devices at once, each stream its own framer.

Thin adapters around `MonitoringCentre`: bytes in, replies out, records to the injected sink,
rejections (reason, detail, raw bytes) to the injected reject sink. Nothing a device sends stops
the receiver; an unexpected error is logged and dead-lettered as `decoder_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from analytics.devices import Inventory
from analytics.records import Record, RecordSink
from drivers.errors import PayloadError
from drivers.gb26875.centre import MonitoringCentre, Outcome
from drivers.gb26875.config import Gb26875Settings
from drivers.gb26875.errors import FrameRejected, RejectReason
from drivers.gb26875.frame import Frame, encode_frame
from drivers.gb26875.framer import StreamFramer
from drivers.gb26875.mapping import PanelMapper

log = logging.getLogger(__name__)

TICK_S = 1.0


class RejectSink(Protocol):
    """Where dead letters go (the gateway's pipeline has this method)."""

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None: ...


class Gb26875Receiver:
    """Serves GB/T 26875.3 as the monitoring centre on the configured TCP (and UDP) port.

    Args:
        settings: the gb26875 section.
        inventory: transmitters and panel points (checked at construction).
        sink: receives records on the event loop.
        rejects: receives what could not be accepted, with the raw bytes.
        clock: wall-clock seconds (injected by tests).

    Raises:
        MappingError: the settings and the inventory disagree.
    """

    def __init__(
        self,
        settings: Gb26875Settings,
        inventory: Inventory,
        sink: RecordSink,
        rejects: RejectSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        tz = ZoneInfo(settings.timezone)
        self.settings = settings
        self.centre = MonitoringCentre(PanelMapper(inventory, settings, tz), settings, tz)
        self._sink = sink
        self._rejects = rejects
        self._clock = clock
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._sessions: set[_TcpSession] = set()
        self.tcp_port = 0
        self.udp_port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        self._tcp = await loop.create_server(lambda: _TcpSession(self), settings.host, settings.port)
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        if settings.udp_port is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpEndpoint(self), local_addr=(settings.host, settings.udp_port)
            )
            self._udp = transport
            self.udp_port = transport.get_extra_info("sockname")[1]
        self._ticker = asyncio.create_task(self._tick_forever(), name="gb26875-tick")
        log.info("gb26875 receiver on tcp %d%s", self.tcp_port, f", udp {self.udp_port}" if self._udp else "")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for session in list(self._sessions):
                session.close()
            await self._tcp.wait_closed()

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def stats(self) -> Counter[str]:
        counters = Counter(self.centre.counters)
        counters["tcp_connections"] = len(self._sessions)
        return counters

    def handle(self, items: list[Frame | FrameRejected], source: str, received_at: float) -> list[Frame]:
        """Process what a framer produced; return the replies to send back."""
        replies: list[Frame] = []
        records: list[Record] = []
        for item in items:
            try:
                if isinstance(item, Frame):
                    outcome = self.centre.on_frame(item, received_at)
                else:
                    outcome = self.centre.on_rejected(item, received_at)
            except Exception as exc:  # a decoder bug must not take the receiver down
                log.exception("gb26875: unexpected error on input from %s", source)
                raw = encode_frame(item) if isinstance(item, Frame) else item.raw
                outcome = Outcome(rejected=[FrameRejected(RejectReason.DECODER_ERROR, repr(exc)[:200], raw)])
            replies.extend(outcome.replies)
            records.extend(outcome.records)
            for rejected in outcome.rejected:
                self._rejects.reject(rejected, source, rejected.raw, received_at)
        if records:
            self._sink.submit(records)
        return replies

    def greet(self, source_address: int) -> Frame | None:
        """The frame to send a device first heard on a new connection (clock sync, if configured)."""
        if not self.settings.clock_sync_on_connect or not self.centre.transmitter_known(source_address):
            return None
        return self.centre.clock_sync(source_address, self._clock())

    def now(self) -> float:
        return self._clock()

    def attach(self, session: _TcpSession) -> None:
        self._sessions.add(session)

    def detach(self, session: _TcpSession) -> None:
        self._sessions.discard(session)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                records = self.centre.tick(self._clock())
                if records:
                    self._sink.submit(records)
            except Exception:
                log.exception("gb26875: tick failed")


class _TcpSession(asyncio.Protocol):
    """One transmission device's TCP connection."""

    def __init__(self, receiver: Gb26875Receiver) -> None:
        self._receiver = receiver
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._source = "gb26875://?"
        self._idle: asyncio.TimerHandle | None = None
        self._greeted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self._source = f"gb26875://{host}:{port}"
        self._receiver.attach(self)

    def data_received(self, data: bytes) -> None:
        received_at = self._receiver.now()
        items = self._framer.feed(data)
        if items:
            self._process(items, received_at)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._framer.pending:
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(self._receiver.settings.idle_expire_s, self._expire)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        items = self._framer.expire()
        if items:
            self._receiver.handle(items, self._source, self._receiver.now())
        self._receiver.detach(self)
        self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _expire(self) -> None:
        self._idle = None
        items = self._framer.expire()
        if items:
            self._process(items, self._receiver.now())

    def _process(self, items: list[Frame | FrameRejected], received_at: float) -> None:
        replies = self._receiver.handle(items, self._source, received_at)
        if not self._greeted:
            first = next((item for item in items if isinstance(item, Frame)), None)
            if first is not None:
                self._greeted = True
                greeting = self._receiver.greet(first.source)
                if greeting is not None:
                    replies.append(greeting)
        if replies and self._transport is not None:
            self._transport.write(b"".join(encode_frame(reply) for reply in replies))


class _UdpEndpoint(asyncio.DatagramProtocol):
    """Datagrams from any device; each holds whole frames, so each gets a fresh framer."""

    def __init__(self, receiver: Gb26875Receiver) -> None:
        self._receiver = receiver
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        framer = StreamFramer()
        items = framer.feed(data) + framer.expire()
        replies = self._receiver.handle(items, f"gb26875udp://{addr[0]}:{addr[1]}", self._receiver.now())
        if replies and self._transport is not None:
            self._transport.sendto(b"".join(encode_frame(reply) for reply in replies), addr)
