"""Video evidence for an alarm (issue 18): what a camera's worker recorded around a press.

The gateway asks a camera's worker for evidence when an alarm is raised in a zone the camera
covers; the worker writes a snapshot at once, a clip of the seconds before and after (also as
one JPEG per frame), and this manifest beside them, in one folder per request under the shared evidence directory. The
gateway, the worker and the API read and write only this record, never each other's objects.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

SNAPSHOT_FILE = "snapshot.jpg"
CLIP_FILE = "clip.avi"
MANIFEST_FILE = "evidence.json"
EVIDENCE_FILES = {SNAPSHOT_FILE: "image/jpeg", CLIP_FILE: "video/x-msvideo"}
FRAMES = "frames"  # `/api/v1/evidence/{id}/frames`: the frame list; `/frames/{n}.jpg`: one frame
MAX_CLIP_FRAMES = 9999  # above what a clip can hold (two rings of at most 3600 frames)


def frame_file(index: int) -> str:
    """The clip's frame `index` (0 = the first of `frame_ts`) as its own JPEG, for the console's
    player: browsers cannot play MJPEG AVI, and this OpenCV has no H.264 encoder."""
    return f"frame-{index:04d}.jpg"


# Random hex, so an id is both unguessable and safe as a folder name (no dots, no slashes).
EVIDENCE_ID = re.compile(r"^[0-9a-f]{24}$")


def new_evidence_id() -> str:
    return secrets.token_hex(12)


class EvidenceState(StrEnum):
    REQUESTED = "requested"  # asked for; the worker has not answered yet
    RECORDING = "recording"  # snapshot written, the clip waits for the seconds after the press
    READY = "ready"  # snapshot and clip written
    UNAVAILABLE = "unavailable"  # no video: `reason` says why


class UnavailableReason(StrEnum):
    CAMERA_FAULT = "camera_fault"  # the camera reported a fault (no frames, frozen, covered)
    CAMERA_OFFLINE = "camera_offline"  # the camera (its worker) is offline or never seen
    NO_FRAMES = "no_frames"  # the worker has no recent frame in its ring
    NO_ANSWER = "no_answer"  # the worker never answered the request
    WRITE_FAILED = "write_failed"  # the worker could not write the files
    BUSY = "busy"  # the camera already records `max_pending` clips


_UNAVAILABLE_TEXT = {
    "zh-CN": {
        UnavailableReason.CAMERA_FAULT: "视频不可用：摄像机故障",
        UnavailableReason.CAMERA_OFFLINE: "视频不可用：摄像机离线",
        UnavailableReason.NO_FRAMES: "视频不可用：摄像机无画面",
        UnavailableReason.NO_ANSWER: "视频不可用：视频服务未响应",
        UnavailableReason.WRITE_FAILED: "视频不可用：录像保存失败",
        UnavailableReason.BUSY: "视频不可用：该摄像机同时录像过多",
    },
    "en": {
        UnavailableReason.CAMERA_FAULT: "Video unavailable: camera fault",
        UnavailableReason.CAMERA_OFFLINE: "Video unavailable: camera offline",
        UnavailableReason.NO_FRAMES: "Video unavailable: no frames from the camera",
        UnavailableReason.NO_ANSWER: "Video unavailable: the video worker did not answer",
        UnavailableReason.WRITE_FAILED: "Video unavailable: the recording could not be saved",
        UnavailableReason.BUSY: "Video unavailable: the camera is recording too many clips at once",
    },
}


def unavailable_text(reason: UnavailableReason | str, language: str) -> str:
    texts = _UNAVAILABLE_TEXT.get(language, _UNAVAILABLE_TEXT["en"])
    try:
        return texts[UnavailableReason(reason)]
    except ValueError:
        return texts[UnavailableReason.NO_ANSWER]


@dataclass(frozen=True, slots=True)
class EvidenceManifest:
    """`evidence.json` in the request's folder; `frame_ts` are the clip's frames' capture times."""

    id: str
    camera: str
    requested_at: float
    state: EvidenceState
    reason: UnavailableReason | None = None
    before_s: float = 0.0
    after_s: float = 0.0
    snapshot_ts: float | None = None
    frame_ts: tuple[float, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        raw: dict[str, Any] = asdict(self)
        raw["frame_ts"] = [round(ts, 3) for ts in self.frame_ts]
        return json.dumps(raw)

    @classmethod
    def from_json(cls, text: str) -> EvidenceManifest:
        """Raises ValueError (or KeyError, TypeError) for a manifest that is not one."""
        raw = json.loads(text)
        reason = raw.get("reason")
        return cls(
            id=str(raw["id"]),
            camera=str(raw["camera"]),
            requested_at=float(raw["requested_at"]),
            state=EvidenceState(raw["state"]),
            reason=UnavailableReason(reason) if reason else None,
            before_s=float(raw.get("before_s", 0.0)),
            after_s=float(raw.get("after_s", 0.0)),
            snapshot_ts=None if raw.get("snapshot_ts") is None else float(raw["snapshot_ts"]),
            frame_ts=tuple(float(ts) for ts in raw.get("frame_ts", ())),
        )

    def write(self, directory: Path) -> None:
        """Atomically (write, then rename), so a reader never sees half a manifest."""
        folder = directory / self.id
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{MANIFEST_FILE}.tmp"
        temporary.write_text(self.to_json(), encoding="utf-8")
        temporary.replace(folder / MANIFEST_FILE)


def read_manifest(directory: Path, evidence_id: str) -> EvidenceManifest | None:
    """The manifest of one request, or None when there is none (yet) or it is unreadable."""
    if not EVIDENCE_ID.match(evidence_id):
        return None
    try:
        return EvidenceManifest.from_json((directory / evidence_id / MANIFEST_FILE).read_text("utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def request_topic(campus_id: str, camera_id: str) -> str:
    """Where the gateway asks a camera's worker for evidence (QoS 1).

    Under `local/`, not `gateway/`: the district bridge forwards `campus/{id}/gateway/#`, and a
    request to a camera on this box means nothing upstream.
    """
    return f"campus/{campus_id}/local/evidence/{camera_id}"


@dataclass(frozen=True, slots=True)
class EvidenceRequest:
    """The request's payload: which folder to write, and the moment to centre the clip on."""

    id: str
    requested_at: float

    def to_json(self) -> bytes:
        return json.dumps({"id": self.id, "requested_at": self.requested_at}).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> EvidenceRequest:
        """Raises ValueError for anything but a well-formed request."""
        try:
            raw = json.loads(payload)
            evidence_id, requested_at = str(raw["id"]), float(raw["requested_at"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an evidence request: {exc}") from exc
        if not EVIDENCE_ID.match(evidence_id) or requested_at != requested_at:
            raise ValueError(f"not an evidence request: id {evidence_id!r}, requested_at {requested_at!r}")
        return cls(evidence_id, requested_at)
