"""The fire-lane worker's side of alarm evidence (issue 18): a ring per camera, and the clips.

Each camera's capture loop adds its sampled frames to an `EvidenceRecorder`, and the camera's
own MQTT connection hands it the gateway's requests (QoS 1, `request_topic`; one connection
per camera, since the shipped broker allows one per credential): the recorder writes the snapshot of the moment at once, then, `after_s` later, the clip of
`before_s` before the press to `after_s` after it, with a manifest saying how far it got
(analytics.evidence). A camera without recent frames answers "unavailable", never silence.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from analytics.evidence import (
    CLIP_FILE,
    SNAPSHOT_FILE,
    EvidenceManifest,
    EvidenceRequest,
    EvidenceState,
    UnavailableReason,
    read_manifest,
)
from drivers.camera import Frame
from drivers.camera_evidence import ClipError, FrameRing, JpegFrame, write_clip, write_frames

log = logging.getLogger(__name__)


class EvidenceSettings(BaseModel):
    """The worker YAML's `evidence:` section; `dir` is shared with the gateway, which serves it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: Path = Field(description="one folder per request: snapshot, clip and manifest")
    before_s: float = Field(default=30.0, gt=0, le=300, description="seconds of video before the press")
    after_s: float = Field(default=10.0, ge=0, le=120, description="seconds of video after the press")
    max_frames: int = Field(default=120, ge=1, le=3600, description="frames kept per camera, at most")
    max_bytes: int = Field(
        default=16 * 1024 * 1024, ge=64 * 1024, description="JPEG bytes kept per camera, at most"
    )
    jpeg_quality: int = Field(default=80, ge=10, le=100)
    min_fps: float = Field(
        default=1.0,
        gt=0,
        le=25,
        description="frames a second a clip holds at least: under decode: auto, a camera whose key "
        "frames come further apart decodes every frame (set the camera's I-frame interval to 1 s "
        "to keep both this and key frames only)",
    )
    # The newest frame must be this recent for the camera to count as delivering video.
    stale_s: float = Field(default=5.0, gt=0)
    max_pending: int = Field(default=8, ge=1, le=64, description="clips recording at once per camera")
    # Chinese rules for security video ask for 30 to 90 days; evidence of an alarm is kept as
    # long as the longest of them by default, and a byte budget keeps a noisy year off the disk.
    keep_days: float = Field(default=90.0, ge=1, description="days an alarm's evidence is kept")
    max_total_bytes: int = Field(
        default=4 * 1024**3, ge=1024 * 1024, description="bytes all evidence may take; oldest go first"
    )

    def ring_frames_needed(self, sample_fps: float) -> int:
        """Frames the ring must hold so that a clip finds all of its seconds still there."""
        return math.ceil(max(self.before_s, self.after_s) * sample_fps) + 1


class EvidenceRecorder:
    """One camera's ring and the requests it is answering."""

    def __init__(
        self,
        settings: EvidenceSettings,
        camera_id: str,
        sample_fps: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.camera_id = camera_id
        self.sample_fps = sample_fps
        self._clock = clock
        # A second of slack over the longer side, so the clip's first frame is not just gone.
        keep_s = max(settings.before_s, settings.after_s) + 1.0 / sample_fps + 1.0
        self.ring = FrameRing(keep_s, settings.max_frames, settings.max_bytes, settings.jpeg_quality)
        self._pending: dict[str, tuple[threading.Timer, list[JpegFrame]]] = {}
        self._lock = threading.Lock()

    def add(self, frame: Frame) -> None:
        self.ring.add(frame)

    def handle(self, payload: bytes) -> None:
        """A request as it came off MQTT; a malformed one is logged and dropped."""
        try:
            request = EvidenceRequest.from_json(payload)
        except ValueError as exc:
            log.warning("camera %s: ignored an evidence request: %s", self.camera_id, exc)
            return
        try:
            self.request(request)
        except Exception:
            log.exception("camera %s: evidence request %s failed", self.camera_id, request.id)

    def request(self, request: EvidenceRequest) -> None:
        """Answer a request: snapshot and manifest now, the clip once `after_s` has passed."""
        directory = self.settings.dir
        taken = read_manifest(directory, request.id)
        if taken is not None and taken.state is not EvidenceState.REQUESTED:
            return  # a QoS 1 redelivery of a request already answered
        t0 = request.requested_at
        snapshot = self._frame_at(t0)
        if snapshot is None:
            log.warning("camera %s: evidence %s: no recent frame", self.camera_id, request.id)
            self._manifest(request, EvidenceState.UNAVAILABLE, UnavailableReason.NO_FRAMES)
            return
        with self._lock:
            if len(self._pending) >= self.settings.max_pending:
                busy = True
            else:
                busy = False
                # The seconds before are taken now: by the end of the seconds after, the ring
                # (which holds the longer of the two) has let the first of them go.
                before = self.ring.frames(t0 - self.settings.before_s, t0)
                timer = threading.Timer(
                    max(0.0, t0 + self.settings.after_s - self._clock()), self._finish, (request,)
                )
                timer.daemon = True
                self._pending[request.id] = (timer, before)
        if busy:
            log.error("camera %s: evidence %s: too many clips recording", self.camera_id, request.id)
            self._manifest(request, EvidenceState.UNAVAILABLE, UnavailableReason.BUSY)
            return
        try:
            (directory / request.id).mkdir(parents=True, exist_ok=True)
            (directory / request.id / SNAPSHOT_FILE).write_bytes(snapshot.jpeg)
            self._manifest(request, EvidenceState.RECORDING, snapshot_ts=snapshot.ts)
        except OSError as exc:
            log.error("camera %s: evidence %s: %s", self.camera_id, request.id, exc)
            with self._lock:
                self._pending.pop(request.id, None)
            self._manifest(request, EvidenceState.UNAVAILABLE, UnavailableReason.WRITE_FAILED)
            return
        timer.start()

    def _frame_at(self, t0: float) -> JpegFrame | None:
        """The newest frame at or before the press (else the first after), if recent enough."""
        stale_s = self.settings.stale_s
        frames = self.ring.frames(t0 - stale_s, t0 + stale_s)
        before = [frame for frame in frames if frame.ts <= t0]
        chosen = before[-1] if before else (frames[0] if frames else None)
        if chosen is None or self._clock() - max(f.ts for f in frames) > stale_s:
            return None
        return chosen

    def _finish(self, request: EvidenceRequest) -> None:
        with self._lock:
            _, before = self._pending.pop(request.id, (None, []))
        t0, settings = request.requested_at, self.settings
        frames = before + [f for f in self.ring.frames(t0, t0 + settings.after_s) if f.ts > t0]
        snapshot = before[-1].ts if before else None
        try:
            written = write_clip(frames, settings.dir / request.id / CLIP_FILE, self.sample_fps)
            write_frames(frames, settings.dir / request.id)
        except (ClipError, OSError) as exc:
            log.error("camera %s: evidence %s: clip not written: %s", self.camera_id, request.id, exc)
            self._manifest(request, EvidenceState.UNAVAILABLE, UnavailableReason.WRITE_FAILED)
            return
        log.info("camera %s: evidence %s: clip of %d frames", self.camera_id, request.id, written)
        self._manifest(
            request, EvidenceState.READY, snapshot_ts=snapshot, frame_ts=tuple(f.ts for f in frames)
        )
        try:
            prune_evidence(settings)
        except OSError as exc:
            log.error("evidence folder %s not pruned: %s", settings.dir, exc)

    def _manifest(
        self,
        request: EvidenceRequest,
        state: EvidenceState,
        reason: UnavailableReason | None = None,
        snapshot_ts: float | None = None,
        frame_ts: tuple[float, ...] = (),
    ) -> None:
        manifest = EvidenceManifest(
            request.id,
            self.camera_id,
            request.requested_at,
            state,
            reason,
            self.settings.before_s,
            self.settings.after_s,
            snapshot_ts,
            frame_ts,
        )
        try:
            manifest.write(self.settings.dir)
        except OSError as exc:
            log.error("camera %s: evidence %s: manifest not written: %s", self.camera_id, request.id, exc)

    def close(self) -> None:
        """Finish the clips still recording with what the ring holds, so none stays half done."""
        with self._lock:
            pending = [timer for timer, _ in self._pending.values()]
        for timer in pending:
            timer.cancel()
            request: EvidenceRequest = timer.args[0]  # type: ignore[index]
            self._finish(request)


def prune_evidence(settings: EvidenceSettings, now: float | None = None) -> int:
    """Delete evidence past `keep_days`, then the oldest finished until within `max_total_bytes`.

    Only folders with a manifest are ours. A clip still recording is kept unless it has expired
    (a worker killed mid-clip leaves one behind). Returns how many folders went. Several worker
    processes share the folder, so a folder another one deleted first is no error.
    """
    now = time.time() if now is None else now
    expires = now - settings.keep_days * 86400.0
    folders: list[tuple[float, bool, int, Path]] = []
    for folder in settings.dir.iterdir() if settings.dir.is_dir() else ():
        manifest = read_manifest(settings.dir, folder.name)
        if manifest is None:
            continue
        finished = manifest.state in (EvidenceState.READY, EvidenceState.UNAVAILABLE)
        size = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
        folders.append((manifest.requested_at, finished, size, folder))
    folders.sort()
    total = sum(size for _, _, size, _ in folders)
    pruned = 0
    for requested_at, finished, size, folder in folders:
        if requested_at >= expires and (total <= settings.max_total_bytes or not finished):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
        pruned += 1
    if pruned:
        log.info("evidence: %d old folders deleted (%d bytes kept)", pruned, total)
    return pruned
