"""Alarm evidence (issue 18): a request's state, its snapshot, its clip and the clip's frames.

Operators open them with their token (header or `?token=`, as images and video elements
cannot send a header); people outside the school with a signed link from a webhook
(api/evidence_links.py). Ids are checked against their pattern and file names against a fixed
list before any path is built, so no request reaches outside the evidence folder.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from analytics.evidence import (
    CLIP_FILE,
    EVIDENCE_FILES,
    FRAMES,
    MAX_CLIP_FRAMES,
    SNAPSHOT_FILE,
    EvidenceManifest,
    EvidenceState,
    UnavailableReason,
    frame_file,
    read_manifest,
    unavailable_text,
)
from api.auth import principal_by_link
from api.context import ApiContext
from api.evidence_links import evidence_path, frame_path, valid_signature
from api.schemas import ok_as

EvidenceIdPath = Annotated[str, PathParam(pattern=r"^[0-9a-f]{24}$", description="from the alert's details")]
_bearer = HTTPBearer(auto_error=False)


def evidence_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["evidence"])
    assert ctx.evidence_dir is not None
    directory = ctx.evidence_dir

    def viewer(
        request: Request,
        evidence_id: EvidenceIdPath,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        token: str = "",
        expires: Annotated[int, Query(ge=0)] = 0,
        sig: Annotated[str, Query(max_length=64)] = "",
    ) -> str:
        """Who may see this evidence: the security room by token, anyone by a valid signed link."""
        secret = ctx.evidence_link_secret
        if sig and secret and valid_signature(secret, evidence_id, expires, sig, time.time()):
            return "signed link"
        who = principal_by_link(request, credentials, token)
        if who.role not in ("operator", "admin"):
            raise HTTPException(
                403, f"role {who.role!r} may not see video evidence; allowed: operator, admin"
            )
        return who.name

    def current(evidence_id: str) -> EvidenceManifest:
        manifest = read_manifest(directory, evidence_id)
        if manifest is None:
            raise HTTPException(404, f"no evidence {evidence_id!r}")
        timed_out = time.time() - manifest.requested_at > ctx.evidence_answer_timeout_s
        if manifest.state is EvidenceState.REQUESTED and timed_out:
            return EvidenceManifest(
                manifest.id,
                manifest.camera,
                manifest.requested_at,
                EvidenceState.UNAVAILABLE,
                UnavailableReason.NO_ANSWER,
            )
        return manifest

    @router.get("/evidence/{evidence_id}")
    # `Depends` as a default: annotations are strings here and could not see the local `viewer`.
    async def evidence(evidence_id: EvidenceIdPath, _: str = Depends(viewer)) -> dict[str, Any]:
        manifest = await asyncio.to_thread(current, evidence_id)
        frames = manifest.frame_ts
        has = {name: (directory / evidence_id / name).is_file() for name in EVIDENCE_FILES}
        return {
            "id": manifest.id,
            "camera": manifest.camera,
            "state": manifest.state.value,
            "reason": manifest.reason.value if manifest.reason else None,
            "text": {
                language: unavailable_text(manifest.reason, language) if manifest.reason else ""
                for language in ("zh-CN", "en")
            },
            "requested_at": manifest.requested_at,
            "before_s": manifest.before_s,
            "after_s": manifest.after_s,
            "snapshot": evidence_path(evidence_id, SNAPSHOT_FILE) if has[SNAPSHOT_FILE] else None,
            "snapshot_ts": manifest.snapshot_ts,
            "clip": evidence_path(evidence_id, CLIP_FILE) if has[CLIP_FILE] else None,
            "frames": len(frames),
            "first_frame_ts": frames[0] if frames else None,
            "last_frame_ts": frames[-1] if frames else None,
        }

    # Before `/{name}`, which would take "frames" as a file name.
    @router.get(f"/evidence/{{evidence_id}}/{FRAMES}")
    async def evidence_frames(evidence_id: EvidenceIdPath, _: str = Depends(viewer)) -> dict[str, Any]:
        """The clip's frames for a player: their paths and times, also in seconds from the alarm."""
        manifest = await asyncio.to_thread(current, evidence_id)
        if manifest.state is not EvidenceState.READY:
            unavailable = manifest.state is EvidenceState.UNAVAILABLE
            headers = None if unavailable else {"Retry-After": "2"}
            raise HTTPException(404, f"the clip is {manifest.state.value}, no frames yet", headers)
        return {
            "id": manifest.id,
            "requested_at": manifest.requested_at,
            "frames": [
                {
                    "ts": ts,
                    "offset_s": round(ts - manifest.requested_at, 3),
                    "url": frame_path(evidence_id, index),
                }
                for index, ts in enumerate(manifest.frame_ts)
            ],
        }

    @router.get(f"/evidence/{{evidence_id}}/{FRAMES}/{{index}}.jpg", responses=ok_as("image/jpeg"))
    async def evidence_frame(
        evidence_id: EvidenceIdPath,
        index: Annotated[int, PathParam(ge=0, le=MAX_CLIP_FRAMES)],
        _: str = Depends(viewer),
    ) -> FileResponse:
        path = directory / evidence_id / frame_file(index)
        if not path.is_file():
            raise HTTPException(404, f"evidence {evidence_id!r} has no frame {index}")
        return FileResponse(path, media_type="image/jpeg")

    @router.get("/evidence/{evidence_id}/{name}", responses=ok_as(*EVIDENCE_FILES.values()))
    async def evidence_file(
        evidence_id: EvidenceIdPath,
        name: Annotated[str, PathParam(description=", ".join(EVIDENCE_FILES))],
        _: str = Depends(viewer),
    ) -> FileResponse:
        if name not in EVIDENCE_FILES:
            raise HTTPException(404, f"no file {name!r}; evidence has {', '.join(EVIDENCE_FILES)}")
        path = directory / evidence_id / name
        if not path.is_file():
            manifest = await asyncio.to_thread(current, evidence_id)
            if manifest.state is EvidenceState.UNAVAILABLE:
                reason = manifest.reason or UnavailableReason.NO_ANSWER
                raise HTTPException(404, unavailable_text(reason, "en"))
            # Still being recorded: the link works once it is written.
            raise HTTPException(
                404, f"{name} is not written yet ({manifest.state.value})", {"Retry-After": "2"}
            )
        return FileResponse(path, media_type=EVIDENCE_FILES[name])

    return router
