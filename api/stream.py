"""The live stream `WS /api/v1/stream`, and the fan-out of its messages to each client's bounded queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.schemas import AlertOut

if TYPE_CHECKING:
    from api.context import ApiContext

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


def stream_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["stream"])

    @router.websocket("/stream")
    async def stream(websocket: WebSocket, token: str = "") -> None:
        """Live alerts and device status. Browsers cannot set headers, so the token is a query parameter."""
        who = ctx.tokens.lookup(token) if token else None
        await websocket.accept()
        if who is None or who.role not in ("operator", "admin"):
            # Accept first so the browser sees the close code (4401/4403), not a bare HTTP 403.
            await websocket.close(code=4401 if who is None else 4403)
            return
        queue = ctx.broadcaster.subscribe()

        async def forward() -> None:
            snapshot = [AlertOut.of(a, ctx.inventory).model_dump() for a in ctx.alerts.open_alerts()]
            await websocket.send_json({"type": "snapshot", "alerts": snapshot})
            while (text := await queue.get()) is not None:
                await websocket.send_text(text)
            await websocket.close(code=1013)  # fell behind: the client reconnects and re-reads the snapshot

        async def until_disconnect() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = {asyncio.create_task(forward()), asyncio.create_task(until_disconnect())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ctx.broadcaster.unsubscribe(queue)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await asyncio.gather(*tasks)

    return router
