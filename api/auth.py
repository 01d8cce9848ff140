"""Bearer tokens, stored as SHA-256 hashes, each with one role (SPEC section 9)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

Role = Literal["operator", "bureau", "admin"]


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


class TokenBook:
    """Maps a presented token to its principal by comparing hashes in constant time."""

    def __init__(self, hashed: Mapping[str, Principal]) -> None:
        self._hashed = dict(hashed)

    def lookup(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        for known, principal in self._hashed.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


_bearer = HTTPBearer(auto_error=False)


def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    book: TokenBook = request.app.state.tokens
    found = book.lookup(credentials.credentials)
    if found is None:
        raise HTTPException(401, "unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
    return found


def principal_by_link(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: str = "",
) -> Principal:
    """For URLs the browser loads by itself (an `<img>`): the bearer header or `?token=`."""
    if credentials is None and token:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    return principal(request, credentials)


def require(*roles: Role, identify: Callable[..., Principal] = principal) -> Callable[[Principal], Principal]:
    """A dependency admitting only the given roles (403 for any other)."""

    # A default, not Annotated: annotations are strings here and could not see `identify`.
    def check(who: Principal = Depends(identify)) -> Principal:  # noqa: B008
        if who.role not in roles:
            raise HTTPException(403, f"role {who.role!r} may not do this; allowed: {', '.join(roles)}")
        return who

    return check


SecurityRoom = Annotated[Principal, Depends(require("operator", "admin"))]
AnyRole = Annotated[Principal, Depends(require("operator", "bureau", "admin"))]
Admin = Annotated[Principal, Depends(require("admin"))]
SecurityRoomByLink = Annotated[Principal, Depends(require("operator", "admin", identify=principal_by_link))]
