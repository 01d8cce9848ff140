"""The gateway's side of alarm evidence (issue 18): which camera sees an alarm, and asking it.

When a rule of `evidence.rules` raises an alert (or repeats an open one) for a device in a zone
a camera covers (inventory `covers_zones`), `EvidenceDesk.enrich` puts an entry per camera into
the alert's details before the alert is committed and told, so the first webhook already carries the
links; the links name files the camera's worker writes within moments (snapshot) and seconds
(clip). A camera known to be down gets an entry that says so instead, never no entry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict, Field, field_validator

from analytics.alerts import Alert, AlertService, AlertSignal
from analytics.device_tracker import DeviceTracker
from analytics.devices import DeviceSpec, Inventory
from analytics.evidence import (
    CLIP_FILE,
    FRAMES,
    SNAPSHOT_FILE,
    EvidenceManifest,
    EvidenceRequest,
    EvidenceState,
    UnavailableReason,
    new_evidence_id,
    read_manifest,
    request_topic,
)
from analytics.records import DeviceKind
from analytics.rules.catalogue import RULES
from api.evidence_links import evidence_path

log = logging.getLogger(__name__)

EVIDENCE_KEY = "evidence"  # in Alert.details: a list of entries, one per camera and press
MAX_CLIPS_PER_ALERT = 5  # per camera: the first press and four repeats get video


class EvidenceConfig(BaseModel):
    """The gateway config's `evidence:` section; the folder is the worker's `evidence.dir`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[str] = Field(
        default_factory=lambda: ["panic_pressed", "fire_alarm", "gate_forced"],
        description="rules whose new alerts ask the cameras covering the zone for video",
    )
    # The gateway's address as people outside the school reach it, for links in webhooks
    # ("https://gateway.school.edu.cn:8443"); without it, http://api.host:api.port.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/\s?#]+(/[^\s?#]*)?$")
    # Signs links in webhooks so the police can open them without a token (api/evidence_links.py).
    link_secret: str | None = Field(default=None, min_length=16)
    link_ttl_s: float = Field(
        default=7 * 86400.0, gt=0, description="how long a signed link opens the evidence"
    )
    # A request the worker has not answered in this long is reported as "no answer".
    answer_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rules {unknown}; known: {', '.join(sorted(RULES))}")
        return value


class CameraCoverage:
    """Which cameras see where a device is: cameras listing its zone, in its building."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._cameras = [d for d in inventory if d.kind is DeviceKind.CAMERA and d.covers_zones]

    def cameras_for(self, device_id: str) -> list[DeviceSpec]:
        device = self._inventory.get(device_id)
        if device is None:
            return []
        return [camera for camera in self._cameras if camera.covers(device.building, device.zone)]

    def __bool__(self) -> bool:
        return bool(self._cameras)


class EvidenceRequester:
    """Writes the "requested" manifest, then publishes the request, off the event loop; then
    watches for the worker's answer and reports, on the loop, a request that got no video.

    The manifest first: the API can then tell "the worker never answered" from "not asked".
    """

    def __init__(
        self,
        campus_id: str,
        directory: Path,
        host: str,
        port: int,
        client_id: str,
        username: str | None,
        password: str | None,
        answer_timeout_s: float = 5.0,
    ) -> None:
        self.campus_id = campus_id
        self.directory = directory
        self.answer_timeout_s = answer_timeout_s
        # Called on the event loop with (evidence id, why) for a request that got no video.
        self.on_unavailable: Callable[[str, UnavailableReason], None] | None = None
        self._watched: dict[str, float] = {}  # evidence id -> when to give up on its answer
        self._watch_lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="evidence-answers", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence")
        self.client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 30)
        self._endpoint = (host, port)
        self.requested = 0

    name = "evidence"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.client.connect_async(*self._endpoint, keepalive=30)
        self.client.loop_start()
        self._watcher.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self._thread.shutdown, wait=True)
        self._stopping.set()
        await asyncio.to_thread(self._watcher.join, 5)
        self.client.disconnect()
        self.client.loop_stop()

    def ask(self, camera_id: str, request: EvidenceRequest) -> None:
        self.requested += 1
        try:
            self._thread.submit(self._ask, camera_id, request)
        except RuntimeError:  # stopping: the alert goes on without its video, never the reverse
            log.warning("evidence %s for camera %s not asked: the gateway is stopping", request.id, camera_id)

    def _ask(self, camera_id: str, request: EvidenceRequest) -> None:
        try:
            EvidenceManifest(request.id, camera_id, request.requested_at, EvidenceState.REQUESTED).write(
                self.directory
            )
        except OSError as exc:
            log.error("evidence %s: cannot write to %s: %s", request.id, self.directory, exc)
        # QoS 1 and queued by paho while the broker is away: the worker gets it once it is back.
        self.client.publish(request_topic(self.campus_id, camera_id), request.to_json(), qos=1)
        with self._watch_lock:
            self._watched[request.id] = time.monotonic() + self.answer_timeout_s

    def _watch(self) -> None:
        """Read the manifests of unanswered requests every 50 ms until each has its answer."""
        while not self._stopping.wait(0.05):
            with self._watch_lock:
                watched = list(self._watched.items())
            for evidence_id, give_up_at in watched:
                manifest = read_manifest(self.directory, evidence_id)
                reason: UnavailableReason | None = None
                if manifest is not None and manifest.state is not EvidenceState.REQUESTED:
                    if manifest.state is EvidenceState.UNAVAILABLE:
                        reason = manifest.reason or UnavailableReason.NO_ANSWER
                elif time.monotonic() < give_up_at:
                    continue
                else:
                    reason = UnavailableReason.NO_ANSWER
                with self._watch_lock:
                    del self._watched[evidence_id]
                if reason is not None:
                    log.warning("evidence %s: no video (%s)", evidence_id, reason)
                    self._report(evidence_id, reason)

    def _report(self, evidence_id: str, reason: UnavailableReason) -> None:
        loop, report = self._loop, self.on_unavailable
        if loop is not None and report is not None and not loop.is_closed():
            loop.call_soon_threadsafe(report, evidence_id, reason)


class EvidenceDesk:
    """Decides, for each raised signal, which cameras to ask and what the alert says about it."""

    def __init__(
        self,
        config: EvidenceConfig,
        coverage: CameraCoverage,
        tracker: DeviceTracker,
        alerts: AlertService,
        ask: Callable[[str, EvidenceRequest], None],
        tell: Callable[[Alert], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tell = tell
        self._rules = frozenset(config.rules)
        self._coverage = coverage
        self._tracker = tracker
        self._alerts = alerts
        self._ask = ask
        self._clock = clock

    def enrich(self, signal: AlertSignal) -> AlertSignal:
        """The signal, with evidence entries when it raises or repeats an alert in a covered zone."""
        if not signal.raised or signal.rule not in self._rules:
            return signal
        cameras = self._coverage.cameras_for(signal.device_id or signal.subject)
        if not cameras:
            return signal
        # A repeat (pressed again while the alert is open) gets its own clip, listed after the
        # earlier ones, up to MAX_CLIPS_PER_ALERT per camera: a button held down or pressed in
        # a loop must not fill the disk or the alert.
        current = self._alerts.open_for(signal.rule, signal.subject)
        earlier = current.details.get(EVIDENCE_KEY) if current is not None else None
        entries: list[dict[str, Any]] = list(earlier) if isinstance(earlier, list) else []
        now = self._clock()
        added = 0
        for camera in cameras:
            if sum(1 for e in entries if e.get("camera") == camera.id) >= MAX_CLIPS_PER_ALERT:
                log.info(
                    "alert %s: camera %s has its %d clips already",
                    signal.rule,
                    camera.id,
                    MAX_CLIPS_PER_ALERT,
                )
                continue
            entries.append(self._entry(camera.id, now))
            added += 1
        if not added:
            return signal
        return replace(signal, details={**signal.details, EVIDENCE_KEY: entries})

    def _entry(self, camera_id: str, now: float) -> dict[str, Any]:
        evidence_id = new_evidence_id()
        entry: dict[str, Any] = {"camera": camera_id, "id": evidence_id, "requested_at": round(now, 3)}
        down = self._down_reason(camera_id)
        if down is not None:
            return {**entry, "available": False, "reason": str(down)}
        self._ask(camera_id, EvidenceRequest(evidence_id, now))
        return {
            **entry,
            "available": True,
            "status": evidence_path(evidence_id),
            "snapshot": evidence_path(evidence_id, SNAPSHOT_FILE),
            "clip": evidence_path(evidence_id, CLIP_FILE),
            "frames": evidence_path(evidence_id, FRAMES),
        }

    def unavailable(self, evidence_id: str, reason: UnavailableReason) -> None:
        """A worker found no video for a request (or never answered): the alert's channels are
        told so, since the first message promised links."""
        for alert in self._alerts.open_alerts():
            entries = alert.details.get(EVIDENCE_KEY)
            if not isinstance(entries, list) or not any(e.get("id") == evidence_id for e in entries):
                continue
            updated = [
                {**e, "available": False, "reason": str(reason)} if e.get("id") == evidence_id else e
                for e in entries
            ]
            # Through the alert service, so the store, the stream and the console hear it too.
            changed = self._alerts.annotate(alert.id, {EVIDENCE_KEY: updated}, "evidence_unavailable")
            if changed is not None:
                self._tell(changed)
            return

    def _down_reason(self, camera_id: str) -> UnavailableReason | None:
        status = self._tracker.get(camera_id)
        if status is not None and status.online:
            return None
        fault = self._alerts.open_for("device_fault", camera_id)
        if fault is not None and fault.condition_active:
            return UnavailableReason.CAMERA_FAULT
        return UnavailableReason.CAMERA_OFFLINE
