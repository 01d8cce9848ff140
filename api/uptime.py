"""`GET /api/v1/uptime`: the bureau's view of one gateway's devices (SPEC section 8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Response

from analytics.device_tracker import DeviceStatus
from analytics.tickets.model import HazardLevel, TicketState
from analytics.tickets.overdue import is_overdue
from analytics.uptime import (
    HEARTBEAT_S,
    WINDOWS_S,
    DeviceAvailability,
    Span,
    UptimeHistory,
    by_kind,
    each_availability,
    fleet_availability,
    summarize,
)
from api.auth import AnyRole
from api.context import ApiContext
from api.uptime_schemas import CampusOut, GroupOut, UptimeOut

# A flaky device can drop off thousands of times a month: its latest outages are listed, all counted.
OUTAGES_LISTED = 100


def device_json(device: DeviceAvailability) -> dict[str, Any]:
    """`DeviceUptimeOut` as plain data: a 30-day answer holds tens of thousands of outages, and
    building a model for each cost more than all the maths (the district poller validates)."""
    uptime = device.uptime
    return {
        "device_id": device.device_id,
        "kind": device.kind,
        "location": device.location,
        "online_now": device.online_now,
        "last_seen": device.last_seen,
        "reported_in_window": device.reported,
        "availability": uptime.availability,
        "online_s": uptime.online_s,
        "offline_s": uptime.offline_s,
        "unknown_s": uptime.unknown_s,
        "outage_count": len(uptime.outages),
        "outages": [
            {"start": o.start, "end": o.end, "cause": o.cause, "offline_s": o.offline_s}
            for o in uptime.outages[-OUTAGES_LISTED:]
        ],
    }


def status_snapshot(ctx: ApiContext) -> dict[str, DeviceStatus]:
    """Each device's online state and last contact, copied on the event loop that changes them."""
    return {
        status.device_id: DeviceStatus(status.device_id, status.kind, status.online, status.last_seen)
        for status in ctx.tracker.all()
    }


def read_availability(
    ctx: ApiContext, statuses: Mapping[str, DeviceStatus], window_s: float, now: float
) -> list[DeviceAvailability]:
    """Every device over the last `window_s` (blocking: reads the store)."""
    window = Span(now - window_s, now)
    return fleet_availability(ctx.inventory, statuses.get, read_history(ctx, window), window)


def read_history(ctx: ApiContext, window: Span) -> UptimeHistory:
    return ctx.store.uptime_history(window, 3 * HEARTBEAT_S, [device.id for device in ctx.inventory])


def overdue_major_hazards(ctx: ApiContext, now: float) -> int | None:
    if ctx.tickets is None:
        return None
    open_states = [state for state in TicketState if state is not TicketState.CLOSED]
    found = ctx.tickets.service.repository.tickets(open_states, HazardLevel.MAJOR, None)
    return sum(1 for ticket in found if is_overdue(ticket, now))


def uptime_json(ctx: ApiContext, statuses: Mapping[str, DeviceStatus], window: str, now: float) -> bytes:
    """The response body (blocking: reads the store)."""
    window_s = WINDOWS_S[window]
    span = Span(now - window_s, now)
    devices: list[DeviceAvailability] = []
    devices_json: list[bytes] = []
    # Each device is serialized as soon as it is folded, and only its figures are kept: a 30-day
    # answer's 40,000 outages alive at once cost 70 ms of garbage collection (and orjson, not
    # json.dumps, which took 100 ms over them).
    for device in each_availability(ctx.inventory, statuses.get, read_history(ctx, span), span):
        devices_json.append(orjson.dumps(device_json(device)))
        devices.append(device.without_outages())
    campus = GroupOut.of(summarize(devices)).model_dump()
    overdue = overdue_major_hazards(ctx, now)
    campus_out = CampusOut(id=ctx.campus_id, name=ctx.campus_name, overdue_major_hazards=overdue, **campus)
    head = orjson.dumps(
        {
            "window": window,
            "start": span.start,
            "end": span.end,
            "campus": campus_out.model_dump(),
            "by_kind": {kind: GroupOut.of(group).model_dump() for kind, group in by_kind(devices).items()},
            "devices": None,  # last, so the serialized devices go where its null ends the body
        }
    )
    return head[: -len(b"null}")] + b"[" + b",".join(devices_json) + b"]}"


def uptime_router(ctx: ApiContext, clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get(
        "/uptime", response_model=UptimeOut, summary="Device availability, online and networked rates"
    )
    async def uptime(_: AnyRole, window: str = "24h") -> Response:
        if window not in WINDOWS_S:
            raise HTTPException(422, f"window: expected one of {', '.join(WINDOWS_S)}, got {window!r}")
        statuses = status_snapshot(ctx)
        body = await asyncio.to_thread(uptime_json, ctx, statuses, window, clock())
        return Response(body, media_type="application/json")

    return router
