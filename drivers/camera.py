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
from collections.abc import Callable, Generator, Iterator, Sequence
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
# all: decode every frame; key_frames: decode only key frames (RTSP H.264/H.265); auto: key
# frames when the stream's codec and key-frame interval allow it, otherwise every frame.
DecodeMode = Literal["auto", "all", "key_frames"]
# FFmpeg's codec tags (CAP_PROP_FOURCC) of the codecs whose key frames decode on their own here.
KEY_FRAME_CODECS = {
    "h264": "h264",
    "avc1": "h264",
    "hevc": "hevc",
    "h265": "hevc",
    "hev1": "hevc",
    "hvc1": "hevc",
}
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
    codec: str | None = None  # the stream's codec tag as FFmpeg reports it (h264, hevc...)
    key_frame_interval_s: float | None = None  # between the last two key frames (stream time)
    key_frames_only: bool = False  # whether only key frames are decoded now


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
    early_frac: float = 0.02  # how early (a share of the interval) a frame still counts as due
    _next_ts: float | None = None

    def due(self, ts: float) -> bool:
        if self._next_ts is not None and ts < self._next_ts - self.interval_s * self.early_frac:
            return False
        if self._next_ts is None or ts - self._next_ts >= self.interval_s:
            self._next_ts = ts  # the first frame, or after a stall: the grid starts here
        self._next_ts += self.interval_s
        return True


# NAL unit types of the picture data itself (VCL), per codec: parameter sets, SEI and access
# unit delimiters are the others.
_H264_VCL = range(1, 6)
_HEVC_VCL = range(0, 32)


def nal_units(data: bytes) -> list[bytes]:
    """An Annex B byte stream split into its NAL units, each with its start code."""
    starts = []
    at = data.find(b"\x00\x00\x01")
    while at >= 0:
        starts.append(at - 1 if at > 0 and data[at - 1] == 0 else at)  # a 4-byte start code
        at = data.find(b"\x00\x00\x01", at + 3)
    return [data[start:end] for start, end in zip(starts, [*starts[1:], len(data)], strict=True)]


def _short_start(unit: bytes) -> bytes:
    """A NAL unit with a 3-byte start code (a 4-byte one loses its first zero)."""
    return unit[1:] if unit.startswith(b"\x00\x00\x00\x01") else unit


def is_picture_data(unit: bytes, codec: str) -> bool:
    """Whether a NAL unit (start code first) is a slice of a picture (H.264 or H.265)."""
    unit = _short_start(unit)
    if len(unit) < 4:
        return False
    header = unit[3]
    if codec == "hevc":
        return (header >> 1) & 0x3F in _HEVC_VCL
    return header & 0x1F in _H264_VCL


def starts_picture(data: bytes, codec: str = "h264") -> bool:
    """Whether a packet's first slice is the first of a picture (H.264: first_mb_in_slice 0;
    H.265: first_slice_segment_in_pic_flag), read from the bit after the NAL header."""
    header = 5 if codec == "hevc" else 4  # 3-byte start code and NAL header
    for unit in nal_units(data):
        if is_picture_data(unit, codec):
            unit = _short_start(unit)
            return len(unit) > header and bool(unit[header] & 0x80)
    return False


def access_unit(packets: Sequence[bytes], codec: str = "h264") -> bytes:
    """The packets of one picture as one access unit, which a raw-stream reader takes whole.

    RTP payloaders (GStreamer's with `config-interval`, many cameras) repeat the SPS/PPS before
    every slice of a key frame, and FFmpeg's parser starts a new picture at each: a one-frame
    file of those packets as they came decodes as its first slice alone, the rest of the frame
    smeared from it. So what precedes the first slice is kept, and after it only slices.
    """
    kept = []
    sliced = False
    for unit in nal_units(b"".join(packets)):
        picture = is_picture_data(unit, codec)
        if picture or not sliced:
            kept.append(unit)
        sliced = sliced or picture
    return b"".join(kept)


def codec_tag(capture: cv2.VideoCapture) -> str | None:
    """The open stream's codec as FFmpeg tags it (`h264`, `hevc`, `mjpg`...), lower case."""
    tag = (int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF).to_bytes(4, "little")
    return tag.decode("ascii", "replace").strip("\x00 ").lower() or None


def decode_key_frame(data: bytes, scratch: Path) -> Image | None:
    """One key frame (an access unit with its parameter sets, Annex B) decoded on its own,
    through a one-frame file: OpenCV has no in-memory video decoder, and `scratch` is on tmpfs
    where there is one."""
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
        decode: DecodeMode = "all",
        max_key_frame_interval_s: float = 4.0,
        key_frame_bound_name: str = "key_frame_max_interval_s",
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
        if decode == "key_frames" and self.kind != "rtsp":
            raise CameraSourceError(f"{source}: key frames only is for RTSP H.264 and H.265 streams")
        self.decode = decode
        self.max_key_frame_interval_s = max_key_frame_interval_s
        self.key_frame_bound_name = key_frame_bound_name  # the setting the bound comes from, for logs

    def items(self) -> Iterator[CaptureItem]:
        readers = {"rtsp": self._stream, "stream": self._stream, "snapshot": self._snapshots}
        reader = readers.get(self.kind, self._file)
        if self.kind == "rtsp" and self.decode != "all":
            reader = self._rtsp
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

    def _rtsp(self) -> Generator[CaptureItem, None, bool]:
        """Key frames only while the stream allows it, else every frame (a new connection)."""
        finished = yield from self._key_frames()
        if finished is not None:
            return finished
        return (yield from self._stream())

    def _fall_back(self, why: str) -> None:
        """Say why key frames cannot serve this stream: every frame is decoded from here on."""
        log.warning(
            "camera %s: %s: decoding every frame instead of key frames only (decode: %s); "
            "this costs several times the CPU",
            self.source,
            why,
            self.decode,
        )
        self.stats.key_frames_only = False

    def _key_frames(self) -> Generator[CaptureItem, None, bool | None]:
        """RTSP H.264 read as packets, decoding only a key frame, at most one per sample interval.

        P-frames are never decoded, so a 1080p camera costs a few per cent of a core instead of
        about 13 % (bench/firelane.py). Samples come at the stream's key-frame interval when
        that is longer than the sample interval (cameras' GOPs are typically 1-4 s). A key frame
        may come in several packets (one per slice): all those of its timestamp are gathered,
        so it is decoded when the next picture's first packet arrives.

        Returns True when stopped, False when the stream failed, and None when key frames cannot
        serve it (a codec other than H.264 and H.265; with `decode: auto`, key frames further
        apart than `max_key_frame_interval_s`, measured between each two): the caller then
        decodes every frame. A new connection measures again.
        """
        capture = self._open(packets=True)
        stats = self.stats
        scratch: Path | None = None
        try:
            if not capture.isOpened():
                yield CaptureGap(self.clock(), "open_failed")
                return False
            stats.codec = codec_tag(capture)
            codec = KEY_FRAME_CODECS.get(stats.codec or "")
            if codec is None:
                self._fall_back(f"its codec is {stats.codec or 'unknown'}, not H.264 or H.265")
                return None
            handle, name = tempfile.mkstemp(prefix="key-frame-", suffix=f".{codec}", dir=_SCRATCH_DIR)
            os.close(handle)
            scratch = Path(name)
            stats.key_frames_only = True
            bound_s = self.max_key_frame_interval_s if self.decode == "auto" else None
            last_key: tuple[float, float] | None = None  # pts, stream time (s) of the last key frame
            last_key_at = time.monotonic()  # when it came (or the stream was opened)
            index = int(capture.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX))
            ok, data = capture.retrieve(flag=index)
            extradata = data.tobytes() if ok and data is not None else b""  # SPS/PPS, Annex B
            # Key frames a GOP apart: sampled on a grid that takes one a quarter interval early,
            # so a 1 s GOP's key frames arriving a little early are not skipped for the next.
            schedule = SampleSchedule(self.interval_s, early_frac=0.25)
            picture: list[bytes] = []  # the packets of the key frame being gathered
            picture_pts = picture_ts = 0.0
            while not self.stop.is_set():
                if not capture.grab():
                    stats.decode_errors += 1
                    yield CaptureGap(self.clock(), "read_failed")
                    return False
                stats.frames_grabbed += 1
                pts = capture.get(cv2.CAP_PROP_PTS)
                if picture and pts == picture_pts:
                    ok, packet = capture.retrieve()
                    more = packet.tobytes() if ok and packet is not None else b""
                    if not starts_picture(more, codec):  # not a stream without timestamps
                        picture.append(more)  # another slice of the key frame
                        continue
                # A new key frame, not a later packet (slice) of one already seen.
                key = bool(capture.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME))
                key = key and (last_key is None or pts != last_key[0])
                if key:
                    position_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    if last_key is not None and position_s > last_key[1]:
                        stats.key_frame_interval_s = round(position_s - last_key[1], 2)
                    last_key, last_key_at = (pts, position_s), time.monotonic()
                    interval_s = stats.key_frame_interval_s
                    if bound_s is not None and interval_s is not None and interval_s > bound_s * 1.01:
                        self._fall_back(
                            f"key frames {interval_s:.1f} s apart, more than "
                            f"{self.key_frame_bound_name} ({bound_s:g} s)"
                        )
                        return None
                elif bound_s is not None and time.monotonic() - last_key_at > 2 * bound_s:
                    waited_s = time.monotonic() - last_key_at
                    self._fall_back(
                        f"no key frame in {waited_s:.0f} s ({self.key_frame_bound_name} {bound_s:g} s)"
                    )
                    return None
                if picture:
                    image = decode_key_frame(access_unit([extradata, *picture], codec), scratch)
                    picture = []
                    if image is None:
                        stats.decode_errors += 1
                        yield CaptureGap(picture_ts, "decode_failed")
                    else:
                        self.backoff.reset()
                        stats.frames_sampled += 1
                        stats.last_frame_at = time.monotonic()
                        yield Frame(picture_ts, image)
                now = self.clock()
                if not key or not schedule.due(now):
                    continue
                ok, packet = capture.retrieve()
                if not ok or packet is None:
                    stats.decode_errors += 1
                    yield CaptureGap(now, "decode_failed")
                    continue
                picture, picture_pts, picture_ts = [packet.tobytes()], pts, now
            return True
        finally:
            capture.release()
            if scratch is not None:
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
            stats.codec = codec_tag(capture)
            stats.key_frames_only = False
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
