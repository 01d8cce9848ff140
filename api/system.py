"""The gateway itself: health (open; per camera for the school's roles), summary, quarantined
devices and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query

from analytics.alerts import Severity
from api.auth import AnyRole, SecurityRoom
from api.context import ApiContext
from api.params import NameQuery


def camera_counts(cameras: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Cameras in all, online (`ok`) and not (`faulted`: offline, or not reported yet)."""
    ok = sum(1 for health in cameras.values() if health.get("online") is True)
    return {"total": len(cameras), "ok": ok, "faulted": len(cameras) - ok}


def system_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["system"])

    @router.get("/health", summary="Liveness and key counters (open)")
    async def health() -> dict[str, Any]:
        full = ctx.health()
        # Open to anyone (SPEC 9), so it names no camera: which cameras a school has, and which
        # are down, is for its own roles (`/health/cameras`).
        return {**full, "cameras": camera_counts(full.get("cameras", {}))}

    @router.get("/health/cameras", summary="Each camera's health, as its video worker last reported it")
    async def camera_health(_: AnyRole) -> dict[str, Any]:
        cameras: dict[str, Any] = ctx.health().get("cameras", {})
        return cameras

    @router.get("/summary")
    async def summary(_: AnyRole) -> dict[str, Any]:
        by_kind: dict[str, dict[str, int]] = {}
        for device in ctx.inventory:
            status = ctx.tracker.get(device.id)
            counts = by_kind.setdefault(
                device.kind.value, {"total": 0, "online": 0, "offline": 0, "unknown": 0}
            )
            counts["total"] += 1
            key = (
                "unknown"
                if status is None or status.online is None
                else ("online" if status.online else "offline")
            )
            counts[key] += 1
        total = sum(c["total"] for c in by_kind.values())
        online = sum(c["online"] for c in by_kind.values())
        open_alerts = ctx.alerts.open_alerts()
        return {
            "campus": {"id": ctx.campus_id, "name": ctx.campus_name, "timezone": ctx.timezone},
            "devices": {"total": total, "online": online, "online_rate": online / total if total else None},
            "devices_by_kind": by_kind,
            "open_alerts": {
                severity.value: sum(1 for a in open_alerts if a.severity is severity) for severity in Severity
            },
            "unacknowledged": sum(1 for a in open_alerts if a.acknowledged_at is None),
        }

    @router.get("/unknown-devices")
    async def unknown_devices(_: SecurityRoom) -> list[dict[str, Any]]:
        return await asyncio.to_thread(ctx.store.unknown_devices)

    @router.get("/dead-letters")
    async def dead_letters(
        _: SecurityRoom, reason: NameQuery = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        letters = await asyncio.to_thread(ctx.store.dead_letters, reason, limit)
        return [
            {
                "id": d.id,
                "received_at": d.received_at,
                "source": d.source,
                "device_id": d.device_id,
                "reason": d.reason,
                "detail": d.detail[:2000],
                "payload": d.payload.decode("utf-8", "replace")[:2000],
            }
            for d in letters
        ]

    return router
