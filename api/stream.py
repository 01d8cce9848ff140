"""Fan-out of live messages to WebSocket clients, each behind its own bounded queue."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger(__name__)


class Broadcaster:
    """Publishes JSON messages to every subscriber; a client that falls 1,000 behind is dropped.

    Dropping the slow client (which then reconnects and re-reads the snapshot) keeps one stalled
    browser from holding memory or slowing everyone else.
    """

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self.dropped_clients = 0

    def subscribe(self) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._subscribers.discard(queue)

    def publish(self, message: dict[str, Any]) -> None:
        """Call on the event loop thread."""
        if not self._subscribers:
            return
        text = json.dumps(message, ensure_ascii=False, default=str)
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
