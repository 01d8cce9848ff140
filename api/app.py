"""The FastAPI application: REST endpoints of SPEC section 9, the live stream and the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from analytics.alerts import Alert, AlertNotFound, AlertState, Severity
from analytics.modes import Mode
from analytics.records import DeviceKind
from api.auth import Admin, AnyRole, SecurityRoom
from api.bounds import MAX_TS, NAME_CHARS, TITLE_CHARS, RowIdPath
from api.context import ApiContext
from api.hardening import harden
from api.jsonsafe import dumps, json_safe
from api.metrics import prometheus_text
from api.schemas import (
    ERROR_RESPONSES,
    AlertOut,
    AuditOut,
    DeviceOut,
    ModeBody,
    ResolveBody,
    incident_out,
    ok_as,
)
from api.stream import origin_allowed
from api.tickets import tickets_router
from storage.sqlite import SqliteStore

T = TypeVar("T")

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# How long an operator's action waits for its commit before it is confirmed anyway.
COMMIT_WAIT_S = 5.0
_STEP = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_STEP_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_STEP_S = 366 * 86400.0
# Query texts are matched against ids and names, never stored: bounded so the schema says so.
DeviceIdPath = Annotated[str, PathParam(max_length=NAME_CHARS)]
TimeQuery = Annotated[str | None, Query(max_length=40, description="Unix seconds or RFC 3339")]
NameQuery = Annotated[str | None, Query(max_length=NAME_CHARS)]


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds or RFC 3339 text; 422 naming the parameter otherwise."""
    if value is None:
        return None
    try:
        ts = float(value)
    except ValueError:
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError):
            raise HTTPException(
                422, f"{name}: expected Unix seconds or RFC 3339 time, got {value!r}"
            ) from None
    # JSON has no NaN or infinity, and nothing is stored outside 1970..2100.
    if not 0 <= ts <= MAX_TS:
        raise HTTPException(422, f"{name}: expected a time between 1970 and 2100, got {value!r}")
    return ts


def parse_step(value: str | None) -> float | None:
    if value is None:
        return None
    match = _STEP.match(value)
    step_s = float(match.group(1)) * _STEP_UNITS[match.group(2)] if match else math.nan
    if not 0 < step_s <= MAX_STEP_S:
        raise HTTPException(
            422, f"step: expected a duration from 1 s to 366 d such as 60, 5m or 1h, got {value!r}"
        )
    return step_s


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


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Campus Safety Gateway",
        version="1",
        description="Live alerts, devices and readings of one school's safety IoT gateway.",
        responses=ERROR_RESPONSES,
    )
    app.state.tokens = ctx.tokens
    harden(app, ctx)
    api = APIRouter(prefix="/api/v1")

    @api.get("/health", summary="Liveness and key counters (open)")
    async def health() -> dict[str, Any]:
        return ctx.health()

    @api.get("/devices", response_model=list[DeviceOut])
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
            result.append(DeviceOut.of(device, status))
        return result

    @api.get("/devices/{device_id}")
    async def device(device_id: DeviceIdPath, _: SecurityRoom) -> dict[str, Any]:
        spec = ctx.inventory.get(device_id)
        if spec is None:
            raise HTTPException(404, f"device {device_id!r} is not in the inventory")
        events = await asyncio.to_thread(ctx.store.events, device_id, 20)
        open_alerts = [
            AlertOut.of(a, ctx.inventory) for a in ctx.alerts.open_alerts() if a.device_id == device_id
        ]
        return {
            "device": DeviceOut.of(spec, ctx.tracker.get(device_id)),
            "recent_events": json_safe(events),
            "open_alerts": open_alerts,
        }

    @api.get("/devices/{device_id}/readings")
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

    @api.get("/alerts", response_model=list[AlertOut])
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

    @api.get("/alerts/{alert_id}")
    async def alert(alert_id: RowIdPath, _: SecurityRoom) -> dict[str, Any]:
        found = ctx.alerts.get_open(alert_id) or await asyncio.to_thread(ctx.store.alert, alert_id)
        if found is None:
            raise HTTPException(404, f"alert {alert_id} does not exist")
        trail = await asyncio.to_thread(ctx.store.audit_trail, "alert", str(alert_id))
        return {
            "alert": AlertOut.of(found, ctx.inventory),
            "audit": [AuditOut(ts=e.ts, actor=e.actor, action=e.action, detail=e.detail) for e in trail],
        }

    @api.post("/alerts/{alert_id}/ack", response_model=AlertOut)
    async def acknowledge(alert_id: RowIdPath, who: SecurityRoom) -> AlertOut:
        try:
            acknowledged = await committed(ctx.store, lambda: ctx.alerts.acknowledge(alert_id, who.name))
        except AlertNotFound:
            raise HTTPException(404, f"alert {alert_id} is not open (unknown or already resolved)") from None
        return AlertOut.of(acknowledged, ctx.inventory)

    @api.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
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

    @api.get("/summary")
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
            "campus": {"id": ctx.campus_id, "name": ctx.campus_name},
            "devices": {"total": total, "online": online, "online_rate": online / total if total else None},
            "devices_by_kind": by_kind,
            "open_alerts": {
                severity.value: sum(1 for a in open_alerts if a.severity is severity) for severity in Severity
            },
            "unacknowledged": sum(1 for a in open_alerts if a.acknowledged_at is None),
        }

    @api.get("/incidents")
    async def incidents(_: SecurityRoom) -> list[dict[str, Any]]:
        """Open incidents: alerts of one building grouped, so a fire is one line, not forty."""
        if ctx.incidents is None:
            return []
        return [incident_out(incident) for incident in ctx.incidents.open_incidents()]

    @api.post("/incidents/{incident_id}/ack")
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

    @api.get("/admin/modes")
    async def modes(_: Admin) -> list[dict[str, Any]]:
        return [asdict(mode) for mode in ctx.modes.active()] if ctx.modes else []

    @api.post("/admin/modes", status_code=201)
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

    @api.delete("/admin/modes/{mode_id}")
    async def end_mode(mode_id: RowIdPath, who: Admin) -> dict[str, Any]:
        mode = ctx.modes.end(mode_id) if ctx.modes else None
        if mode is None:
            raise HTTPException(404, f"mode {mode_id} is not active")
        await committed(
            ctx.store, lambda: ctx.store.audit(time.time(), who.name, mode.kind, str(mode.id), "ended", "")
        )
        return asdict(mode)

    @api.get("/unknown-devices")
    async def unknown_devices(_: SecurityRoom) -> list[dict[str, Any]]:
        return await asyncio.to_thread(ctx.store.unknown_devices)

    @api.get("/dead-letters")
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

    @api.websocket("/stream")
    async def stream(websocket: WebSocket, token: str = "") -> None:
        """Live alerts and device status. Browsers cannot set headers, so the token is a query parameter."""
        origin = websocket.headers.get("origin")
        if not origin_allowed(origin, websocket.headers.get("host"), ctx.allowed_origins):
            ctx.refusals.record("stream_origin", f"live stream refused to a page of {(origin or '')[:200]!r}")
            await websocket.close(code=1008)  # before accept: the handshake is answered 403
            return
        who = ctx.tokens.lookup(token) if token else None
        await websocket.accept()
        if who is None or who.role not in ("operator", "admin"):
            # Accept first so the browser sees the close code (4401/4403), not a bare HTTP 403.
            await websocket.close(code=4401 if who is None else 4403)
            return
        queue = ctx.broadcaster.subscribe()

        async def forward() -> None:
            snapshot = [AlertOut.of(a, ctx.inventory).model_dump() for a in ctx.alerts.open_alerts()]
            await websocket.send_text(dumps({"type": "snapshot", "alerts": snapshot})[0])
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

    app.include_router(api)

    if ctx.tickets is not None:
        app.include_router(tickets_router(ctx.tickets))

    @app.get("/metrics", summary="Prometheus exposition", responses=ok_as("text/plain"))
    async def metrics(_: AnyRole) -> PlainTextResponse:
        return PlainTextResponse(prometheus_text(ctx))

    if ctx.snapshot_dir is not None:
        snapshot_dir = ctx.snapshot_dir

        @app.get("/api/v1/snapshots/{name}", responses=ok_as("image/jpeg"))
        async def snapshot(name: Annotated[str, PathParam(max_length=255)], _: SecurityRoom) -> FileResponse:
            path = snapshot_dir / name
            # A NUL in the name would make os.stat raise instead of answer.
            if "\x00" in name or path.resolve().parent != snapshot_dir.resolve() or not path.is_file():
                raise HTTPException(404, f"no snapshot {name!r}")
            return FileResponse(path, media_type="image/jpeg")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
