"""Incidents: alerts of one building grouped, and acknowledged at once (SPEC section 6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.auth import SecurityRoom
from api.bounds import RowIdPath
from api.commits import committed
from api.context import ApiContext
from api.schemas import incident_out


def incidents_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["incidents"])

    @router.get("/incidents")
    async def incidents(_: SecurityRoom) -> list[dict[str, Any]]:
        """Open incidents: alerts of one building grouped, so a fire is one line, not forty."""
        if ctx.incidents is None:
            return []
        return [incident_out(incident) for incident in ctx.incidents.open_incidents()]

    @router.post("/incidents/{incident_id}/ack")
    async def acknowledge_incident(incident_id: RowIdPath, who: SecurityRoom) -> dict[str, Any]:
        """Acknowledge every open alert of an incident at once (an alarm storm is one decision)."""
        incident = (
            next((i for i in ctx.incidents.open_incidents() if i.id == incident_id), None)
            if ctx.incidents
            else None
        )
        if incident is None:
            raise HTTPException(404, f"incident {incident_id} is not open")
        acknowledged = await committed(
            ctx.store,
            lambda: [
                ctx.alerts.acknowledge(alert_id, who.name).id
                for alert_id in sorted(incident.open_alert_ids)
                if ctx.alerts.get_open(alert_id) is not None
            ],
        )
        return {"incident_id": incident_id, "acknowledged": acknowledged}

    return router
