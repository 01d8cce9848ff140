"""The fire-lane video worker and the `campus-gateway firelane ...` commands (SPEC section 11).

`firelane worker` runs in its own process (so vision never stalls ingest): one thread per
camera samples frames through `drivers.camera`, feeds `analytics.firelane.CameraPipeline`, and
publishes lane_blocked / lane_cleared / camera_fault / camera_ok as protocol-v1 `camera`
devices over MQTT, with a JPEG snapshot of the moment of blocking. `eval`, `report` and
`calibrate` are the offline tools around it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import cv2
import numpy as np
import yaml
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from analytics.catalog import CAMERA_CODECS
from analytics.evidence import request_topic
from analytics.firelane import (
    CameraPipeline,
    FaultReason,
    FirelaneError,
    FirelaneEvent,
    FirelaneEventName,
    FrameSizeError,
    HealthPolicy,
    LaneConfig,
    LaneGeometryError,
    ObstructionParams,
)
from analytics.firelane.evaluation import SceneScore, TimedEvent, TruthEvent, score_scene, score_suite
from analytics.firelane.geometry import LaneAxis, validate_polygon
from analytics.firelane.pipeline import as_references
from analytics.firelane.regime import frame_regime
from analytics.records import DeviceKind
from drivers.camera import (
    KEY_FRAME_CODECS,
    Backoff,
    CameraCapture,
    CameraSourceError,
    CaptureGap,
    CaptureStats,
    Frame,
    Image,
    read_video_file,
    source_kind,
)
from gateway.camera_urls import check_source
from gateway.firelane_evidence import EvidenceRecorder, EvidenceSettings
from simulators.firelane_scene import write_scene
from simulators.firelane_suite import Split, suite

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class ConfigError(Exception):
    """An invalid worker config or lane file; the message names the file and the key."""


def default_processes() -> int:
    """One worker process per core but one, left for the gateway and the broker."""
    return max(1, (os.cpu_count() or 1) - 1)


class LaneModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    polygon: list[tuple[float, float]] = Field(min_length=3)
    dwell_s: float = Field(default=180.0, ge=0)
    clear_s: float = Field(default=30.0, ge=0)
    blocked_width_frac: float = Field(default=ObstructionParams().blocked_width_frac, gt=0, le=1)
    min_length_frac: float = Field(default=ObstructionParams().min_length_frac, ge=0, le=5)
    lane_axis: LaneAxis = LaneAxis.AUTO

    def config(self) -> LaneConfig:
        obstruction = ObstructionParams(
            self.blocked_width_frac, self.min_length_frac, lane_axis=self.lane_axis
        )
        return LaneConfig(self.id, tuple(self.polygon), self.dwell_s, self.clear_s, obstruction)


class CameraModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    source: str = Field(
        min_length=1,
        description="the camera's main stream: rtsp(s)://, rtmp(s)://, an HTTP stream (.live.flv, "
        ".m3u8) or http(s):// snapshot URL, or a file",
    )
    analysis_source: str | None = Field(
        default=None,
        min_length=1,
        description="a sub-stream of the same camera (e.g. 720p or D1) analysed instead of `source`: "
        "decoding it costs a fraction of the main stream; its frame size must match the references",
    )
    decode: Literal["auto", "all", "key_frames"] = Field(
        default="auto",
        description="auto: for an RTSP H.264 or H.265 stream, decode only key frames (a fraction of "
        "the CPU) while they come at most key_frame_max_interval_s apart, measured on each "
        "connection, else decode every frame and say so in the log and in the camera's health; "
        "other sources as all. all: decode every frame, convert the samples. key_frames (RTSP "
        "only): key frames only, however far apart. With key frames, samples come at most "
        "sample_fps, and at the camera's key-frame interval (its GOP) when that is longer",
    )
    key_frame_max_interval_s: float = Field(
        default=4.0,
        gt=0,
        description="decode: auto uses key frames only while they come at most this far apart "
        "(each is a sample; cameras' GOPs are typically 1-4 s)",
    )
    reference: Path | None = None
    references: list[Path] = Field(default_factory=list, description="one per regime: day, infrared")
    lanes: list[LaneModel] = Field(min_length=1)
    sample_fps: float | None = Field(default=None, gt=0)

    @field_validator("source", "analysis_source")
    @classmethod
    def _known_url_form(cls, value: str | None) -> str | None:
        return None if value is None else check_source(value)

    @model_validator(mode="after")
    def _key_frames_need_rtsp(self) -> CameraModel:
        if self.decode == "key_frames" and source_kind(self.analysed_source) != "rtsp":
            raise ValueError("decode: key_frames needs an rtsp:// or rtsps:// source (H.264 or H.265)")
        return self

    @property
    def analysed_source(self) -> str:
        """What the worker decodes: the sub-stream when there is one."""
        return self.analysis_source or self.source


class BrokerModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None


class FirelaneWorkerConfig(BaseModel):
    """The `firelane worker --config FILE` YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campus_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    broker: BrokerModel = BrokerModel()
    snapshot_dir: Path
    sample_fps: float = Field(default=1.0, gt=0)
    no_frames_s: float = Field(default=30.0, gt=0)
    fault_hold_s: float = Field(default=30.0, ge=0)
    pace_files: bool = False
    processes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="worker processes the cameras are spread over; unset: one per core but one",
    )
    health_interval_s: float = Field(
        default=10.0, gt=0, description="how often each camera's health is published as telemetry"
    )
    cameras: list[CameraModel] = Field(min_length=1)
    # Alarm evidence (issue 18): a ring of recent frames per camera, clips on request.
    evidence: EvidenceSettings | None = None

    @property
    def worker_processes(self) -> int:
        return self.processes or default_processes()


def _describe(exc: ValidationError, source: Path) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{source}: {key}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _drop_replaced_keys(lane: Any, where: str) -> None:
    """Accept a lane key that an earlier version had, with a warning saying what replaced it,
    so an upgrade does not stop a configured camera (or the gateway checking its config).

    `occupied_threshold` (issue 6) was a share of the polygon's area; blocked is now decided
    by obstruction (issue 12), and an area share has no equivalent width share, so its value is
    not carried over: `blocked_width_frac` (or its default) applies.
    """
    if not isinstance(lane, dict) or "occupied_threshold" not in lane:
        return
    value = lane.pop("occupied_threshold")
    log.warning(
        "%s.occupied_threshold (%r) is no longer used and is ignored: a lane is blocked by "
        "obstruction, not by a share of its area; blocked_width_frac (the share of the lane's "
        "width taken at one cross-section, default %s) replaced it",
        where,
        value,
        ObstructionParams().blocked_width_frac,
    )


def load_worker_config(path: Path) -> FirelaneWorkerConfig:
    """Read and validate the worker YAML; relative paths resolve against the file's folder."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping")
    cameras_raw = raw.get("cameras")
    for c_index, camera_raw in enumerate(cameras_raw if isinstance(cameras_raw, list) else []):
        lanes_raw = camera_raw.get("lanes") if isinstance(camera_raw, dict) else None
        for l_index, lane_raw in enumerate(lanes_raw if isinstance(lanes_raw, list) else []):
            _drop_replaced_keys(lane_raw, f"{path}: cameras.{c_index}.lanes.{l_index}")
    try:
        config = FirelaneWorkerConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc
    base = path.parent
    cameras = []
    for index, camera in enumerate(config.cameras):
        references = []
        for key, given in [("reference", camera.reference)] + [
            (f"references.{n}", ref) for n, ref in enumerate(camera.references)
        ]:
            if given is None:
                continue
            resolved = given if given.is_absolute() else base / given
            if not resolved.is_file():
                raise ConfigError(f"{path}: cameras.{index}.{key}: no such file {resolved}")
            references.append(resolved)
        sources = {
            key: given if "://" in given or Path(given).is_absolute() else str(base / given)
            for key, given in (("source", camera.source), ("analysis_source", camera.analysis_source))
            if given is not None
        }
        cameras.append(camera.model_copy(update={"reference": None, "references": references, **sources}))
    ids = [camera.id for camera in cameras]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: cameras: camera ids must be unique, got {ids}")
    snapshot_dir = config.snapshot_dir
    if not snapshot_dir.is_absolute():
        snapshot_dir = base / snapshot_dir
    evidence = config.evidence
    if evidence is not None:
        if not evidence.dir.is_absolute():
            evidence = evidence.model_copy(update={"dir": base / evidence.dir})
        for index, camera in enumerate(cameras):
            needed = evidence.ring_frames_needed(camera.sample_fps or config.sample_fps)
            if evidence.max_frames < needed:
                raise ConfigError(
                    f"{path}: evidence.max_frames: {evidence.max_frames} frames cannot hold "
                    f"{max(evidence.before_s, evidence.after_s):g} s of cameras.{index} ({camera.id!r}) "
                    f"at its sample rate; needs at least {needed}"
                )
    return config.model_copy(update={"cameras": cameras, "snapshot_dir": snapshot_dir, "evidence": evidence})


def load_lane_file(path: Path) -> LaneConfig:
    """LANE.json of SPEC 11: `{"polygon": [[x, y], ...], "dwell_s": 180}`; other keys ignored
    except `clear_s` (default 30), `blocked_width_frac`, `min_length_frac` and `lane_axis`,
    which are honoured when present."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    _drop_replaced_keys(raw, str(path))
    known = ("polygon", "dwell_s", "clear_s", "blocked_width_frac", "min_length_frac", "lane_axis")
    fields = {key: raw[key] for key in known if key in raw}
    try:
        lane = LaneModel.model_validate({"id": "lane", **fields})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from exc
    return lane.config()


def read_reference(path: Path) -> Image:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"{path}: cannot read the reference image")
    return np.asarray(image, dtype=np.uint8)


def median_reference(video: Path, samples: int = 15) -> Image:
    """A clear-lane estimate for `eval` without --reference: the per-pixel median of frames
    spread over the whole video (valid while the lane is clear most of the time)."""
    kept: list[Image] = []
    stride = 1
    for index, (_, image) in enumerate(read_video_file(video, sample_fps=1.0)):
        if index % stride or (kept and image.shape != kept[0].shape):
            continue
        kept.append(image)
        if len(kept) >= 2 * samples:  # bounded memory on long videos: halve and go sparser
            kept = kept[::2]
            stride *= 2
    return np.asarray(np.median(np.stack(kept), axis=0), dtype=np.uint8)


def evaluate_video(
    video: Path,
    lane: LaneConfig,
    references: Sequence[Image],
    sample_fps: float = 1.0,
    on_line: Callable[[str], None] | None = None,
) -> list[TimedEvent]:
    """Run one lane's pipeline over a video file; times are the video's own frame times.

    Each blocked / cleared event is also passed to `on_line` as the SPEC 11 JSON line. Without
    any reference, the clear lane is estimated from the whole video (`median_reference`), and
    checked like a worker's first frames (a car there most of the time is in the estimate).
    """
    confirmed = bool(references)
    if not confirmed:
        references = [median_reference(video)]
    pipeline = CameraPipeline([lane], 0.0, as_references(references), confirmed=confirmed)
    events: list[TimedEvent] = []
    for index, (t, image) in enumerate(read_video_file(video, sample_fps)):
        for reference in references if index == 0 else ():
            if image.shape != reference.shape:
                height, width = image.shape[:2]
                raise FrameSizeError(
                    f"{video}: frames are {width}x{height} but the reference is "
                    f"{reference.shape[1]}x{reference.shape[0]}"
                )
        for event in pipeline.frame(t, image):
            if event.name is FirelaneEventName.LANE_BLOCKED:
                events.append(TimedEvent("blocked", t))
            elif event.name is FirelaneEventName.LANE_CLEARED:
                events.append(TimedEvent("cleared", t))
            else:
                log.warning("t=%.1f s: %s %s", t, event.name, event.reason or "")
                continue
            if on_line is not None:
                line = {
                    "t": round(t, 3),
                    "event": events[-1].event,
                    "occupancy": round(event.occupancy or 0.0, 2),
                    "area": round(event.area or 0.0, 3),
                }
                on_line(json.dumps(line))
    return events


def cmd_eval(args: argparse.Namespace) -> int:
    cv2.setNumThreads(1)  # 1-fps analysis gains nothing from OpenCV's thread pool, only overhead
    try:
        lane = load_lane_file(args.lane)
        references = [read_reference(path) for path in args.reference or ()]
        evaluate_video(args.video, lane, references, args.sample_fps, lambda line: print(line, flush=True))
    except (ConfigError, CameraSourceError, FirelaneError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def scene_references(scenes_dir: Path, name: str) -> list[Image]:
    """A scene folder's calibrated references: NAME.reference.png (day), NAME.reference_ir.png."""
    paths = [scenes_dir / f"{name}.reference.png", scenes_dir / f"{name}.reference_ir.png"]
    return [read_reference(path) for path in paths if path.is_file()]


def score_folder(
    scenes_dir: Path, tolerance_s: float, sample_fps: float
) -> list[tuple[str, str, SceneScore]]:
    """(scene, condition, score) for every NAME.truth.json of a folder; raises ConfigError."""
    results = []
    for truth_file in sorted(scenes_dir.glob("*.truth.json")):
        name = truth_file.name.removesuffix(".truth.json")
        try:
            truth = json.loads(truth_file.read_text(encoding="utf-8"))
            lane = load_lane_file(scenes_dir / f"{name}.lane.json")
            expected = [TruthEvent(e["event"], e["t"], e["on_lane_s"]) for e in truth["expected"]]
            references = scene_references(scenes_dir, name)
            predicted = evaluate_video(scenes_dir / f"{name}.avi", lane, references, sample_fps)
        except (ConfigError, CameraSourceError, FirelaneError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{truth_file}: {exc}") from exc
        condition = str(truth.get("condition") or name)
        results.append((name, condition, score_scene(predicted, expected, tolerance_s)))
    return results


def _summary(scores: Sequence[SceneScore]) -> dict[str, Any]:
    suite_score = score_suite(scores)
    times = [t for score in scores for t in score.times_to_detect_s]
    return {
        "scenes": suite_score.scenes,
        "precision": round(suite_score.precision, 3),
        "recall": round(suite_score.recall, 3),
        "mean_time_to_detect_s": round(suite_score.mean_time_to_detect_s, 1)
        if suite_score.mean_time_to_detect_s is not None
        else None,
        "max_time_to_detect_s": round(max(times), 1) if times else None,
        "mean_abs_timing_error_s": round(suite_score.mean_abs_error_s, 2)
        if suite_score.mean_abs_error_s is not None
        else None,
    }


def _render(job: tuple[Path, Any]) -> None:
    directory, scene = job
    write_scene(scene.spec, directory, scene.references)


def report_lines(folder: Path, tolerance_s: float, sample_fps: float, label: str) -> list[str]:
    """The report of one folder: a line per scene, per condition, and the folder's summary."""
    results = score_folder(folder, tolerance_s, sample_fps)
    lines = []
    for name, condition, score in results:
        lines.append(
            json.dumps(
                {
                    "scene": name,
                    "condition": condition,
                    "expected": score.expected,
                    "detected": score.predicted,
                    "matched": score.matched,
                    "time_to_detect_s": [round(t, 1) for t in score.times_to_detect_s],
                    "timing_error_s": [round(e, 1) for e in score.errors_s],
                }
            )
        )
    conditions = sorted({condition for _, condition, _ in results})
    for condition in conditions:
        scores = [score for _, c, score in results if c == condition]
        lines.append(json.dumps({"split": label, "condition": condition, **_summary(scores)}))
    lines.append(json.dumps({"split": label, "condition": "all", **_summary([s for _, _, s in results])}))
    return lines


def cmd_report(args: argparse.Namespace) -> int:
    cv2.setNumThreads(1)
    scenes_dir: Path = args.scenes
    folders: list[tuple[str, Path]] = [("scenes", scenes_dir)]
    if args.simulate:
        splits = [Split(args.split)] if args.split else list(Split)
        folders = [(str(split), scenes_dir / str(split)) for split in splits]
        jobs = [(scenes_dir / str(split), scene) for split in splits for scene in suite(split)]
        if args.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(args.jobs) as pool:
                list(pool.map(_render, jobs))
        else:
            for job in jobs:
                _render(job)
    for _label, folder in folders:
        if not (folder.is_dir() and any(folder.glob("*.truth.json"))):
            print(f"error: {folder}: no scene (NAME.avi + NAME.truth.json) found", file=sys.stderr)
            return EXIT_BAD_INPUT
    for label, folder in folders:
        try:
            lines = report_lines(folder, args.tolerance_s, args.sample_fps, label)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        for line in lines:
            print(line, flush=True)
    return EXIT_OK


class CameraPublisher:
    """One MQTT connection per camera, so each camera has its own last will like any device."""

    def __init__(
        self, config: FirelaneWorkerConfig, camera_id: str, evidence: EvidenceRecorder | None = None
    ) -> None:
        self.topic_base = f"campus/{config.campus_id}/{DeviceKind.CAMERA}/{camera_id}"
        self._evidence_topic = request_topic(config.campus_id, camera_id) if evidence else None
        self._seq = int(time.time() * 1000)
        self._lock = threading.Lock()
        self.client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"firelane-{config.campus_id}-{camera_id}",
        )
        if config.broker.username:
            self.client.username_pw_set(config.broker.username, config.broker.password)
        self.client.will_set(self._status_topic, self._status("offline"), qos=1, retain=True)
        self.client.reconnect_delay_set(1, 60)
        self.client.connect_async(config.broker.host, config.broker.port, keepalive=30)
        self.client.on_connect = self._on_connect
        if evidence is not None:
            self.client.on_message = lambda client, userdata, message: evidence.handle(bytes(message.payload))
        self.client.loop_start()

    @property
    def _status_topic(self) -> str:
        return f"{self.topic_base}/status"

    @staticmethod
    def _status(state: str) -> str:
        return json.dumps({"ts": time.time(), "state": state})

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.publish(self._status_topic, self._status("online"), qos=1, retain=True)
            if self._evidence_topic is not None:
                client.subscribe(self._evidence_topic, qos=1)

    def event(self, name: str, ts: float, attrs: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            payload = {"ts": round(ts, 3), "seq": self._seq, "event": name, "attrs": attrs}
        self.client.publish(f"{self.topic_base}/event", json.dumps(payload), qos=1)

    def telemetry(self, ts: float, values: dict[str, float]) -> None:
        """Protocol-v1 telemetry; QoS 0, as the next report replaces a lost one."""
        with self._lock:
            self._seq += 1
            payload = {"ts": round(ts, 3), "seq": self._seq, "values": values}
        self.client.publish(f"{self.topic_base}/telemetry", json.dumps(payload), qos=0)

    def close(self) -> None:
        info = self.client.publish(self._status_topic, self._status("offline"), qos=1, retain=True)
        if self.client.is_connected():
            info.wait_for_publish(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()


def snapshot_name(camera_id: str, lane_id: str, ts: float) -> str:
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{camera_id}_{lane_id}_{stamp}_{int(ts * 1000) % 1000:03d}.jpg"


def key_frame_bound(camera: CameraModel, evidence: EvidenceSettings | None) -> tuple[float, str]:
    """How far apart key frames may come for decode: auto to decode only them, and the setting
    that says so: the lane needs a sample every key_frame_max_interval_s, and a worker that keeps
    evidence needs evidence.min_fps frames a second in each clip (issue 18: 30 s at 1-2 fps)."""
    if evidence is not None and 1.0 / evidence.min_fps < camera.key_frame_max_interval_s:
        return 1.0 / evidence.min_fps, "1 / evidence.min_fps"
    return camera.key_frame_max_interval_s, "key_frame_max_interval_s"


class CameraWorker:
    """Runs one camera: capture -> pipeline -> MQTT, restarting itself on unexpected errors."""

    def __init__(self, config: FirelaneWorkerConfig, camera: CameraModel, stop: threading.Event) -> None:
        self.config = config
        self.camera = camera
        self.stop = stop
        self.evidence: EvidenceRecorder | None = None
        if config.evidence is not None:
            self.evidence = EvidenceRecorder(
                config.evidence, camera.id, camera.sample_fps or config.sample_fps
            )
        self.publisher = CameraPublisher(config, camera.id, self.evidence)
        self.thread = threading.Thread(target=self._run, name=f"firelane-{camera.id}", daemon=True)
        # One set of counters for the camera's life, across restarts of its loop.
        self.stats = CaptureStats()
        self._health_mark = (time.monotonic(), 0, 0)  # (when, frames grabbed, frames sampled)
        # The pipeline is fed by the camera's thread and ticked by the watchdog: one at a time.
        self._lock = threading.Lock()
        self._running: CameraPipeline | None = None

    def _pipeline(self) -> CameraPipeline:
        lanes = [lane.config() for lane in self.camera.lanes]
        policy = HealthPolicy(no_frames_s=self.config.no_frames_s, hold_s=self.config.fault_hold_s)
        references = as_references([read_reference(path) for path in self.camera.references])
        if not references:
            log.warning(
                "camera %s: no reference image; learning one from the first frames, "
                "so a vehicle standing there now will not be detected",
                self.camera.id,
            )
        for regime in references:
            log.info("camera %s: %s reference calibrated", self.camera.id, regime)
        return CameraPipeline(lanes, time.time(), references, health_policy=policy)

    def _run(self) -> None:
        restart = Backoff(initial_s=1.0, max_s=60.0)
        while not self.stop.is_set():
            try:
                self._loop()
                return
            except (ConfigError, FirelaneError) as exc:
                log.error("camera %s: %s", self.camera.id, exc)
                bad_lane = isinstance(exc, LaneGeometryError)
                reason = FaultReason.BAD_LANE if bad_lane else FaultReason.BAD_REFERENCE
                self.publisher.event(
                    FirelaneEventName.CAMERA_FAULT, time.time(), {"reason": str(reason), "detail": str(exc)}
                )
                return
            except Exception:
                log.exception("camera %s: unexpected error; restarting", self.camera.id)
                self.stop.wait(restart.next_delay_s())

    def _loop(self) -> None:
        pipeline = self._pipeline()
        bound_s, bound_name = key_frame_bound(self.camera, self.config.evidence)
        capture = CameraCapture(
            self.camera.analysed_source,
            self.camera.sample_fps or self.config.sample_fps,
            self.stop,
            pace_files=self.config.pace_files,
            stats=self.stats,
            decode=self.camera.decode,
            max_key_frame_interval_s=bound_s,
            key_frame_bound_name=bound_name,
        )
        with self._lock:
            self._running = pipeline
        try:
            for item in capture.items():
                if self.evidence is not None and isinstance(item, Frame):
                    self.evidence.add(item)  # JPEG-encodes: outside the lock the watchdog takes
                with self._lock:
                    if isinstance(item, Frame):
                        events = pipeline.frame(item.ts, item.image)
                    else:
                        log.debug("camera %s: no frame (%s)", self.camera.id, item.reason)
                        events = pipeline.tick(item.ts)
                    for event in events:
                        self._publish(event)
            log.info("camera %s: source ended", self.camera.id)
            # A finished file is a camera without frames: the watchdog ticks it from here on.
            self.stop.wait()
        finally:
            with self._lock:
                self._running = None

    def watchdog(self) -> None:
        """Let the pipeline see time pass while the capture blocks (a stream stalled mid-GOP
        until the read timeout, a slow reopen), so no_frames is raised on time; called about
        once a second from the worker's main thread."""
        with self._lock:
            if self._running is not None:
                for event in self._running.tick(time.time()):
                    self._publish(event)

    def health(self) -> dict[str, float]:
        """The camera's health since the last call, as telemetry values (SPEC 3)."""
        now = time.monotonic()
        stats = self.stats
        since, grabbed, sampled = self._health_mark
        self._health_mark = (now, stats.frames_grabbed, stats.frames_sampled)
        elapsed_s = max(now - since, 1e-6)
        values = {
            "stream_fps": round((stats.frames_grabbed - grabbed) / elapsed_s, 2),
            "sampled_fps": round((stats.frames_sampled - sampled) / elapsed_s, 2),
            "decode_errors": float(stats.decode_errors),
            "reconnects": float(stats.reconnects),
        }
        if stats.last_frame_at is not None:
            values["last_frame_age_s"] = round(now - stats.last_frame_at, 1)
        if stats.codec is not None:  # known once the stream has been opened
            values["codec"] = float(CAMERA_CODECS.get(KEY_FRAME_CODECS.get(stats.codec, ""), 0))
            values["key_frames_only"] = 1.0 if stats.key_frames_only else 0.0
        if stats.key_frame_interval_s is not None:
            values["key_frame_interval_s"] = stats.key_frame_interval_s
        return values

    def _publish(self, event: FirelaneEvent) -> None:
        attrs: dict[str, Any] = {}
        if event.lane_id is not None:
            attrs["lane"] = event.lane_id
        if event.occupancy is not None:
            attrs["occupancy"] = event.occupancy
        if event.area is not None:
            attrs["area"] = event.area
        if event.reason is not None:
            attrs["reason"] = str(event.reason)
        if event.detail is not None:
            attrs["detail"] = event.detail
        if event.name is FirelaneEventName.LANE_BLOCKED and event.frame is not None:
            name = snapshot_name(self.camera.id, event.lane_id or "lane", event.ts)
            directory = self.config.snapshot_dir
            try:
                directory.mkdir(parents=True, exist_ok=True)
                if cv2.imwrite(str(directory / name), event.frame):
                    attrs["snapshot"] = name
                else:
                    log.error("camera %s: could not write snapshot %s", self.camera.id, name)
            except OSError as exc:
                log.error("camera %s: could not write snapshot: %s", self.camera.id, exc)
        log.info("camera %s: %s %s", self.camera.id, event.name, attrs)
        self.publisher.event(event.name, event.ts, attrs)


def run_worker(config: FirelaneWorkerConfig, stop: threading.Event, parent_pid: int | None = None) -> None:
    """Run every configured camera until `stop` is set; marks them offline on the way out.

    Each camera's health goes out as telemetry every `health_interval_s`. With `parent_pid`,
    the worker also stops when that process is gone (a pool parent killed with SIGKILL), so
    no camera is read twice once a new parent has started.
    """
    workers = [CameraWorker(config, camera, stop) for camera in config.cameras]
    for worker in workers:
        worker.thread.start()
    next_health = time.monotonic() + config.health_interval_s
    while not stop.wait(1.0):
        if parent_pid is not None and os.getppid() != parent_pid:
            log.error("the worker's parent (pid %d) is gone; stopping", parent_pid)
            stop.set()
        for worker in workers:
            worker.watchdog()
        if time.monotonic() >= next_health:
            next_health += config.health_interval_s
            for worker in workers:
                worker.publisher.telemetry(time.time(), worker.health())
    for worker in workers:
        worker.thread.join(timeout=15)
        worker.publisher.close()
        if worker.evidence is not None:
            worker.evidence.close()  # clips still recording end with the frames they have


def cmd_worker(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_worker_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    cv2.setNumThreads(1)  # one thread per camera already; OpenCV's pool would only contend
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if args.shard is None:
        from gateway.firelane_pool import run_pool

        return run_pool(args.config, config, stop)
    index, count = args.shard
    cameras = shard_cameras(config.cameras, count)[index]
    run_worker(config.model_copy(update={"cameras": cameras}), stop, parent_pid=os.getppid())
    return EXIT_OK


def shard_cameras(cameras: Sequence[CameraModel], processes: int) -> list[list[CameraModel]]:
    """Cameras dealt round-robin over at most `processes` groups, none of them empty."""
    count = max(1, min(processes, len(cameras)))
    return [list(cameras[index::count]) for index in range(count)]


def _shard(text: str) -> tuple[int, int]:
    """`K/N`: this process runs group K (from 0) of N."""
    index_text, _, count_text = text.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected K/N, e.g. 0/3") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be in 0..N-1")
    return index, count


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Capture the clear-lane reference: the per-pixel median of a few frames."""
    stop = threading.Event()
    capture = CameraCapture(args.source, 1.0 / args.interval_s, stop, backoff=Backoff(1.0, 4.0))
    frames: list[Image] = []
    failures = 0
    for item in capture.items():
        if isinstance(item, CaptureGap):
            failures += 1
            print(f"warning: {args.source}: {item.reason}", file=sys.stderr)
            if failures >= args.retries:
                break
            continue
        if frames and item.image.shape != frames[0].shape:
            print("error: frame size changed during calibration", file=sys.stderr)
            return EXIT_BAD_INPUT
        frames.append(item.image)
        if len(frames) >= args.frames:
            break
    stop.set()
    if not frames:
        print(f"error: {args.source}: no frame could be read", file=sys.stderr)
        return EXIT_BAD_INPUT
    reference = np.asarray(np.median(np.stack(frames), axis=0), dtype=np.uint8)
    height, width = reference.shape[:2]
    if args.lane is not None:
        try:
            lane = load_lane_file(args.lane)
            validate_polygon(lane.polygon, width, height)
        except (ConfigError, FirelaneError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if not cv2.imwrite(str(args.out), reference):
        print(f"error: {args.out}: cannot write the image", file=sys.stderr)
        return EXIT_FAILED
    regime = str(frame_regime(reference))
    summary = {
        "reference": str(args.out),
        "regime": regime,
        "width": width,
        "height": height,
        "frames": len(frames),
    }
    print(json.dumps(summary))
    return EXIT_OK


def add_firelane_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `firelane eval|report|calibrate|worker` on the gateway CLI."""
    firelane = subparsers.add_parser("firelane", help="fire-lane video analytics (SPEC 11)")
    commands = firelane.add_subparsers(dest="firelane_command", required=True)

    evaluate = commands.add_parser("eval", help="print blocked/cleared events of a video")
    evaluate.add_argument("--video", type=Path, required=True, help="the video file to analyse")
    evaluate.add_argument("--lane", type=Path, required=True, help="LANE.json")
    evaluate.add_argument(
        "--reference",
        type=Path,
        action="append",
        help="clear-lane image from calibrate; repeat for another lighting regime (day, infrared)",
    )
    evaluate.add_argument(
        "--sample-fps", type=float, default=1.0, help="frames analysed per second (default 1)"
    )
    evaluate.set_defaults(func=cmd_eval)

    report = commands.add_parser("report", help="precision/recall over scenes with ground truth")
    report.add_argument("--scenes", type=Path, required=True, help="folder of NAME.avi + NAME.json")
    report.add_argument(
        "--simulate", action="store_true", help="first render the standard simulator scenes into the folder"
    )
    report.add_argument(
        "--split",
        choices=[str(split) for split in Split],
        help="with --simulate: only this split (default both)",
    )
    report.add_argument("--jobs", type=int, default=1, help="with --simulate: render scenes in N processes")
    report.add_argument(
        "--tolerance-s",
        type=float,
        default=10.0,
        help="how far an event may be from the truth, seconds (default 10)",
    )
    report.add_argument(
        "--sample-fps", type=float, default=1.0, help="frames analysed per second (default 1)"
    )
    report.set_defaults(func=cmd_report)

    calibrate = commands.add_parser("calibrate", help="capture a clear-lane reference image")
    calibrate.add_argument("--source", required=True, help="rtsp:// URL, http snapshot URL or file")
    calibrate.add_argument("--out", type=Path, required=True, help="image file to write (.png)")
    calibrate.add_argument("--lane", type=Path, help="LANE.json to check against the frame")
    calibrate.add_argument(
        "--frames", type=int, default=5, help="frames to take the reference from (default 5)"
    )
    calibrate.add_argument(
        "--interval-s", type=float, default=1.0, help="seconds between those frames (default 1)"
    )
    calibrate.add_argument("--retries", type=int, default=3, help="failed reads before giving up (default 3)")
    calibrate.set_defaults(func=cmd_calibrate)

    worker = commands.add_parser("worker", help="run the video worker (its own process)")
    worker.add_argument("--config", type=Path, required=True, help="worker YAML")
    worker.add_argument(
        "--shard",
        type=_shard,
        help="K/N: run only camera group K of N (the pool parent starts its children so); "
        "without it, run the pool: `processes` children, each supervised",
    )
    worker.set_defaults(func=cmd_worker)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="campus-gateway")
    add_firelane_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    return int(handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
