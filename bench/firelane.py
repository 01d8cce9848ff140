"""Fire-lane analytics throughput: frames per second per core at 720p and 1080p, and how many
1-fps cameras one core can serve (target: >= 16 at 1080p).

Each sample costs what the worker pays per camera per second: decoding one JPEG (an HTTP
snapshot) and running the camera pipeline (health checks, regime, registration, obstruction of
one lane, dwell). A stream (RTSP, or a file) must be decoded frame by frame, so the bench also
decodes MJPEG and MPEG-4 part 2 files written by OpenCV's VideoWriter and prints what a 25 fps
stream costs per camera. OpenCV is pinned to one thread, so the figures are per core.
Run: `python bench/firelane.py [--seconds 3]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.firelane import CameraPipeline, LaneConfig
from simulators.firelane_scene import (
    DEFAULT_GEOMETRY,
    Condition,
    SceneRenderer,
    SceneSpec,
    Vehicle,
    lane_polygon,
)

RESOLUTIONS = ((1280, 720), (1920, 1080))
TARGET_CAMERAS_1080P = 16


def bench_frames(width: int, height: int, count: int = 8) -> list[np.ndarray]:
    spec = SceneSpec(
        "bench",
        seed=3,
        geometry=DEFAULT_GEOMETRY.scaled(width, height),
        duration_s=float(count),
        conditions=(Condition.CLOUD_SHADOWS, Condition.CAMERA_SHAKE),
        vehicles=(Vehicle(2.0, 6.0),),
    )
    return [image for _, image in SceneRenderer(spec).frames()]


def jpeg_frames(width: int, height: int, count: int = 8) -> list[bytes]:
    frames = []
    for image in bench_frames(width, height, count):
        ok, coded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        frames.append(coded.tobytes())
    return frames


def video_decode_ms(width: int, height: int, fourcc: str, suffix: str, fps: float = 25.0) -> float:
    """Milliseconds per decoded frame of a compressed video stream written by OpenCV's
    VideoWriter (every frame of a stream must be decoded, not only the sampled ones)."""
    frames = bench_frames(width, height, 8)
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / f"bench{suffix}")
        writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
        if not writer.isOpened():
            return float("nan")
        for index in range(100):
            writer.write(frames[index % len(frames)])
        writer.release()
        capture = cv2.VideoCapture(path)
        start = time.perf_counter()
        decoded = 0
        while True:
            ok, _ = capture.read()
            if not ok:
                break
            decoded += 1
        elapsed = time.perf_counter() - start
        capture.release()
    return 1000 * elapsed / max(decoded, 1)


def measure(width: int, height: int, seconds: float) -> tuple[float, float]:
    """Mean milliseconds per sample: (JPEG decode, pipeline)."""
    frames = jpeg_frames(width, height)
    decoded = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR) for f in frames]
    polygon = tuple((x, y) for x, y in lane_polygon(width, height))
    pipeline = CameraPipeline([LaneConfig("lane", polygon, 180.0, 30.0)], 0.0, [decoded[0]])
    decode_s = analyse_s = 0.0
    samples = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        coded = frames[samples % len(frames)]
        start = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(coded, np.uint8), cv2.IMREAD_COLOR)
        middle = time.perf_counter()
        pipeline.frame(float(samples), np.asarray(image, dtype=np.uint8))
        end = time.perf_counter()
        decode_s += middle - start
        analyse_s += end - middle
        samples += 1
    return 1000 * decode_s / samples, 1000 * analyse_s / samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per resolution")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}, 1 thread (per-core figures)")
    print(
        f"{'input':>10} {'decode ms':>10} {'analyse ms':>11} {'total ms':>9} {'fps/core':>9} "
        f"{'analyse-only fps':>17} {'1-fps cameras/core':>19}"
    )
    cameras_1080p = 0
    analyse_ms_at: dict[int, float] = {}
    for width, height in RESOLUTIONS:
        decode_ms, analyse_ms = measure(width, height, args.seconds)
        analyse_ms_at[height] = analyse_ms
        total_ms = decode_ms + analyse_ms
        fps = 1000.0 / total_ms
        cameras = int(fps)
        if height == 1080:
            cameras_1080p = cameras
        print(
            f"{width:>5}x{height:<4} {decode_ms:>10.2f} {analyse_ms:>11.2f} {total_ms:>9.2f} "
            f"{fps:>9.1f} {1000.0 / analyse_ms:>17.1f} {cameras:>19d}"
        )
    print("compressed video streams (every frame decoded, 1 thread):")
    for fourcc, suffix, label in (("MJPG", ".avi", "MJPEG"), ("mp4v", ".mp4", "MPEG-4 part 2")):
        for width, height in RESOLUTIONS:
            ms = video_decode_ms(width, height, fourcc, suffix)
            per_camera_ms = 25 * ms + analyse_ms_at[height]
            print(
                f"  {label:<14} {width}x{height}: {ms:6.2f} ms/frame; a 25 fps stream costs "
                f"{25 * ms / 10:.1f} % of a core, a 1 fps sub-stream {ms / 10:.2f} %; "
                f"cameras/core on 25 fps streams (decode all, analyse 1 fps): {1000 / per_camera_ms:.1f}"
            )
    verdict = "PASS" if cameras_1080p >= TARGET_CAMERAS_1080P else "FAIL"
    print(f"target >= {TARGET_CAMERAS_1080P} cameras/core at 1080p: {verdict} ({cameras_1080p})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
