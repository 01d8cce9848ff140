"""Shared fixtures: every test that needs a broker gets a real mosquitto it owns."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.broker import free_port


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    config_path: Path


def start_mosquitto(workdir: Path, extra_config: str = "") -> tuple[subprocess.Popen[bytes], Broker]:
    """Start mosquitto on a free loopback port with a config file written here."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("mosquitto is not installed; .ci/run installs it with apt-get")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        f"user {getpass.getuser()}\n"  # as root, mosquitto would switch to a user that cannot write here
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {workdir}/\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "queue_qos0_messages false\n"
        f"log_dest file {workdir}/mosquitto.log\n" + extra_config
    )
    broker = Broker("127.0.0.1", port, config)
    return launch_mosquitto(broker), broker


def launch_mosquitto(broker: Broker) -> subprocess.Popen[bytes]:
    """Run mosquitto with `broker`'s config file (again, after a stop: same port, same persistence)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen(
        [binary, "-c", str(broker.config_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    port = broker.port
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {proc.stderr.read().decode() if proc.stderr else ''}")
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
