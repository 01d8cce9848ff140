"""Devices of the inventory with their live state, and their readings (SPEC section 9)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from analytics.records import DeviceKind
from api.auth import SecurityRoom
from api.bounds import NAME_CHARS, TITLE_CHARS
from api.context import ApiContext
from api.jsonsafe import json_safe
from api.params import DeviceIdPath, TimeQuery, parse_step, parse_time
from api.schemas import AlertOut, DeviceOut


def devices_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["devices"])

    def in_maintenance(device_id: str) -> bool:
        return ctx.modes is not None and ctx.modes.maintenance_for(device_id) is not None

    @router.get("/devices", response_model=list[DeviceOut])
    async def devices(
        _: SecurityRoom,
        kind: DeviceKind | None = None,
        online: bool | None = None,
        building: Annotated[str | None, Query(max_length=TITLE_CHARS)] = None,
    ) -> list[DeviceOut]:
        result = []
        for device in ctx.inventory:
            status = ctx.tracker.get(device.id)
            if kind is not None and device.kind is not kind:
                continue
            if building is not None and device.building != building:
                continue
            if online is not None and (status is None or status.online is not online):
                continue
            result.append(DeviceOut.of(device, status, in_maintenance(device.id)))
        return result

    @router.get("/devices/{device_id}")
    async def device(device_id: DeviceIdPath, _: SecurityRoom) -> dict[str, Any]:
        spec = ctx.inventory.get(device_id)
        if spec is None:
            raise HTTPException(404, f"device {device_id!r} is not in the inventory")
        events = await asyncio.to_thread(ctx.store.events, device_id, 20)
        open_alerts = [
            AlertOut.of(a, ctx.inventory) for a in ctx.alerts.open_alerts() if a.device_id == device_id
        ]
        return {
            "device": DeviceOut.of(spec, ctx.tracker.get(device_id), in_maintenance(device_id)),
            "recent_events": json_safe(events),
            "open_alerts": open_alerts,
        }

    @router.get("/devices/{device_id}/readings")
    async def readings(
        device_id: DeviceIdPath,
        _: SecurityRoom,
        metric: Annotated[str, Query(max_length=NAME_CHARS)],
        from_: Annotated[
            str | None, Query(alias="from", max_length=40, description="Unix seconds or RFC 3339")
        ] = None,
        to: TimeQuery = None,
        step: Annotated[
            str | None, Query(max_length=40, description="bucket size: seconds, or 30s / 5m / 1h")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100000)] = 10000,
    ) -> dict[str, Any]:
        if device_id not in ctx.inventory:
            raise HTTPException(404, f"device {device_id!r} is not in the inventory")
        until = parse_time(to, "to") or time.time()
        since = parse_time(from_, "from")
        since = until - 3600 if since is None else since
        if since >= until:
            raise HTTPException(422, "from: must be earlier than to")
        step_s = parse_step(step)
        points = await asyncio.to_thread(ctx.store.readings, device_id, metric, since, until, step_s, limit)
        return {
            "device_id": device_id,
            "metric": metric,
            "from": since,
            "to": until,
            "step_s": step_s,
            "points": points,
        }

    return router
