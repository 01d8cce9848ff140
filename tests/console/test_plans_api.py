"""Floor plans over HTTP: admins upload PNG or SVG, the security room reads them (also by link)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Broker
from tests.console.conftest import PLAN_SVG, console_config
from tests.harness import TOKENS, running_gateway

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
FLOOR = {"building": "教学楼", "floor": "1F"}


async def test_admins_upload_plans_the_security_room_reads_them_and_nothing_else_is_taken(
    mosquitto: Broker, tmp_path: Path
) -> None:
    async with running_gateway(console_config(mosquitto, tmp_path / "gw.db")) as gw:
        plans = {(p["building"], p["floor"]): p for p in await gw.get("/api/v1/plans")}
        assert plans[("教学楼", "1F")]["image_url"] is None
        assert set(plans[("教学楼", "1F")]["device_ids"]) == {"tb-smoke-1", "tb-heat-1", "tb-smoke-2"}

        async def upload(content: bytes, role: str = "admin", name: str = "plan.svg") -> httpx.Response:
            return await gw.http.put(
                "/api/v1/plans/image", params=FLOOR, files={"file": (name, content)}, headers=gw.headers(role)
            )

        assert (await upload(PLAN_SVG, role="operator")).status_code == 403
        refused = await upload(b"<html><script>alert(1)</script></html>")
        assert refused.status_code == 415 and "PNG or SVG" in refused.text
        assert (await upload(PNG, name="plan.png")).status_code == 201
        assert (await upload(PLAN_SVG)).status_code == 201, "a new plan replaces the old"
        assert len(list((tmp_path / "plans").iterdir())) == 1

        url = next(p["image_url"] for p in await gw.get("/api/v1/plans") if p["building"] == "教学楼")
        by_header = await gw.http.get(url, headers=gw.headers())
        assert by_header.status_code == 200 and by_header.content == PLAN_SVG
        assert by_header.headers["content-type"].startswith("image/svg+xml")
        assert "default-src 'none'" in by_header.headers["content-security-policy"]
        assert (await gw.http.get(url + f"&token={TOKENS['operator']}")).status_code == 200
        assert (await gw.http.get(url + "&token=wrong")).status_code == 401
        assert (await gw.http.get(url + f"&token={TOKENS['bureau']}")).status_code == 403
        assert (await gw.http.get(url)).status_code == 401
