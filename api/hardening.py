"""What every request and answer passes through, installed on the app in one call.

Authentication and the body cap come before routing (api/request_guard.py), the browser
defences after it (api/security_headers.py); two of FastAPI's own answers are replaced where
they broke the API's contract.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match

from api.bounds import MAX_JSON_BODY_BYTES
from api.context import ApiContext
from api.evidence_links import EVIDENCE_PREFIX
from api.jsonsafe import json_safe
from api.request_guard import RequestGuard
from api.security_headers import SecurityHeaders
from api.tickets import PHOTO_UPLOAD_PATH

OPEN_PATHS = ("/", "/api/v1/health")  # and the docs; the page's files under /static/


def harden(app: FastAPI, ctx: ApiContext) -> None:
    docs_paths = {
        path
        for path in (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
        if path
    }
    photo_body_bytes = MAX_JSON_BODY_BYTES + (ctx.tickets.photo_max_bytes if ctx.tickets else 0)
    app.add_middleware(
        RequestGuard,
        tokens=ctx.tokens,
        refusals=ctx.refusals,
        open_paths={*OPEN_PATHS, *docs_paths},
        # Evidence routes check a token or a signed link themselves (api/evidence.py): the police
        # open a webhook's link without a token.
        open_prefixes=("/static/", EVIDENCE_PREFIX),
        body_limit=lambda path: photo_body_bytes if PHOTO_UPLOAD_PATH.match(path) else MAX_JSON_BODY_BYTES,
    )
    app.add_middleware(SecurityHeaders, docs_paths=docs_paths)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's 422, with the echoed input made JSON-safe: a NaN in a body made it a 500."""
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, 422)

    @app.exception_handler(405)
    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        """405 with an Allow header naming every method of the path (RFC 9110, section 15.5.6);
        Starlette names only those of the first route that matches the path."""
        allowed = {
            method
            for route in app.router.routes
            if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE
            for method in route.methods or ()
        }
        return JSONResponse({"detail": "Method Not Allowed"}, 405, {"Allow": ", ".join(sorted(allowed))})
