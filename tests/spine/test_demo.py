"""The README's first command: `campus-gateway demo` starts everything, shows live alerts, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.broker import free_port


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_runs_with_either_broker_and_stops_cleanly_on_ctrl_c(tmp_path: Path, broker: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--data", str(tmp_path), "--port", str(port),
         "--broker", broker, "--period", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    output: list[str] = []
    try:
        assert process.stdout is not None
        token = None
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            output.append(line)
            found = re.search(r"Operator token:\s+(\S+)", line)
            token = found.group(1) if found else None
        assert token, "".join(output)
        headers = {"Authorization": f"Bearer {token}"}
        rules: set[tuple[str, str]] = set()

        def seen() -> bool:  # the MQTT campus's alarms, and the library panel's over GB/T 26875.3
            names = {rule for rule, _ in rules}
            return {"panic_pressed", "fire_alarm"} <= names and ("fire_alarm", "lib-3f-smoke-01") in rules

        while time.monotonic() < deadline and not seen():
            alerts = httpx.get(f"http://127.0.0.1:{port}/api/v1/alerts", headers=headers, timeout=5).json()
            rules = {(alert["rule"], alert["device_id"]) for alert in alerts}
            time.sleep(0.3)
        assert {"panic_pressed", "fire_alarm"} <= {rule for rule, _ in rules}
        assert ("fire_alarm", "lib-3f-smoke-01") in rules, rules
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "校园安全" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        output.append(rest)
    assert process.returncode == 0, "".join(output)
    assert "demo stopped" in "".join(output)
