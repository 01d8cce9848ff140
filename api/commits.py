"""Operator actions answered only once their writes are durable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException

from storage.sqlite import SqliteStore

T = TypeVar("T")

log = logging.getLogger(__name__)

# How long an operator's action waits for its commit before it is confirmed anyway.
COMMIT_WAIT_S = 5.0


async def committed(store: SqliteStore, action: Callable[[], T]) -> T:
    """Run an operator's action as one urgent unit of writes; answer once *its* writes committed.

    Urgent units are taken ahead of a telemetry backlog, so this waits for its own transaction
    only. A store that cannot commit (disk full) gets a 503: the action holds in memory and its
    writes stay queued, but it is not confirmed as durable.
    """
    with store.unit(urgent=True) as unit:
        result = action()
    try:
        await asyncio.wait_for(asyncio.wrap_future(unit.future), COMMIT_WAIT_S)
    except TimeoutError:
        log.warning("store: an operator action is not committed after %.0f s", COMMIT_WAIT_S)
        raise HTTPException(
            503, f"the action is applied but not yet saved after {COMMIT_WAIT_S:.0f} s (storage failing)"
        ) from None
    return result
