"""A real RTSP camera for tests: GStreamer's RTSP server (simulators/rtsp_server.py) run under
the system Python, serving H.264 made from the scene simulator's frames on a free loopback port."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gateway.broker import free_port
from simulators.firelane_scene import SceneRenderer, SceneSpec
from tests.conftest import stop_process

REPO = Path(__file__).resolve().parents[2]
# PyGObject and GstRtspServer come from Debian's packages, for Debian's own Python.
SYSTEM_PYTHON = "/usr/bin/python3"


def render_raw(spec: SceneSpec, path: Path, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Write a scene's frames as raw BGR, back to back; returns the plan segment that plays them."""
    with path.open("wb") as file:
        for _, image in SceneRenderer(spec).frames():
            if size is not None:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            file.write(np.ascontiguousarray(image).tobytes())
    width, height = size or (spec.width, spec.height)
    return {"raw": str(path), "width": width, "height": height, "fps": spec.fps}


@dataclass
class RtspCamera:
    """One camera at `url`; `stop()` and `start()` again keep the port, as a rebooted camera."""

    workdir: Path
    segments: list[dict[str, Any]]
    loop: bool = True
    key_int: int = 10
    slices: int | None = None  # None: x264's choice (one slice per encoding thread)
    codec: str = "h264"  # or h265
    parameter_sets_per_slice: bool = False  # True: SPS/PPS before each slice of a key frame
    port: int = field(default_factory=free_port)
    path: str = "/live"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self) -> RtspCamera:
        plan = {
            "port": self.port,
            "path": self.path,
            "key_int": self.key_int,
            "slices": self.slices,
            "codec": self.codec,
            "parameter_sets_per_slice": self.parameter_sets_per_slice,
            "loop": self.loop,
            "segments": self.segments,
        }
        plan_path = self.workdir / f"rtsp-{self.port}.json"
        plan_path.write_text(json.dumps(plan))
        log = (self.workdir / f"rtsp-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(REPO / "simulators" / "rtsp_server.py"), str(plan_path)],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"the RTSP server did not start: {self.log_tail()}")
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()

    def streaming_since(self, before: float) -> float:
        """Unix time the stream last started playing its plan from the beginning before
        `before` (the server's `STREAMING` lines): scene time 0 for what a client reports."""
        path = self.workdir / f"rtsp-{self.port}.log"
        lines = path.read_text(errors="replace").splitlines()
        starts = [float(line.split()[1]) for line in lines if line.startswith("STREAMING ")]
        if not [start for start in starts if start < before]:
            raise AssertionError(f"the RTSP server did not stream before {before}: {self.log_tail()}")
        return max(start for start in starts if start < before)

    def log_tail(self) -> str:
        path = self.workdir / f"rtsp-{self.port}.log"
        return path.read_text(errors="replace")[-2000:] if path.is_file() else ""


def gstreamer_rtsp_available() -> bool:
    check = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    if not Path(SYSTEM_PYTHON).is_file():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, timeout=30).returncode == 0


def wait_until(predicate: Any, timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(poll_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")
