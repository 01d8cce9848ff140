"""Drill and maintenance modes, time-boxed, for admins (SPEC section 6)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException

from analytics.modes import Mode
from api.auth import Admin
from api.bounds import RowIdPath
from api.commits import committed
from api.context import ApiContext
from api.schemas import ModeBody


def modes_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["modes"])

    @router.get("/admin/modes")
    async def modes(_: Admin) -> list[dict[str, Any]]:
        return [asdict(mode) for mode in ctx.modes.active()] if ctx.modes else []

    @router.post("/admin/modes", status_code=201)
    async def start_mode(body: ModeBody, who: Admin) -> dict[str, Any]:
        """Start a time-boxed drill (per building or campus) or maintenance window (per device)."""
        if ctx.modes is None:
            raise HTTPException(503, "modes are not available")
        if body.kind == "maintenance" and (body.target is None or body.target not in ctx.inventory):
            raise HTTPException(
                422, f"target: maintenance needs a device id from the inventory, got {body.target!r}"
            )
        modes = ctx.modes

        def start() -> Mode:
            mode = modes.start(body.kind, body.target, body.duration_s, who.name, body.reason)
            ctx.store.audit(
                mode.starts_at,
                who.name,
                body.kind,
                str(mode.id),
                "started",
                json.dumps(asdict(mode), ensure_ascii=False),
            )
            return mode

        return asdict(await committed(ctx.store, start))

    @router.delete("/admin/modes/{mode_id}")
    async def end_mode(mode_id: RowIdPath, who: Admin) -> dict[str, Any]:
        mode = ctx.modes.end(mode_id) if ctx.modes else None
        if mode is None:
            raise HTTPException(404, f"mode {mode_id} is not active")
        await committed(
            ctx.store, lambda: ctx.store.audit(time.time(), who.name, mode.kind, str(mode.id), "ended", "")
        )
        return asdict(mode)

    return router
