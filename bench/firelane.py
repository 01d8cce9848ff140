"""Fire-lane analytics throughput: frames per second per core at 720p and 1080p, and how many
1-fps cameras one core can serve (target: >= 16 at 1080p, from JPEG snapshots and from RTSP H.264).

Each sample costs what the worker pays per camera per second: decoding one JPEG (an HTTP
snapshot) and running the camera pipeline (health checks, regime, registration, obstruction of
one lane, dwell). A stream (RTSP, or a file) must be decoded frame by frame, so the bench also
decodes MJPEG and MPEG-4 part 2 files written by OpenCV's VideoWriter and prints what a 25 fps
stream costs per camera. Then the real thing: H.264 (main profile, no B-frames, a key frame
every 2 s, 2 Mbit/s at 720p and 4 Mbit/s at 1080p, as a school camera's main stream) served
over RTSP by GStreamer's RTSP server in real time, read by OpenCV's FFmpeg backend two ways:
decoding and converting every frame (`read()`), the worker's way, `grab()` every frame and
`retrieve()` (the BGR conversion) only the 1-per-second sample (the worker's `decode: all`),
and key frames only (`decode: key_frames`): raw packets (`CAP_PROP_FORMAT` -1), of which only a
key frame, at most one a second, is decoded, on its own with the stream's SPS/PPS; and the
worker's own capture (`drivers.camera.CameraCapture`) with its default `decode: auto`, the
headline figure: the way it chose is printed. The cost is the process's CPU
time per second of stream; the server is another process. OpenCV and FFmpeg are pinned to one
thread, so the figures are per core.
Run: `python bench/firelane.py [--seconds 3] [--rtsp-seconds 10]` (RTSP needs .ci/run's
GStreamer packages and /usr/bin/python3 with PyGObject).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.firelane import CameraPipeline, LaneConfig
from drivers.camera import CameraCapture
from gateway.broker import free_port
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
STREAM_FPS = 25
BITRATE_KBPS = {720: 2048, 1080: 4096}
REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"  # the RTSP server's, with PyGObject (simulators/rtsp_server.py)


@functools.cache
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


def encode_h264(width: int, height: int, directory: Path, seconds: float) -> Path:
    """An H.264 Matroska file of the bench frames at STREAM_FPS, `seconds` long plus slack."""
    raw = directory / f"{height}p.raw"
    frames = bench_frames(width, height)
    raw.write_bytes(b"".join(np.ascontiguousarray(frame).tobytes() for frame in frames))
    repeat = int((seconds + 6) * STREAM_FPS / len(frames)) + 1
    plan = {
        "segments": [{"raw": str(raw), "width": width, "height": height, "fps": STREAM_FPS}],
        "repeat": repeat,
        "key_int": 2 * STREAM_FPS,
        "bitrate_kbps": BITRATE_KBPS[height],
    }
    plan_path, out = directory / f"{height}p-encode.json", directory / f"{height}p.mkv"
    plan_path.write_text(json.dumps(plan))
    server = str(REPO / "simulators" / "rtsp_server.py")
    subprocess.run([SYSTEM_PYTHON, server, "encode", str(plan_path), str(out)], check=True, timeout=900)
    raw.unlink()
    return out


class Way(StrEnum):
    EVERY_FRAME = "decode every frame"  # read(): decode and convert every frame
    GRAB_AND_SKIP = "grab, retrieve 1 fps"  # the worker's way: grab() each, retrieve() the sample
    KEY_FRAMES = "key frames only"  # raw packets; decode only a key frame, at most 1 per second
    WORKER_DEFAULT = "worker, decode: auto"  # drivers.camera.CameraCapture as the worker runs it


def worker_capture_cpu_per_s(url: str, seconds: float) -> tuple[float, float, str]:
    """(CPU s per s, frames per s, the way it decoded) of the worker's own capture at 1 fps
    with its default `decode: auto`, samples included (key frames gathered and decoded)."""
    stop = threading.Event()
    capture = CameraCapture(url, 1.0, stop, decode="auto")
    items = capture.items()
    warm_until = time.monotonic() + 3.0  # past the probe and the GOP measurement
    for _ in items:
        if time.monotonic() >= warm_until:
            break
    grabbed = capture.stats.frames_grabbed
    cpu_start, wall_start = time.process_time(), time.monotonic()
    for _ in items:
        if time.monotonic() - wall_start >= seconds:
            break
    wall_s = time.monotonic() - wall_start
    cpu_s = time.process_time() - cpu_start
    stop.set()
    items.close()
    stats = capture.stats
    way = f"{stats.codec}, key frames {stats.key_frame_interval_s} s apart: "
    way += "key frames only" if stats.key_frames_only else "every frame"
    return cpu_s / wall_s, (stats.frames_grabbed - grabbed) / wall_s, way


def decode_key_frame(extradata: bytes, packet: bytes, scratch: Path) -> bool:
    """Decode one H.264 key frame (with the stream's SPS/PPS) on its own, as a one-frame file."""
    scratch.write_bytes(extradata + packet)
    capture = cv2.VideoCapture(str(scratch), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    ok, _ = capture.read()
    capture.release()
    return bool(ok)


WORKER_WAYS: dict[str, str] = {}  # per video: how the worker's capture decoded it


def rtsp_cpu_per_s(video: Path, directory: Path, seconds: float, way: Way) -> tuple[float, float]:
    """(CPU seconds per second of stream, frames per second) reading `video` served over RTSP
    the given way."""
    port = free_port()
    plan_path = directory / f"serve-{port}.json"
    plan_path.write_text(json.dumps({"port": port, "path": "/live", "segments": [{"h264": str(video)}]}))
    server = subprocess.Popen(
        [SYSTEM_PYTHON, str(REPO / "simulators" / "rtsp_server.py"), str(plan_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().startswith(b"READY")
        if way is Way.WORKER_DEFAULT:
            cpu, fps, chosen = worker_capture_cpu_per_s(f"rtsp://127.0.0.1:{port}/live", seconds)
            WORKER_WAYS[video.stem] = chosen
            return cpu, fps
        params = [cv2.CAP_PROP_N_THREADS, 1, cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000]
        if way is Way.KEY_FRAMES:
            params += [cv2.CAP_PROP_FORMAT, -1]  # grab() reads packets, retrieve() returns them
        capture = cv2.VideoCapture(f"rtsp://127.0.0.1:{port}/live", cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            raise RuntimeError(f"cannot open the RTSP stream of {video}")
        extradata = b""
        if way is Way.KEY_FRAMES:
            ok, data = capture.retrieve(flag=int(capture.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX)))
            extradata = data.tobytes() if ok and data is not None else b""
        for _ in range(2 * STREAM_FPS):  # past the frames buffered while the stream was probed
            capture.grab()
        frames = decoded = 0
        cpu_start, wall_start = time.process_time(), time.monotonic()
        next_sample = wall_start
        scratch = directory / "key-frame.h264"
        while time.monotonic() - wall_start < seconds:
            if way is Way.EVERY_FRAME:
                ok, _ = capture.read()
            else:
                ok = capture.grab()
                due = ok and time.monotonic() >= next_sample
                if due and way is Way.GRAB_AND_SKIP:
                    ok, _ = capture.retrieve()
                    next_sample += 1.0
                elif due and capture.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                    ok, packet = capture.retrieve()
                    if ok and decode_key_frame(extradata, packet.tobytes(), scratch):
                        decoded += 1
                    next_sample = time.monotonic() + 1.0
            if not ok:
                break
            frames += 1
        if way is Way.KEY_FRAMES and decoded == 0:
            raise RuntimeError("no key frame could be decoded on its own")
        wall_s = time.monotonic() - wall_start
        cpu_s = time.process_time() - cpu_start
        capture.release()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return cpu_s / wall_s, frames / wall_s


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
    parser.add_argument(
        "--rtsp-seconds", type=float, default=10.0, help="seconds of RTSP stream read per way and resolution"
    )
    args = parser.parse_args()
    cv2.setNumThreads(1)
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")  # as the worker
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
    if not Path(SYSTEM_PYTHON).is_file():
        print(f"RTSP H.264: skipped ({SYSTEM_PYTHON} with PyGObject and GStreamer is needed)")
        return 0
    print(
        f"RTSP H.264 {STREAM_FPS} fps, GStreamer RTSP server -> OpenCV FFmpeg, 1 thread "
        f"(CPU per second of stream; cameras/core analysing 1 fps):"
    )
    rtsp_cameras_1080p: dict[Way, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        for width, height in RESOLUTIONS:
            video = encode_h264(width, height, Path(directory), args.rtsp_seconds)
            analyse_s = analyse_ms_at[height] / 1000
            for way in Way:
                cpu, fps = rtsp_cpu_per_s(video, Path(directory), args.rtsp_seconds, way)
                cameras = 1.0 / (cpu + analyse_s)
                print(
                    f"  {width}x{height} {BITRATE_KBPS[height] // 1024} Mbit/s, {way:<21}: "
                    f"{100 * cpu:5.1f} % of a core at {fps:4.1f} fps ({1000 * cpu / max(fps, 1e-9):5.2f} ms/frame); "
                    f"cameras/core: {cameras:5.1f}"
                )
                if height == 1080:
                    rtsp_cameras_1080p[way] = cameras
            print(f"  {width}x{height} worker, decode: auto, chose: {WORKER_WAYS[video.stem]}")
    for way, label in (
        (Way.GRAB_AND_SKIP, "decode: all"),
        (Way.KEY_FRAMES, "decode: key_frames"),
        (Way.WORKER_DEFAULT, "default decode: auto"),
    ):
        cameras = rtsp_cameras_1080p[way]
        verdict = "PASS" if cameras >= TARGET_CAMERAS_1080P else "FAIL"
        print(
            f"cameras per core at 1 fps from RTSP H.264 1080p, worker {label} ({way}): "
            f"{cameras:.1f}; target >= {TARGET_CAMERAS_1080P}: {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
