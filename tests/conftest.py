"""Shared fixtures: every test that needs a broker gets a real mosquitto it owns."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.broker import find_mosquitto, start_local_broker


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    config_path: Path


def start_mosquitto(workdir: Path, extra_config: str = "") -> tuple[subprocess.Popen[bytes], Broker]:
    """Start mosquitto on a free loopback port with a config file written here (the demo's starter)."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; .ci/run installs it with apt-get")
    local = start_local_broker(workdir, prefer="mosquitto", extra_mosquitto_config=extra_config)
    return local.process, Broker("127.0.0.1", local.port, workdir / "mosquitto.conf")


def launch_mosquitto(broker: Broker) -> subprocess.Popen[bytes]:
    """Run mosquitto with `broker`'s config file (again, after a stop: same port, same persistence)."""
    # Its log goes to a file: a pipe nobody reads fills up and then blocks the broker.
    log_path = broker.config_path.parent / "mosquitto-relaunch.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            [find_mosquitto() or "mosquitto", "-c", str(broker.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    port = broker.port
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("mosquitto did not start listening within 10 s")
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    proc, broker = start_mosquitto(tmp_path / "mosquitto")
    yield broker
    stop_process(proc)
