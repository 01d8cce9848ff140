"""Fixtures for the Modbus driver tests: a socat serial pair owned by the test."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from modbus_support import SerialPair

from tests.conftest import stop_process


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[SerialPair]:
    socat = shutil.which("socat") or "/usr/bin/socat"
    if not Path(socat).exists():
        pytest.fail("socat is not installed; .ci/run installs it with apt-get")
    device_end, gateway_end = tmp_path / "device", tmp_path / "gateway"
    proc = subprocess.Popen(
        [
            socat,
            f"pty,raw,echo=0,link={device_end}",
            f"pty,raw,echo=0,link={gateway_end}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not (device_end.exists() and gateway_end.exists()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("socat did not create the pty pair")
        time.sleep(0.02)
    yield SerialPair(str(device_end), str(gateway_end))
    stop_process(proc)
