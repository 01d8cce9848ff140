"""The TCP and UDP servers: many transmission devices at once, each stream its own framer.

Thin adapters around `MonitoringCentre`: bytes in, replies out, records to the injected sink,
rejections (reason, detail, raw bytes) to the injected reject sink. A "send data" is confirmed
only once the records it caused have committed (the sink's future), so a device whose data is
not yet durable keeps it and sends it again. Nothing a device sends stops the receiver; an
unexpected error is logged and dead-lettered as `decoder_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from analytics.devices import Inventory
from analytics.ingest import Envelope
from analytics.records import Record
from analytics.sessions import Lane
from drivers.errors import PayloadError
from drivers.gb26875.centre import MonitoringCentre, Outcome
from drivers.gb26875.config import Gb26875Settings
from drivers.gb26875.errors import FrameRejected, RejectReason
from drivers.gb26875.frame import Command, Frame, encode_frame
from drivers.gb26875.framer import StreamFramer
from drivers.gb26875.mapping import PanelMapper

log = logging.getLogger(__name__)

TICK_S = 1.0


class EnvelopeSink(Protocol):
    """Where records go, one envelope per device for the ingest validator; the future completes
    once they and all they caused have committed (the gateway's pipeline has this method)."""

    def submit_envelopes(self, envelopes: Sequence[Envelope]) -> Future[None]: ...


class RejectSink(Protocol):
    """Where dead letters go (the gateway's pipeline has this method)."""

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None: ...


@dataclass(slots=True)
class Replies:
    """The answers to one read: `now` at once, `confirms` once every future in `waits` is done."""

    now: list[Frame] = field(default_factory=list)
    confirms: list[Frame] = field(default_factory=list)
    waits: list[Future[None]] = field(default_factory=list)


FrameKey = tuple[int, int]  # source address, serial number


class Gb26875Receiver:
    """Serves GB/T 26875.3 as the monitoring centre on the configured TCP (and UDP) port.

    Args:
        settings: the gb26875 section.
        inventory: transmitters and panel points (checked at construction).
        sink: receives envelopes on the event loop; its future says when they have committed.
        rejects: receives what could not be accepted, with the raw bytes.
        clock: wall-clock seconds (injected by tests).

    Raises:
        MappingError: the settings and the inventory disagree.
    """

    def __init__(
        self,
        settings: Gb26875Settings,
        inventory: Inventory,
        sink: EnvelopeSink,
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
        # Frames whose records have not committed yet, so a retry is confirmed after them.
        self._in_flight: dict[FrameKey, Future[None]] = {}
        self._waiters: set[asyncio.Task[None]] = set()
        self._counters: Counter[str] = Counter()
        self._withheld_logged_at = -60.0
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
        for waiter in list(self._waiters):
            waiter.cancel()
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
        counters = self.centre.counters + self._counters
        counters["tcp_connections"] = len(self._sessions)
        return counters

    def handle(self, items: list[Frame | FrameRejected], source: str, received_at: float) -> Replies:
        """Process what a framer produced: submit its records, and say what to answer when."""
        replies = Replies()
        envelopes: list[Envelope] = []
        taken: list[FrameKey] = []  # frames whose confirm waits for this read's records
        for item in items:
            if isinstance(item, Frame) and item.command is Command.SEND:
                self._forget_if_lost((item.source, item.serial))
            try:
                if isinstance(item, Frame):
                    outcome = self.centre.on_frame(item, received_at)
                else:
                    outcome = self.centre.on_rejected(item, received_at)
            except Exception as exc:  # a decoder bug must not take the receiver down
                log.exception("gb26875: unexpected error on input from %s", source)
                raw = encode_frame(item) if isinstance(item, Frame) else item.raw
                outcome = Outcome(rejected=[FrameRejected(RejectReason.DECODER_ERROR, repr(exc)[:200], raw)])
            replies.now.extend(outcome.replies)
            envelopes.extend(_envelopes(outcome, source, received_at))
            for rejected in outcome.rejected:
                self._rejects.reject(rejected, source, rejected.raw, received_at)
            if outcome.confirm is not None:
                assert isinstance(item, Frame)
                replies.confirms.append(outcome.confirm)
                key = (item.source, item.serial)
                if not outcome.duplicate:
                    taken.append(key)
                elif (first := self._in_flight.get(key)) is not None:
                    replies.waits.append(first)
        if envelopes:
            commit = self._submit(envelopes, source)
            replies.waits.append(commit)
            for key in taken:
                self._in_flight[key] = commit
        return replies

    def deliver(self, replies: Replies, write: Callable[[bytes], None]) -> None:
        """Write what is due now; the confirms once their records have committed (on the loop)."""
        now = replies.now
        if replies.confirms and all(_committed(future) for future in replies.waits):
            now = now + replies.confirms
            self._counters["confirms"] += len(replies.confirms)
        elif replies.confirms:
            waiter = asyncio.get_running_loop().create_task(
                self._confirm_when_committed(replies.confirms, replies.waits, write)
            )
            self._waiters.add(waiter)
            waiter.add_done_callback(self._waiters.discard)
        if now:
            write(b"".join(encode_frame(reply) for reply in now))

    async def _confirm_when_committed(
        self, confirms: list[Frame], waits: list[Future[None]], write: Callable[[bytes], None]
    ) -> None:
        pending = [asyncio.wrap_future(future) for future in waits]
        done, late = await asyncio.wait(pending, timeout=self.settings.commit_wait_s)
        for future in late:
            future.add_done_callback(_consume)
        if late or any(future.exception() is not None for future in done):
            # No confirm: the device sends the frame again, and that copy is answered.
            self._counters["confirms_withheld"] += len(confirms)
            if time.monotonic() - self._withheld_logged_at >= 60.0:  # a store outage: once a minute
                self._withheld_logged_at = time.monotonic()
                log.warning(
                    "gb26875: confirms withheld (%d so far): records not committed within %.1f s",
                    self._counters["confirms_withheld"],
                    self.settings.commit_wait_s,
                )
            return
        self._counters["confirms"] += len(confirms)
        write(b"".join(encode_frame(confirm) for confirm in confirms))

    def _submit(self, envelopes: list[Envelope], source: str) -> Future[None]:
        try:
            return self._sink.submit_envelopes(envelopes)
        except Exception as exc:  # the store refused the whole unit (stopping): nothing to confirm
            log.exception("gb26875: records from %s could not be submitted", source)
            failed: Future[None] = Future()
            failed.set_exception(exc)
            return failed

    def _forget_if_lost(self, key: FrameKey) -> None:
        """A frame whose records failed to commit is taken afresh when it is sent again."""
        first = self._in_flight.get(key)
        if first is not None and first.done() and not _committed(first):
            del self._in_flight[key]
            self.centre.forget(*key)

    def _prune(self) -> None:
        for key, future in list(self._in_flight.items()):
            if future.done():
                del self._in_flight[key]
                if not _committed(future):
                    self.centre.forget(*key)

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
                self._prune()
                now = self._clock()
                records = self.centre.tick(now)
                if records:
                    self._sink.submit_envelopes(_envelopes(Outcome(records=records), "gb26875", now))
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
                    replies.now.append(greeting)
        self._receiver.deliver(replies, self._write)

    def _write(self, data: bytes) -> None:
        # A confirm due after a commit may find the connection gone: the device sends again.
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


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
        self._receiver.deliver(replies, lambda data: self._send(data, addr))

    def _send(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)


def _envelopes(outcome: Outcome, source: str, received_at: float) -> list[Envelope]:
    """One envelope per device; the transmission device's carries its clock (`device_ts`)."""
    envelopes = [
        Envelope(source, device_id, own[0].kind, Lane.TELEMETRY, received_at, own)
        for device_id, group in groupby(outcome.records, key=_device_id)
        for own in (tuple(group),)
    ]
    clock = outcome.clock
    if clock is not None:
        for index, envelope in enumerate(envelopes):
            if envelope.device_id == clock.device_id:
                envelopes[index] = replace(envelope, device_ts=clock.ts)
                break
        else:  # nothing of its own in this frame, yet its clock is checked (and a skew cleared)
            envelopes.append(
                Envelope(
                    source, clock.device_id, clock.kind, Lane.TELEMETRY, received_at, (), device_ts=clock.ts
                )
            )
    return envelopes


def _device_id(record: Record) -> str:
    return record.device_id


def _committed(future: Future[None]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _consume(future: asyncio.Future[None]) -> None:
    """Retrieve a late outcome, so asyncio does not report an exception nobody awaited."""
    if not future.cancelled():
        future.exception()
