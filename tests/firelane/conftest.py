"""Fire-lane fixtures: real RTSP cameras (GStreamer's RTSP server), stopped at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firelane.rtsp import RtspCamera, gstreamer_rtsp_available


@pytest.fixture
def rtsp_cameras(tmp_path: Path) -> Iterator[list[RtspCamera]]:
    """The test appends started `RtspCamera`s; every one is stopped at teardown."""
    if not gstreamer_rtsp_available():
        pytest.fail("GStreamer's RTSP server is not installed; .ci/run installs it with apt-get")
    cameras: list[RtspCamera] = []
    yield cameras
    for camera in cameras:
        camera.stop()
