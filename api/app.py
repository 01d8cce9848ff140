"""The FastAPI application: `create_app` assembles one router per resource, the stream and the page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.alerts import alerts_router
from api.context import ApiContext
from api.devices import devices_router
from api.evidence import evidence_router
from api.hardening import harden
from api.incidents import incidents_router
from api.metrics import metrics_router
from api.modes import modes_router
from api.plans import PlanApiContext, plans_router
from api.schemas import ERROR_RESPONSES
from api.stream import stream_router
from api.system import system_router
from api.tickets import tickets_router
from api.uptime import uptime_router

STATIC_DIR = Path(__file__).parent / "static"


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Campus Safety Gateway",
        version="1",
        description="Live alerts, devices and readings of one school's safety IoT gateway.",
        responses=ERROR_RESPONSES,
    )
    app.state.tokens = ctx.tokens
    harden(app, ctx)
    for router in (
        system_router,
        metrics_router,
        devices_router,
        alerts_router,
        incidents_router,
        modes_router,
        stream_router,
        uptime_router,
    ):
        app.include_router(router(ctx))
    if ctx.tickets is not None:
        app.include_router(tickets_router(ctx.tickets))
    if ctx.evidence_dir is not None:
        app.include_router(evidence_router(ctx))
    if ctx.plan_dir is not None:
        app.include_router(plans_router(PlanApiContext(ctx.inventory, ctx.plan_dir)))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
