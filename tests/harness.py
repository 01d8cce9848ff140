"""A real gateway (real broker, real SQLite, real HTTP) driven from async tests."""

from __future__ import annotations

import asyncio
import faulthandler
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from analytics.devices import DeviceSpec
from gateway.broker import free_port
from gateway.config import (
    ApiConfig,
    BrokerConfig,
    CampusConfig,
    GatewayConfig,
    StorageConfig,
    TokenConfig,
    hash_token,
)
from gateway.runtime import Gateway
from tests.conftest import Broker

TOKENS = {"operator": "op-token", "bureau": "bureau-token", "admin": "admin-token"}


def gateway_config(
    broker: Broker, db_path: Path, devices: list[DeviceSpec], **rules: dict[str, Any]
) -> GatewayConfig:
    return GatewayConfig(
        campus=CampusConfig(id="test", name="测试学校"),
        broker=BrokerConfig(host=broker.host, port=broker.port, client_id="gateway-under-test"),
        storage=StorageConfig(sqlite_path=db_path),
        api=ApiConfig(
            port=free_port(),
            tokens=[
                TokenConfig(name=f"{role}-1", role=role, sha256=hash_token(token))
                for role, token in TOKENS.items()
            ],  # type: ignore[arg-type]
        ),
        inventory=devices,
        rules=rules,
    )


class RunningGateway:
    def __init__(self, gateway: Gateway, task: asyncio.Task[None]) -> None:
        self.gateway = gateway
        self.task = task
        self.base_url = f"http://127.0.0.1:{gateway.config.api.port}"
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=10)

    def headers(self, role: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[role]}"}

    async def get(self, path: str, role: str = "operator", **params: Any) -> Any:
        response = await self.http.get(path, headers=self.headers(role), params=params)
        response.raise_for_status()
        return response.json()

    async def wait_for_alert(
        self,
        rule: str,
        device_id: str | None = None,
        state: str | None = None,
        timeout_s: float = 10.0,
        min_count: int = 1,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for alert in await self.get("/api/v1/alerts"):
                if (
                    alert["rule"] == rule
                    and device_id in (None, alert["device_id"])
                    and state in (None, alert["state"])
                    and alert["count"] >= min_count
                ):
                    return dict(alert)
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"no {state or ''} {rule} alert for {device_id or 'any device'} within {timeout_s} s"
        )

    async def wait_for(self, predicate: Any, timeout_s: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what} not reached within {timeout_s} s")

    async def wait_for_messages(self, count: int, timeout_s: float = 10.0) -> None:
        counters = self.gateway.counters
        await self.wait_for(
            lambda: counters.get("mqtt_messages") >= count, timeout_s, f"{count} MQTT messages"
        )

    def is_online(self, device_id: str) -> bool | None:
        pipeline = self.gateway.pipeline
        status = pipeline.tracker.get(device_id) if pipeline else None
        return status.online if status else None

    def flush_store(self) -> None:
        self.gateway.store.flush()


@asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[RunningGateway]:
    gateway = Gateway(config)
    task = asyncio.create_task(gateway.run())
    ready = asyncio.create_task(gateway.ready.wait())
    await asyncio.wait({task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    assert gateway.ready.is_set(), "gateway did not become ready in 15 s"
    harness = RunningGateway(gateway, task)
    await harness.wait_for(
        lambda: bool(gateway.subscribers) and all(s.stats.subscribed for s in gateway.subscribers),
        what="broker subscription",
    )
    try:
        yield harness
    finally:
        await harness.http.aclose()
        gateway.stop()
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            faulthandler.dump_traceback(all_threads=True)  # where shutdown hangs, for the CI log
            raise
