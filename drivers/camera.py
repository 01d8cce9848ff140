"""OpenCV capture adapter for fire-lane cameras: RTSP streams, HTTP snapshot URLs and files.

Turns a camera into a stream of sampled `Frame`s and `CaptureGap`s (no frame, and why), so the
analytics never see sockets or codecs. Failures never raise out of `CameraCapture.items`: they
become gaps, and the source is reopened with exponential backoff.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
# Where a key frame is written to be decoded: memory, not the SD card, where the box has tmpfs.
_SCRATCH_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
SourceKind = Literal["rtsp", "stream", "snapshot", "file"]
# Live streams FFmpeg pulls over HTTP, as media servers (ZLMediaKit, wvp-GB28181-pro) re-serve
# cameras: HTTP-FLV (`.live.flv`, older `.flv`), HLS (`.m3u8`), HTTP-TS and HTTP-fMP4.
HTTP_STREAM_SUFFIXES = (".flv", ".m3u8", ".ts", ".mp4")

log = logging.getLogger(__name__)

# RTSP over TCP (interleaved): over UDP a lost packet tears a frame and the decoder logs
# corruption until the next key frame; cameras, media servers and NVRs all offer TCP. Read by
# OpenCV's FFmpeg backend at each open; an operator's own setting wins.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


class CameraSourceError(Exception):
    """A camera source cannot be opened or yields no decodable frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    ts: float
    image: Image


@dataclass(frozen=True, slots=True)
class CaptureGap:
    """No frame at `ts`; `reason` says why (open failed, read failed, HTTP error...)."""

    ts: float
    reason: str


CaptureItem = Frame | CaptureGap


@dataclass(slots=True)
class CaptureStats:
    """Counters of one capture, written by its thread and read by the health reporter.

    Plain ints and floats: a reader on another thread sees each value whole (the GIL), and a
    report a moment stale is fine.
    """

    frames_grabbed: int = 0  # every frame the stream delivered, sampled or skipped
    frames_sampled: int = 0
    decode_errors: int = 0  # grabbed but not decodable, or a read that failed mid-stream
    reconnects: int = 0  # attempts to open the source again after a failure
    last_frame_at: float | None = None  # monotonic time of the last good frame


def source_kind(source: str) -> SourceKind:
    """rtsp(s)://; a stream FFmpeg reads (rtmp(s)://, or HTTP ending in a stream suffix);
    any other http(s):// URL is a JPEG snapshot; anything else a file."""
    lowered = source.lower()
    if lowered.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if lowered.startswith(("rtmp://", "rtmps://")):
        return "stream"
    if lowered.startswith(("http://", "https://")):
        path = urllib.parse.urlsplit(lowered).path
        return "stream" if path.endswith(HTTP_STREAM_SUFFIXES) else "snapshot"
    return "file"


@dataclass(slots=True)
class Backoff:
    """Exponential reconnect delay: initial_s, doubled per failure, capped at max_s."""

    initial_s: float = 1.0
    max_s: float = 60.0
    _next_s: float = 0.0

    def next_delay_s(self) -> float:
        self._next_s = self.initial_s if self._next_s == 0 else min(self.max_s, self._next_s * 2)
        return self._next_s

    def reset(self) -> None:
        self._next_s = 0.0


@dataclass(slots=True)
class SampleSchedule:
    """When a live stream's next sample is due: on a grid of `interval_s`, not one interval after
    the last frame taken (a frame a moment early would then wait a whole frame more: a 2 fps
    stream sampled at 1 fps gave samples 1.5 s apart). After a stall the grid starts again."""

    interval_s: float
    _next_ts: float | None = None

    def due(self, ts: float) -> bool:
        if self._next_ts is not None and ts < self._next_ts - self.interval_s * 0.02:
            return False
        if self._next_ts is None or ts - self._next_ts >= self.interval_s:
            self._next_ts = ts  # the first frame, or after a stall: the grid starts here
        self._next_ts += self.interval_s
        return True


def decode_key_frame(data: bytes, scratch: Path) -> Image | None:
    """One H.264 key frame (with its SPS/PPS, Annex B) decoded on its own, through a one-frame
    file: OpenCV has no in-memory video decoder, and `scratch` is on tmpfs where there is one."""
    scratch.write_bytes(data)
    capture = cv2.VideoCapture(str(scratch), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    try:
        ok, image = capture.read()
    finally:
        capture.release()
    return np.asarray(image, dtype=np.uint8) if ok and image is not None else None


def read_video_file(path: Path, sample_fps: float) -> Iterator[tuple[float, Image]]:
    """Sampled frames of a video file with their times (s) from the video's own timestamps.

    Raises CameraSourceError when the file cannot be opened or no frame decodes; a file that
    is truncated or corrupt part-way ends at its last decodable frame.
    """
    if not path.is_file():
        raise CameraSourceError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise CameraSourceError(f"{path}: OpenCV cannot open it as a video (corrupt or unknown)")
    try:
        interval_s = 1.0 / sample_fps
        next_t = 0.0
        decoded = 0
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                break
            decoded += 1
            t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t + 1e-6 >= next_t:
                next_t = t + interval_s - 1e-6
                yield t, np.asarray(image, dtype=np.uint8)
        if decoded == 0:
            raise CameraSourceError(f"{path}: no decodable frame (corrupt or truncated)")
    finally:
        capture.release()


class CameraCapture:
    """Samples one camera at `sample_fps`, reconnecting with backoff, until `stop` is set.

    Files are replayed as fast as they decode (or in real time with `pace_files`), stamped
    from the time they were opened plus the video's own frame times, and end at end of file.
    """

    def __init__(
        self,
        source: str,
        sample_fps: float,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        pace_files: bool = False,
        stats: CaptureStats | None = None,
        key_frames_only: bool = False,
    ) -> None:
        self.source = source
        self.kind = source_kind(source)
        self.interval_s = 1.0 / sample_fps
        self.stop = stop
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.timeout_s = timeout_s
        self.pace_files = pace_files
        self.stats = CaptureStats() if stats is None else stats
        if key_frames_only and self.kind != "rtsp":
            raise CameraSourceError(f"{source}: key frames only is for RTSP H.264 streams")
        self.key_frames_only = key_frames_only

    def items(self) -> Iterator[CaptureItem]:
        readers = {"rtsp": self._stream, "stream": self._stream, "snapshot": self._snapshots}
        reader = self._key_frames if self.key_frames_only else readers.get(self.kind, self._file)
        first = True
        while not self.stop.is_set():
            if not first:
                self.stats.reconnects += 1
            first = False
            finished = yield from reader()
            if finished:
                return
            delay_s = self.backoff.next_delay_s()
            log.info("camera %s: reconnecting in %.0f s", self.source, delay_s)
            # Keep reporting the gap while waiting, so "no frames" is noticed on time.
            deadline = time.monotonic() + delay_s
            while not self.stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    break
                yield CaptureGap(self.clock(), "reconnecting")

    def _open(self, packets: bool = False) -> cv2.VideoCapture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.timeout_s * 1000),
        ]
        if self.kind == "file":
            return cv2.VideoCapture(self.source)
        # One decoding thread per camera: the worker already runs a thread per camera and a
        # process per core, and FFmpeg's frame threads would only add contention and a frame of
        # latency per thread (bench/firelane.py measures this way).
        params += [cv2.CAP_PROP_N_THREADS, 1]
        if packets:
            params += [cv2.CAP_PROP_FORMAT, -1]  # grab() reads a packet, retrieve() returns it undecoded
        return cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, params)

    def _key_frames(self) -> Generator[CaptureItem, None, bool]:
        """RTSP H.264 read as packets, decoding only a key frame, at most one per sample interval.

        P-frames are never decoded, so a 1080p camera costs a few per cent of a core instead of
        about 13 % (bench/firelane.py). Samples come at the stream's key-frame interval when
        that is longer than the sample interval (cameras' GOPs are typically 1-4 s).
        """
        capture = self._open(packets=True)
        stats = self.stats
        handle, scratch_name = tempfile.mkstemp(prefix="key-frame-", suffix=".h264", dir=_SCRATCH_DIR)
        os.close(handle)
        scratch = Path(scratch_name)
        try:
            if not capture.isOpened():
                yield CaptureGap(self.clock(), "open_failed")
                return False
            index = int(capture.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX))
            ok, data = capture.retrieve(flag=index)
            extradata = data.tobytes() if ok and data is not None else b""  # SPS/PPS, Annex B
            next_ts = self.clock()
            while not self.stop.is_set():
                if not capture.grab():
                    stats.decode_errors += 1
                    yield CaptureGap(self.clock(), "read_failed")
                    return False
                stats.frames_grabbed += 1
                now = self.clock()
                # Key frames come seconds apart, so no grid here: the first one an interval on.
                if now < next_ts or not capture.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                    continue
                ok, packet = capture.retrieve()
                image = decode_key_frame(extradata + packet.tobytes(), scratch) if ok else None
                if image is None:
                    stats.decode_errors += 1
                    yield CaptureGap(now, "decode_failed")
                    continue
                self.backoff.reset()
                next_ts = now + self.interval_s
                stats.frames_sampled += 1
                stats.last_frame_at = time.monotonic()
                yield Frame(now, image)
            return True
        finally:
            capture.release()
            scratch.unlink(missing_ok=True)

    def _stream(self) -> Generator[CaptureItem, None, bool]:
        """RTSP: grab every frame, convert only the samples.

        `grab()` reads and decodes a frame (H.264 P-frames need every frame before them) but
        leaves it in the decoder's YUV; `retrieve()` converts it to BGR (about a seventh of the
        cost of a 1080p frame, bench/firelane.py), so only the frames sampled pay it. Grabbing
        every frame also keeps the socket drained, so a sample is the newest frame, not one
        buffered seconds ago.
        """
        capture = self._open()
        stats = self.stats
        try:
            if not capture.isOpened():
                yield CaptureGap(self.clock(), "open_failed")
                return False
            schedule = SampleSchedule(self.interval_s)
            while not self.stop.is_set():
                if not capture.grab():
                    # A read that times out (server gone, stream stalled) or a broken stream.
                    stats.decode_errors += 1
                    yield CaptureGap(self.clock(), "read_failed")
                    return False
                stats.frames_grabbed += 1
                now = self.clock()
                if not schedule.due(now):
                    continue
                ok, image = capture.retrieve()
                if not ok or image is None:
                    stats.decode_errors += 1
                    yield CaptureGap(now, "decode_failed")
                    continue
                self.backoff.reset()
                stats.frames_sampled += 1
                stats.last_frame_at = time.monotonic()
                yield Frame(now, np.asarray(image, dtype=np.uint8))
            return True
        finally:
            capture.release()

    def _snapshots(self) -> Generator[CaptureItem, None, bool]:
        while not self.stop.is_set():
            started = self.clock()
            try:
                with urllib.request.urlopen(self.source, timeout=self.timeout_s) as response:
                    body = response.read()
                image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                yield CaptureGap(self.clock(), f"http_failed: {exc}")
                return False
            if image is None:
                yield CaptureGap(self.clock(), "decode_failed")
                return False
            self.backoff.reset()
            self.stats.frames_grabbed += 1
            self.stats.frames_sampled += 1
            self.stats.last_frame_at = time.monotonic()
            yield Frame(started, np.asarray(image, dtype=np.uint8))
            self.stop.wait(max(0.0, started + self.interval_s - self.clock()))
        return True

    def _file(self) -> Generator[CaptureItem, None, bool]:
        capture = self._open()
        try:
            if not capture.isOpened():
                yield CaptureGap(self.clock(), "open_failed")
                return False
            base_ts = self.clock()
            next_t = 0.0
            decoded = 0
            while not self.stop.is_set():
                ok, image = capture.read()
                if not ok or image is None:
                    break
                decoded += 1
                self.stats.frames_grabbed += 1
                t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if t + 1e-6 < next_t:
                    continue
                next_t = t + self.interval_s - 1e-6
                if self.pace_files:
                    self.stop.wait(max(0.0, base_ts + t - self.clock()))
                self.backoff.reset()
                self.stats.frames_sampled += 1
                self.stats.last_frame_at = time.monotonic()
                yield Frame(base_ts + t, np.asarray(image, dtype=np.uint8))
            if decoded == 0:
                yield CaptureGap(self.clock(), "no_decodable_frame")
                return False
            return True
        finally:
            capture.release()
