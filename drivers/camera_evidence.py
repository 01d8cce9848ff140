"""A camera's recent past, kept as JPEG bytes, and the clip made from it (issue 18 evidence).

`FrameRing` holds the last `keep_s` seconds of sampled frames, bounded by frame count and by
bytes as well, so a camera at 4K or a misconfigured sample rate cannot grow a worker's memory.
`write_clip` turns frames back into an MJPEG AVI with OpenCV; `write_frames` keeps them as they
are, one JPEG each, for a browser to step through.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from analytics.evidence import frame_file
from drivers.camera import Frame, Image


class ClipError(Exception):
    """A clip could not be written (no frame decodes, or OpenCV cannot write the file)."""


@dataclass(frozen=True, slots=True)
class JpegFrame:
    ts: float
    jpeg: bytes


class FrameRing:
    """The newest frames of one camera as JPEG; thread-safe (capture adds, requests read).

    Args:
        keep_s: frames older than this (against the newest) are dropped.
        max_frames: at most this many frames, whatever their age.
        max_bytes: at most this many JPEG bytes in all; the oldest go first.
        jpeg_quality: OpenCV's IMWRITE_JPEG_QUALITY, 0-100.
    """

    def __init__(self, keep_s: float, max_frames: int, max_bytes: int, jpeg_quality: int = 80) -> None:
        self.keep_s = keep_s
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        self._frames: deque[JpegFrame] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self.dropped_for_bytes = 0

    def add(self, frame: Frame) -> None:
        ok, coded = cv2.imencode(".jpg", frame.image, self._params)
        if ok:
            self.add_jpeg(JpegFrame(frame.ts, coded.tobytes()))

    def add_jpeg(self, frame: JpegFrame) -> None:
        if len(frame.jpeg) > self.max_bytes:
            return  # one frame over the whole budget: keeping it would mean keeping nothing else
        with self._lock:
            self._frames.append(frame)
            self._bytes += len(frame.jpeg)
            horizon = frame.ts - self.keep_s
            while self._frames and (
                len(self._frames) > self.max_frames
                or self._bytes > self.max_bytes
                or self._frames[0].ts < horizon
            ):
                if self._bytes > self.max_bytes:
                    self.dropped_for_bytes += 1
                self._bytes -= len(self._frames.popleft().jpeg)

    def frames(self, since_ts: float = float("-inf"), until_ts: float = float("inf")) -> list[JpegFrame]:
        """The kept frames with `since_ts <= ts <= until_ts`, oldest first."""
        with self._lock:
            return [frame for frame in self._frames if since_ts <= frame.ts <= until_ts]

    def newest(self) -> JpegFrame | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    @property
    def byte_count(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._frames)


def write_clip(frames: Sequence[JpegFrame], path: Path, fps: float) -> int:
    """Write `frames` as an MJPEG AVI at `fps`; returns the frames written.

    Frames of another size than the first (a camera that changed resolution) are scaled to it:
    a VideoWriter takes one frame size only.
    """
    images: list[Image] = []
    for frame in frames:
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(np.asarray(image, dtype=np.uint8))
    if not images:
        raise ClipError(f"{path}: no frame to write")
    height, width = images[0].shape[:2]
    temporary = path.with_name(f".{path.name}.tmp.avi")
    writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise ClipError(f"{path}: OpenCV cannot write an MJPEG AVI here")
    try:
        for image in images:
            if image.shape[:2] != (height, width):
                image = np.asarray(cv2.resize(image, (width, height)), dtype=np.uint8)
            writer.write(image)
    finally:
        writer.release()
    temporary.replace(path)  # the link serves a whole clip or none
    return len(images)


def write_frames(frames: Sequence[JpegFrame], folder: Path) -> None:
    """Each frame's JPEG as `frame_file(n)`, in the order of `frames` (the manifest's `frame_ts`);
    each written whole (write, then rename), so a reader never gets half a frame."""
    for index, frame in enumerate(frames):
        path = folder / frame_file(index)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(frame.jpeg)
        temporary.replace(path)
