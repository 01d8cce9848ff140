"""An alert whose details hold NaN or deep nesting is still served: REST answers 200 and the
stream sends JSON that JavaScript's JSON.parse accepts (a bare NaN blanked the security room).

The alert is raised in the running gateway directly, as a rule would: the device edge refuses
such payloads now, but alerts stored before that, or a future rule, must not break the API.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import websockets

from analytics.alerts import AlertSignal, Severity
from simulators.campus import demo_campus
from tests.conftest import Broker
from tests.harness import TOKENS, RunningGateway, gateway_config, running_gateway


def strict(text: str) -> Any:
    """Parse as browsers do: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        node = {"n": node}
    return node


def raise_hostile_alert(gw: RunningGateway, device_id: str) -> None:
    assert gw.gateway.core is not None
    gw.gateway.core.alerts.apply(
        AlertSignal(
            rule="panic_pressed",
            subject=device_id,
            raised=True,
            ts=time.time(),
            severity=Severity.CRITICAL,
            device_id=device_id,
            details={"attrs": {"button": math.nan, "level": math.inf, "deep": nested(400)}},
        )
    )


async def test_an_alert_with_nan_and_deep_details_is_served_as_strict_json(
    mosquitto: Broker, tmp_path: Any
) -> None:
    async with running_gateway(gateway_config(mosquitto, tmp_path / "gw.db", demo_campus())) as gw:
        url = f"ws://127.0.0.1:{gw.gateway.config.api.port}/api/v1/stream?token={TOKENS['operator']}"
        async with websockets.connect(url) as live:
            assert strict(await live.recv())["type"] == "snapshot"
            raise_hostile_alert(gw, "panic-office-01")
            message = strict(await live.recv())
        assert message["type"] == "alert" and message["alert"]["details"]["attrs"]["button"] is None
        async with websockets.connect(url) as again:
            snapshot = strict(await again.recv())
        assert [a["rule"] for a in snapshot["alerts"]] == ["panic_pressed"]
        for path in (
            "/api/v1/alerts",
            f"/api/v1/alerts/{message['alert']['id']}",
            "/api/v1/devices/panic-office-01",
        ):
            answer = await gw.http.get(path, headers=gw.headers())
            assert answer.status_code == 200, (path, answer.text[:300])
            strict(answer.text)
