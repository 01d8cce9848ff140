"""A broker for the demo: the system's mosquitto when installed, else amqtt (pure Python)."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


@dataclass
class LocalBroker:
    """A broker process on 127.0.0.1 that this process started and will stop."""

    process: subprocess.Popen[bytes]
    port: int
    implementation: str
    mqtt_version: int

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_local_broker(
    workdir: Path, port: int | None = None, prefer: str = "auto", extra_mosquitto_config: str = ""
) -> LocalBroker:
    """Start mosquitto (`prefer` auto or mosquitto) or amqtt (`prefer` amqtt, or no mosquitto installed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    mosquitto = find_mosquitto() if prefer != "amqtt" else None
    if prefer == "mosquitto" and mosquitto is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto), use --broker amqtt")
    if mosquitto is not None:
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            # As root, mosquitto would switch to a user that cannot write the log or persistence here.
            f"user {getpass.getuser()}\n"
            f"persistence_location {workdir}/\nmax_queued_messages 1000000\nmax_inflight_messages 0\n"
            f"log_dest file {workdir}/mosquitto.log\n{extra_mosquitto_config}"
        )
        command = [mosquitto, "-c", str(config)]
        implementation, version = "mosquitto", 5
    else:
        config = workdir / "amqtt.yaml"
        config.write_text(
            f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
        )
        amqtt = shutil.which("amqtt") or str(Path(sys.executable).parent / "amqtt")
        command = [amqtt, "-c", str(config)]
        implementation, version = "amqtt", 311  # amqtt speaks MQTT 3.1.1
    log_file = (workdir / f"{implementation}.out").open("wb")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{implementation} exited at start; see {workdir / (implementation + '.out')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return LocalBroker(process, port, implementation, version)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{implementation} did not listen on port {port} within 15 s")
