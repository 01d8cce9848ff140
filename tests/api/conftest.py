"""A real gateway process (real broker, YAML config, SQLite, HTTP) that a module's tests share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.broker import free_port
from gateway.config import hash_token
from tests.conftest import start_mosquitto, stop_process
from tests.harness import TOKENS

REPO = Path(__file__).resolve().parents[2]
PROXY_ORIGIN = "https://safety.school.example"  # allowed to open the stream besides the gateway's own
INVENTORY = """
devices:
  - {id: tb-1f-smoke-01, kind: smoke, name: 教学楼1层烟感01, building: 教学楼, floor: 1F, zone: 101教室}
  - {id: panic-office-01, kind: panic, name: 校长室一键报警, building: 综合楼, floor: 3F, zone: 校长室}
  - {id: efm-main-01, kind: electrical_fire, name: 总配电柜, building: 综合楼, floor: B1, zone: 配电室}
"""


@dataclass(frozen=True)
class ServedGateway:
    base_url: str
    pid: int
    log_path: Path

    @staticmethod
    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[role]}"} if role in TOKENS else {}


def write_config(folder: Path, broker_port: int, api_port: int, extra: str = "") -> Path:
    tokens = ", ".join(
        f'{{name: {role}-1, role: {role}, sha256: "{hash_token(token)}"}}' for role, token in TOKENS.items()
    )
    (folder / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    config = folder / "gateway.yaml"
    config.write_text(
        f"""
campus: {{id: fuzz, name: 测试学校}}
broker: {{host: 127.0.0.1, port: {broker_port}, client_id: gw-fuzz}}
storage: {{sqlite_path: gw.db}}
api: {{host: 127.0.0.1, port: {api_port}, tokens: [{tokens}], allowed_origins: ["{PROXY_ORIGIN}"]}}
inventory: inventory.yaml
tickets:
  people:
    - {{id: wang, name: 王老师, role: 后勤主任, phone: "13800000000"}}
    - {{id: li, name: 李老师, role: 安全员, phone: "13900000000"}}
{extra}
""",
        encoding="utf-8",
    )
    return config


def start_gateway(config: Path, api_port: int) -> tuple[subprocess.Popen[bytes], ServedGateway]:
    log_path = config.parent / "gateway.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
            stdout=log_file,
            stderr=log_file,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    served = ServedGateway(f"http://127.0.0.1:{api_port}", proc.pid, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{served.base_url}/api/v1/health", timeout=1).status_code == 200:
                return proc, served
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the gateway did not answer /api/v1/health within 30 s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    folder = tmp_path_factory.mktemp("served")
    broker_proc, broker = start_mosquitto(folder / "mosquitto")
    api_port = free_port()
    proc, gateway = start_gateway(write_config(folder, broker.port, api_port), api_port)
    try:
        yield gateway
    finally:
        stop_process(proc)
        stop_process(broker_proc)
