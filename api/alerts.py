"""Alerts: the list, one alert with its audit trail, acknowledge and resolve (SPEC sections 6, 9)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from analytics.alerts import Alert, AlertNotFound, AlertState, Severity
from api.auth import SecurityRoom, SecurityRoomByLink
from api.bounds import RowIdPath
from api.commits import committed
from api.context import ApiContext
from api.params import NameQuery, TimeQuery, parse_time
from api.schemas import AlertOut, AuditOut, ResolveBody, ok_as


def alerts_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["alerts"])

    @router.get("/alerts", response_model=list[AlertOut])
    async def alerts(
        _: SecurityRoom,
        state: Annotated[
            list[str] | None,
            Query(
                description="active, acknowledged, cleared, resolved, or open (= not resolved); or several, comma-separated"
            ),
        ] = None,
        severity: Annotated[list[Severity] | None, Query()] = None,
        since: TimeQuery = None,
        device_id: NameQuery = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[AlertOut]:
        states: list[AlertState] = []
        for value in state or []:
            for part in value.split(","):
                if part == "open":
                    states.extend((AlertState.ACTIVE, AlertState.ACKNOWLEDGED, AlertState.CLEARED))
                elif part in AlertState.__members__.values():
                    states.append(AlertState(part))
                else:
                    raise HTTPException(
                        422,
                        f"state: expected one of active, acknowledged, cleared, resolved, open; got {part!r}",
                    )
        since_ts = parse_time(since, "since")
        found = await asyncio.to_thread(ctx.store.alerts, states, severity or (), since_ts, device_id, limit)

        def matches(alert: Alert) -> bool:
            return (
                (not states or alert.state in states)
                and (not severity or alert.severity in severity)
                and (since_ts is None or alert.last_seen >= since_ts)
                and device_id in (None, alert.device_id)
            )

        # Open alerts are authoritative in memory (the store may be a few ms behind).
        live = {alert.id: alert for alert in ctx.alerts.open_alerts()}
        merged = {alert.id: live.get(alert.id, alert) for alert in found}
        merged.update((alert.id, alert) for alert in live.values() if matches(alert))
        merged = {key: alert for key, alert in merged.items() if matches(alert)}
        ordered = sorted(merged.values(), key=lambda alert: alert.id, reverse=True)
        return [AlertOut.of(alert, ctx.inventory) for alert in ordered[:limit]]

    @router.get("/alerts/{alert_id}")
    async def alert(alert_id: RowIdPath, _: SecurityRoom) -> dict[str, Any]:
        found = ctx.alerts.get_open(alert_id) or await asyncio.to_thread(ctx.store.alert, alert_id)
        if found is None:
            raise HTTPException(404, f"alert {alert_id} does not exist")
        trail = await asyncio.to_thread(ctx.store.audit_trail, "alert", str(alert_id))
        return {
            "alert": AlertOut.of(found, ctx.inventory),
            "audit": [AuditOut(ts=e.ts, actor=e.actor, action=e.action, detail=e.detail) for e in trail],
        }

    @router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
    async def acknowledge(alert_id: RowIdPath, who: SecurityRoom) -> AlertOut:
        try:
            acknowledged = await committed(ctx.store, lambda: ctx.alerts.acknowledge(alert_id, who.name))
        except AlertNotFound:
            raise HTTPException(404, f"alert {alert_id} is not open (unknown or already resolved)") from None
        return AlertOut.of(acknowledged, ctx.inventory)

    @router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
    async def resolve(alert_id: RowIdPath, body: ResolveBody, who: SecurityRoom) -> AlertOut:
        if not body.note.strip():
            raise HTTPException(422, "note: a resolution needs a note saying what was done")
        try:
            resolved = await committed(
                ctx.store, lambda: ctx.alerts.resolve(alert_id, who.name, body.note.strip())
            )
        except AlertNotFound:
            raise HTTPException(404, f"alert {alert_id} is not open (unknown or already resolved)") from None
        return AlertOut.of(resolved, ctx.inventory)

    if ctx.snapshot_dir is not None:
        snapshot_dir = ctx.snapshot_dir

        @router.get("/snapshots/{name}", responses=ok_as("image/jpeg"))
        async def snapshot(
            name: Annotated[str, PathParam(max_length=255)], _: SecurityRoomByLink
        ) -> FileResponse:
            path = snapshot_dir / name
            # A NUL in the name would make os.stat raise instead of answer.
            if "\x00" in name or path.resolve().parent != snapshot_dir.resolve() or not path.is_file():
                raise HTTPException(404, f"no snapshot {name!r}")
            return FileResponse(path, media_type="image/jpeg")

    return router
