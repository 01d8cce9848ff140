"""Authenticate every request, then cap its body, before any route reads a byte of it.

FastAPI reads and parses a body before it solves a route's dependencies, so with the token
check only in a dependency, an unauthenticated 200 MB body was read into memory (105 -> 668 MB
RSS) before its 401. This middleware answers 401 from the headers alone, refuses a declared
length over the limit with 413 unread, and stops a chunked body at the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import TokenBook
from api.refusals import Refusals


class RequestGuard:
    """ASGI middleware in front of the routes; WebSockets pass (the stream checks its own token).

    Args:
        open_paths: paths served without a token (health, the page's shell, the API docs).
        open_prefixes: path prefixes served without a token (the page's static files).
        body_limit: the largest body accepted for a path, in bytes.
    """

    def __init__(
        self,
        app: ASGIApp,
        tokens: TokenBook,
        refusals: Refusals,
        open_paths: Collection[str],
        open_prefixes: tuple[str, ...],
        body_limit: Callable[[str], int],
    ) -> None:
        self.app = app
        self._tokens = tokens
        self._refusals = refusals
        self._open_paths = frozenset(open_paths)
        self._open_prefixes = open_prefixes
        self._body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        where = f"{scope['method']} {path} from {_client(scope)}"
        if not (path in self._open_paths or path.startswith(self._open_prefixes)) and not self._known(
            headers.get("authorization", "")
        ):
            self._refusals.record("unauthenticated", where)
            answer = JSONResponse(
                {"detail": "missing or unknown bearer token"}, 401, {"WWW-Authenticate": "Bearer"}
            )
            await answer(scope, receive, send)
            return
        limit = self._body_limit(path)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            self._refusals.record("body_too_large", f"{where}: Content-Length {declared[:20]}")
            await JSONResponse({"detail": f"request body over the {limit} bytes allowed here"}, 413)(
                scope, receive, send
            )
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    self._refusals.record("body_too_large", f"{where}: chunked body over {limit} bytes")
                    # FastAPI lets an HTTPException from reading the body through as it is.
                    raise HTTPException(413, f"request body over the {limit} bytes allowed here")
            return message

        await self.app(scope, receive_within_limit, send)

    def _known(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and bool(token) and self._tokens.lookup(token.strip()) is not None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown client"
