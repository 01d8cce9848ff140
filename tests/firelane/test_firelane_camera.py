"""The OpenCV capture adapter: snapshot URLs, unreadable streams, files, backoff."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice, pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import (
    Backoff,
    CameraCapture,
    CaptureGap,
    Frame,
    SampleSchedule,
    access_unit,
    source_kind,
    starts_picture,
)
from gateway.broker import free_port
from simulators.firelane_scene import SceneSpec, write_scene


@pytest.fixture
def snapshot_server() -> Iterator[str]:
    """An HTTP camera: /snapshot.jpg serves a JPEG, anything else is a 404."""
    ok, jpeg = cv2.imencode(".jpg", np.full((90, 160, 3), 128, np.uint8))
    assert ok
    body = jpeg.tobytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/snapshot.jpg":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("source", "kind"),
    [("rtsp://cam/stream1", "rtsp"), ("https://cam/snap.jpg", "snapshot"), ("/data/lane.avi", "file")],
)
def test_source_kind(source: str, kind: str) -> None:
    assert source_kind(source) == kind


def test_snapshot_url_yields_frames_and_a_404_yields_gaps(snapshot_server: str) -> None:
    stop = threading.Event()
    frames = list(islice(CameraCapture(f"{snapshot_server}/snapshot.jpg", 20.0, stop).items(), 3))
    assert all(isinstance(item, Frame) and item.image.shape == (90, 160, 3) for item in frames)
    missing = CameraCapture(f"{snapshot_server}/nope.jpg", 20.0, stop, backoff=Backoff(0.01, 0.02))
    gaps = list(islice(missing.items(), 4))
    assert all(isinstance(item, CaptureGap) for item in gaps)
    assert sum("404" in item.reason for item in gaps if isinstance(item, CaptureGap)) >= 2


def test_unreachable_rtsp_stream_yields_gaps_not_exceptions() -> None:
    stop = threading.Event()
    capture = CameraCapture(
        f"rtsp://127.0.0.1:{free_port()}/live", 1.0, stop, backoff=Backoff(0.01, 0.02), timeout_s=2.0
    )
    first = next(capture.items())
    assert isinstance(first, CaptureGap) and first.reason == "open_failed"


def test_file_is_sampled_by_its_own_frame_times(tmp_path: Path) -> None:
    video, _, _ = write_scene(SceneSpec("five_fps", fps=5.0, duration_s=4.0), tmp_path)
    stop = threading.Event()
    items = list(CameraCapture(str(video), 1.0, stop, clock=lambda: 1000.0).items())
    assert [item.ts for item in items if isinstance(item, Frame)] == pytest.approx([1000, 1001, 1002, 1003])


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial_s=1.0, max_s=5.0)
    assert [backoff.next_delay_s() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_delay_s() == 1.0


def test_sampling_a_2_fps_stream_at_1_fps_keeps_one_frame_a_second() -> None:
    """Measured: a 40 s clip from a 2 fps RTSP stream held 31 frames, samples 1.0 or 1.5 s apart,
    because the next sample was due one interval after the last frame taken, so a frame a
    millisecond early waited half a second more."""
    schedule = SampleSchedule(interval_s=1.0)
    arrivals = [1000.0 + n * 0.5 + (0.001 if n % 3 else -0.001) for n in range(80)]  # 40 s, jitter
    taken = [ts for ts in arrivals if schedule.due(ts)]
    assert len(taken) == 40
    assert max(b - a for a, b in pairwise(taken)) < 1.1


def test_a_stream_that_stalled_restarts_its_sampling_from_the_next_frame() -> None:
    schedule = SampleSchedule(interval_s=1.0)
    assert schedule.due(0.0) and not schedule.due(0.5) and schedule.due(1.0)
    assert schedule.due(9.3)  # a stall of 8 s: no burst of catch-up samples after it
    assert not schedule.due(9.8) and not schedule.due(10.2) and schedule.due(10.3)


SPS, PPS = b"\x00\x00\x00\x01\x67\x42\xc0\x1e", b"\x00\x00\x00\x01\x68\xce\x3c\x80"
AUD = b"\x00\x00\x00\x01\x09\xf0"


def test_a_key_frame_in_two_packets_is_one_access_unit_without_the_repeated_parameter_sets() -> None:
    # As an RTP payloader sends a two-slice key frame: SPS/PPS again before the second slice,
    # where FFmpeg's parser would start a new picture (first_mb_in_slice 0: top bit set).
    first_slice, second_slice = b"\x00\x00\x01\x65\x88\x84", b"\x00\x00\x01\x65\x04\x21"
    first, second = AUD + SPS + PPS + first_slice, SPS + PPS + second_slice
    assert starts_picture(first) and not starts_picture(second)
    unit = access_unit([SPS + PPS, first, second])
    assert unit == SPS + PPS + AUD + SPS + PPS + first_slice + second_slice
    # H.265: two-byte NAL headers; VPS/SPS/PPS are types 32-34, an IDR slice 19 or 20.
    vps, idr = b"\x00\x00\x01\x40\x01\x0c", b"\x00\x00\x01\x26\x01\xaf"
    idr_more = b"\x00\x00\x01\x26\x01\x20"
    assert starts_picture(vps + idr, "hevc") and not starts_picture(vps + idr_more, "hevc")
    assert access_unit([vps + idr, vps + idr_more], "hevc") == vps + idr + idr_more
