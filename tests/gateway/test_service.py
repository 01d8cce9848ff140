"""Running as a service: the shipped systemd unit, and sd_notify READY / WATCHDOG / STOPPING."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gateway.systemd import Notifier
from tests.conftest import Broker
from tests.gateway.support import ROOT, cli, start_gateway, write_config

UNIT = ROOT / "config" / "systemd" / "campus-gateway.service"


def test_the_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed")
    program = shutil.which("campus-gateway") or shutil.which("true")
    assert program is not None
    # verify checks that ExecStart exists; point it at this machine's program, change nothing else.
    text = UNIT.read_text().replace("/opt/campus-gateway/venv/bin/campus-gateway", program)
    (tmp_path / UNIT.name).write_text(text)
    result = subprocess.run([verify, "verify", str(tmp_path / UNIT.name)], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    for line in ("Type=notify", "Restart=on-failure", "RestartPreventExitStatus=2", "User=campus-gateway",
                 "StateDirectory=campus-gateway", "ConfigurationDirectory=campus-gateway"):  # fmt: skip
        assert line in text.splitlines()
    assert any(line.startswith("WatchdogSec=") for line in text.splitlines())


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def _received(sock: socket.socket, until: float) -> list[tuple[float, str]]:
    messages = []
    while time.monotonic() < until:
        with contextlib.suppress(TimeoutError):
            messages.append((time.monotonic(), sock.recv(4096).decode()))
    return messages


def _first(sock: socket.socket, timeout_s: float) -> str:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(4096).decode()
    finally:
        sock.settimeout(0.2)


def test_a_running_gateway_tells_systemd_ready_pings_the_watchdog_and_says_stopping(
    mosquitto: Broker, tmp_path: Path
) -> None:
    sock = _listen(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"}
    config = write_config(tmp_path / "etc", mosquitto)
    gateway = start_gateway(config, env)
    try:
        assert _first(sock, 30) == "READY=1"  # nothing before it: the watchdog starts once ready
        pings = [t for t, m in _received(sock, time.monotonic() + 1.5) if m == "WATCHDOG=1"]
        assert len(pings) >= 5  # every 0.2 s, half the watchdog interval
        gateway.terminate()
        assert gateway.wait(20) == 0
        assert "STOPPING=1" in [m for _, m in _received(sock, time.monotonic() + 0.5)]
        # The test broker takes anyone: said at every start, in the log the journal keeps.
        assert (
            "WARNING gateway: UNSAFE CONFIG: broker: no username/password"
            in config.with_suffix(".log").read_text()
        )
    finally:
        if gateway.poll() is None:
            gateway.kill()
        sock.close()


def test_a_systemd_that_does_not_read_never_blocks_the_gateway(mosquitto: Broker, tmp_path: Path) -> None:
    sock = _listen(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000"}
    config = write_config(tmp_path / "etc", mosquitto)
    gateway = start_gateway(config, env)
    try:
        assert _first(sock, 30) == "READY=1"
        second = cli("run", "--config", str(config))  # one gateway per database
        assert second.returncode == 2 and f"(pid {gateway.pid}) is running on it" in second.stderr
        # Unread for 3 s (30 pings), the socket's queue (10 by default) is full: the pings that do
        # not fit are dropped, and the loop must not block on them, or SIGTERM is never handled.
        time.sleep(3.0)
        gateway.terminate()
        assert gateway.wait(20) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
        sock.close()


async def test_a_wedged_event_loop_stops_the_pings(tmp_path: Path) -> None:
    sock = _listen(tmp_path / "notify.sock")
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "100000"})
    ready = asyncio.Event()
    ready.set()
    task = asyncio.create_task(notifier.serve(ready))
    try:
        await asyncio.sleep(0.3)
        time.sleep(1.0)  # a blocking call on the loop: what the watchdog is there to catch
        wedged_from = time.monotonic() - 1.0
        await asyncio.sleep(0.2)
    finally:
        task.cancel()
    pings = [t for t, m in _received(sock, time.monotonic() + 0.3) if m == "WATCHDOG=1"]
    sock.close()
    assert pings and not [t for t in pings if wedged_from + 0.1 < t < wedged_from + 0.9]


def test_without_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert notifier.address == "" and notifier.watchdog_s is None
    notifier.send("READY=1")  # no socket, no error
