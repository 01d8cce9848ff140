"""Fan-out of live messages to WebSocket clients, each behind its own bounded queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from api.jsonsafe import dumps
from api.refusals import Refusals

log = logging.getLogger(__name__)


class Broadcaster:
    """Publishes JSON messages to every subscriber; a client that falls 1,000 behind is dropped.

    Dropping the slow client (which then reconnects and re-reads the snapshot) keeps one stalled
    browser from holding memory or slowing everyone else.
    """

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self.refusals = Refusals()  # the API's, too: see ApiContext.refusals
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self.dropped_clients = 0

    def subscribe(self) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._subscribers.discard(queue)

    def publish(self, message: dict[str, Any]) -> None:
        """Call on the event loop thread. Never sends invalid JSON: a NaN would blank the page."""
        if not self._subscribers:
            return
        text, repaired = dumps(message)
        if repaired:
            self.refusals.record(
                "stream_message_repaired", f"a {message.get('type')} message held NaN or was too deep"
            )
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                self.dropped_clients += 1
                log.warning("dropping a live-stream client that fell %d messages behind", self._queue_size)
                queue.get_nowait()
                queue.put_nowait(None)  # tells the client's sender to close

    @property
    def client_count(self) -> int:
        return len(self._subscribers)


def origin_allowed(origin: str | None, host: str | None, allowed: Collection[str]) -> bool:
    """Whether a WebSocket handshake may open the stream: same origin as the page, or allowed.

    Browsers send `Origin` with every handshake, and a page of another site could otherwise
    open the stream with an operator's token. No `Origin` means no browser (a script, a tool),
    which holds its token by itself anyway.
    """
    if origin is None or origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and host is not None and parts.netloc.lower() == host.lower()
