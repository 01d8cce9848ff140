"""A real `campus-gateway` process on a config the test writes, and the CLI run as a user runs it."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from gateway.broker import free_port
from tests.conftest import Broker

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def write_config(directory: Path, broker: Broker, devices: int = 5, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(
        f"  - {{id: t{n}, kind: temperature, reporting_interval_s: 3600}}" for n in range(devices)
    )
    (directory / "inventory.yaml").write_text(f"devices:\n{rows}\n")
    config = directory / "gateway.yaml"
    config.write_text(
        f"""
campus: {{id: ops, name: 运维测试}}
broker: {{host: 127.0.0.1, port: {broker.port}, client_id: gw-ops-{free_port()}}}
storage: {{sqlite_path: data/gateway.db}}
api: {{host: 127.0.0.1, port: {free_port()}, tokens: [{{name: op, role: operator, sha256: "{"a" * 64}"}}]}}
inventory: inventory.yaml
{extra}
"""
    )
    return config


def cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True, text=True, env={**ENV, **(env or {})}, cwd=cwd, timeout=120,
    )  # fmt: skip


def start_gateway(
    config: Path, env: Mapping[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    with open(log or config.with_suffix(".log"), "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**ENV, **(env or {})},
        )  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def api_port(config: Path) -> int:
    return int(re.search(r"api: \{host: 127.0.0.1, port: (\d+)", config.read_text())[1])  # type: ignore[index]


def wait_ready(port: int, timeout_s: float = 30.0) -> None:
    """Until the gateway's health says its broker sessions are connected (subscribed)."""

    def ready() -> bool:
        try:
            return bool(
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).json()["broker"]["connected"]
            )
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    wait_for(ready, timeout_s, "the gateway connected to its broker")


def readings(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0
