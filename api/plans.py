"""Floor plans: one image (PNG or SVG) per building and floor, uploaded by an admin.

Devices sit on a plan at their inventory x/y, in the image's own pixels (an SVG's viewBox units).
Images live in a folder beside the database. Browsers cannot send a bearer header for an
`<img>`, so reading an image also accepts the token as a query parameter, as the stream does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from analytics.devices import Inventory
from api.auth import Admin, SecurityRoom, SecurityRoomByLink

PLAN_MAX_BYTES = 5 * 1024 * 1024
_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
# An uploaded SVG opened on its own must not run script in the page's origin.
_IMAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True)
class PlanApiContext:
    inventory: Inventory
    plan_dir: Path


class PlanOut(BaseModel):
    building: str
    floor: str
    image_url: str | None
    device_ids: list[str]


def _stem(building: str, floor: str) -> str:
    return base64.urlsafe_b64encode(f"{building}\n{floor}".encode()).decode().rstrip("=")


def plan_image_path(plan_dir: Path, building: str, floor: str) -> Path | None:
    """The stored image of a floor, if one was uploaded."""
    for extension in _TYPES:
        path = plan_dir / f"{_stem(building, floor)}.{extension}"
        if path.is_file():
            return path
    return None


def save_plan_image(plan_dir: Path, building: str, floor: str, content: bytes) -> Path:
    """Keep a floor's image, replacing any earlier one; refuses what is neither PNG nor SVG."""
    head = content[:512].lstrip().lower()
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        extension = "png"
    elif head.startswith((b"<svg", b"<?xml")) and b"<svg" in content[:4096].lower():
        extension = "svg"
    else:
        raise ValueError("a floor plan must be a PNG or SVG image")
    plan_dir.mkdir(parents=True, exist_ok=True)
    for old in _TYPES:
        (plan_dir / f"{_stem(building, floor)}.{old}").unlink(missing_ok=True)
    path = plan_dir / f"{_stem(building, floor)}.{extension}"
    path.write_bytes(content)
    return path


def plans_router(ctx: PlanApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["plans"])

    def image_url(building: str, floor: str) -> str | None:
        if plan_image_path(ctx.plan_dir, building, floor) is None:
            return None
        return "/api/v1/plans/image?" + urlencode({"building": building, "floor": floor})

    @router.get("/plans", response_model=list[PlanOut])
    def plans(_: SecurityRoom) -> list[PlanOut]:
        """Every building and floor of the inventory, with its image if uploaded."""
        floors: dict[tuple[str, str], list[str]] = {}
        for device in ctx.inventory:
            floors.setdefault((device.building, device.floor), []).append(device.id)
        return [
            PlanOut(building=b, floor=f, image_url=image_url(b, f), device_ids=ids)
            for (b, f), ids in sorted(floors.items())
        ]

    @router.get("/plans/image", response_class=FileResponse)
    def plan_image(_: SecurityRoomByLink, building: str, floor: str = "") -> FileResponse:
        path = plan_image_path(ctx.plan_dir, building, floor)
        if path is None:
            raise HTTPException(404, f"no plan for {building} {floor}".strip())
        return FileResponse(
            path, media_type=_TYPES[path.suffix[1:]], headers={"Content-Security-Policy": _IMAGE_CSP}
        )

    @router.put("/plans/image", status_code=201, response_model=PlanOut)
    def upload_plan(_: Admin, building: str, file: Annotated[UploadFile, File()], floor: str = "") -> PlanOut:
        """Upload (or replace) the plan of one building and floor: PNG or SVG, at most 5 MB."""
        content = file.file.read(PLAN_MAX_BYTES + 1)
        if len(content) > PLAN_MAX_BYTES:
            raise HTTPException(413, f"a plan image may be at most {PLAN_MAX_BYTES} bytes")
        try:
            save_plan_image(ctx.plan_dir, building, floor, content)
        except ValueError as exc:
            raise HTTPException(415, str(exc)) from None
        ids = [d.id for d in ctx.inventory if (d.building, d.floor) == (building, floor)]
        return PlanOut(building=building, floor=floor, image_url=image_url(building, floor), device_ids=ids)

    return router
