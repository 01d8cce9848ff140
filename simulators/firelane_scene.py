"""Synthetic fire-lane videos with ground truth, for tests, benchmarks and the report command.

A scene is a ground plane seen in perspective (`simulators.firelane_world`): an asphalt fire
lane (hatched or not) between pavements and verges, with 3-D vehicles, vans, box stacks,
building materials, people and cyclists placed along it in metres, so an object at the far end
of a long lane is a few pixels high. Light varies over time (daylight drift, clouds, moving
truck shadows, dusk, street lights, headlights) and the camera switches to infrared at night
(grey image, its own illuminator, other reflectances). The camera adds auto exposure, noise,
rain, shake, and the lens / stream faults. Every random choice comes from the scene's seed.

Run `python -m simulators.firelane_scene --out DIR` to write the evaluation suite.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from simulators.firelane_world import BOX_FACES, Box3, LaneGeometry

Image = npt.NDArray[np.uint8]
# The simulator mixes float32 and float64 maths freely; only its output frames are typed tightly.
FloatImage = npt.NDArray[Any]

ASPHALT_BGR = (88.0, 90.0, 92.0)
DEFAULT_GEOMETRY = LaneGeometry("default", width=320, height=180, z0_m=9.0, length_m=40.0)


class Condition(StrEnum):
    LIGHTING_DRIFT = "lighting_drift"
    CLOUD_SHADOWS = "cloud_shadows"
    TRUCK_SHADOWS = "truck_shadows"
    DUSK = "dusk"
    STREET_LIGHTS = "street_lights"
    HEADLIGHT_SWEEPS = "headlight_sweeps"
    RAIN = "rain"
    CAMERA_SHAKE = "camera_shake"


class FaultKind(StrEnum):
    FROZEN = "frozen"
    COVERED = "covered"
    DEFOCUSED = "defocused"


class ObjectKind(StrEnum):
    CAR = "car"
    VAN = "van"
    BOXES = "boxes"
    MATERIALS = "materials"
    PERSON = "person"
    CYCLIST = "cyclist"


@dataclass(frozen=True, slots=True)
class Vehicle:
    """Something that comes onto the lane, stands from `arrive_s` to `leave_s`, and goes.

    `along` is its position along the lane (0 near end, 1 far end), `across` its offset from
    the centre line as a fraction of the lane width. Vehicles drive in and off along the lane
    in `move_s`; boxes and materials appear and vanish (set down, picked up).
    """

    arrive_s: float
    leave_s: float
    color_bgr: tuple[float, float, float] = (40.0, 40.0, 170.0)
    along: float = 0.4
    across: float = 0.0
    move_s: float = 4.0
    kind: ObjectKind = ObjectKind.CAR
    ir: float = 0.6


@dataclass(frozen=True, slots=True)
class Crosser:
    """A person, cyclist or vehicle passing: across the lane at `along`, or along it
    (`lengthwise`), optionally pausing half-way for `pause_s`."""

    start_s: float
    cross_s: float = 6.0
    pause_s: float = 0.0
    along: float = 0.5
    kind: ObjectKind = ObjectKind.PERSON
    lengthwise: bool = False
    color_bgr: tuple[float, float, float] = (60.0, 120.0, 200.0)


@dataclass(frozen=True, slots=True)
class FaultWindow:
    kind: FaultKind
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class SceneSpec:
    name: str
    seed: int = 0
    geometry: LaneGeometry = DEFAULT_GEOMETRY
    fps: float = 1.0
    duration_s: float = 90.0
    dwell_s: float = 20.0
    clear_s: float = 5.0
    conditions: tuple[Condition, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    crossers: tuple[Crosser, ...] = ()
    faults: tuple[FaultWindow, ...] = ()
    dusk_from_s: float = 0.0
    dusk_s: float = 60.0
    street_lights_on_s: float = 0.0
    ir_from_s: float | None = None
    hatched: bool = True
    asphalt_bgr: tuple[float, float, float] = ASPHALT_BGR
    condition: str = ""

    @property
    def width(self) -> int:
        return self.geometry.width

    @property
    def height(self) -> int:
        return self.geometry.height


@dataclass(frozen=True, slots=True)
class ExpectedEvent:
    event: str
    t: float
    on_lane_s: float


@dataclass(slots=True)
class GroundTruth:
    """What an ideal detector reports for a scene (the video file's sidecar JSON)."""

    name: str
    lane: dict[str, object]
    expected: list[ExpectedEvent] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    condition: str = ""
    geometry: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def lane_polygon(spec: SceneSpec | LaneGeometry | int, height: int | None = None) -> list[list[float]]:
    """The lane's outline in pixels, as an installer would draw it; `lane_polygon(w, h)` is
    the default geometry's lane at that resolution."""
    if isinstance(spec, int):
        return DEFAULT_GEOMETRY.scaled(spec, height or spec * 9 // 16).lane_polygon()
    geometry = spec.geometry if isinstance(spec, SceneSpec) else spec
    return geometry.lane_polygon()


def ground_truth(spec: SceneSpec) -> GroundTruth:
    """Blocked a dwell after something stops on the lane (if it stays that long); cleared a
    clear_s after it has left."""
    truth = GroundTruth(
        name=spec.name,
        lane={"polygon": lane_polygon(spec), "dwell_s": spec.dwell_s, "clear_s": spec.clear_s},
        faults=list(spec.faults),
        conditions=[str(c) for c in spec.conditions],
        condition=spec.condition,
        geometry=spec.geometry.name,
    )
    for vehicle in sorted(spec.vehicles, key=lambda v: v.arrive_s):
        on_s, off_s = vehicle.arrive_s, vehicle.leave_s + 1.0
        if off_s - on_s < spec.dwell_s:
            continue
        truth.expected.append(ExpectedEvent("blocked", on_s + spec.dwell_s, on_s))
        if off_s + spec.clear_s <= spec.duration_s:
            truth.expected.append(ExpectedEvent("cleared", off_s + spec.clear_s, on_s))
    return truth


def _smoothstep_line(distance: FloatImage, half_width: float, footprint: FloatImage) -> FloatImage:
    """Anti-aliased coverage of a painted line `half_width` m either side of distance 0."""
    return np.clip((half_width - np.abs(distance)) / np.maximum(footprint, 1e-3) + 0.5, 0.0, 1.0)


class SceneRenderer:
    """Renders frame `t` of a scene; `reference()` is the clear lane in plain daylight and
    `reference(infrared=True)` the clear lane under the camera's infrared illuminator."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        self.geometry = spec.geometry
        self._rng = np.random.default_rng(spec.seed)
        self._gx, self._gz, self._footprint = self.geometry.ground_maps()
        self._albedo, self._albedo_ir, self._sky = self._world()
        w, h = spec.width, spec.height
        self._clouds = self._blobs((2 * h, 3 * w), sigma=0.12 * w, level=0.55)
        self._frozen: Image | None = None
        self._hotspot = self._ir_illuminator()
        self._lamps = self._lamp_pools()

    def frames(self) -> Iterator[tuple[float, Image]]:
        count = int(self.spec.duration_s * self.spec.fps)
        for index in range(count):
            t = index / self.spec.fps
            yield t, self.render(t)

    def reference(self, infrared: bool = False) -> Image:
        frame_rng = np.random.default_rng(self.spec.seed + 10_000)
        if infrared:
            scene = (self._albedo_ir * self._hotspot)[..., None] * np.ones((1, 1, 3), np.float32)
            return self._camera(scene, frame_rng, None, infrared=True)
        return self._camera(self._albedo.copy(), frame_rng, None, infrared=False)

    def is_infrared(self, t: float) -> bool:
        return self.spec.ir_from_s is not None and t >= self.spec.ir_from_s

    def render(self, t: float) -> Image:
        fault = self._fault_at(t)
        if fault is FaultKind.FROZEN and self._frozen is not None:
            return self._frozen
        frame_rng = np.random.default_rng([self.spec.seed, round(t * 1000)])
        infrared = self.is_infrared(t)
        albedo = np.repeat(self._albedo_ir[..., None], 3, axis=2) if infrared else self._albedo.copy()
        self._draw_objects(albedo, t, infrared)
        scene = albedo * self._ir_light(t)[..., None] if infrared else albedo * self._illumination(t)
        frame = self._camera(scene, frame_rng, t, infrared)
        if fault is FaultKind.COVERED:
            dark = np.full_like(frame, 14)
            frame = np.asarray(
                cv2.add(dark, frame_rng.integers(0, 3, frame.shape, dtype=np.uint8)), dtype=np.uint8
            )
        elif fault is FaultKind.DEFOCUSED:
            frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), 0.02 * self.spec.width), dtype=np.uint8)
        self._frozen = frame
        return frame

    def _fault_at(self, t: float) -> FaultKind | None:
        for window in self.spec.faults:
            if window.start_s <= t < window.end_s:
                return window.kind
        return None

    # ---- the static world -------------------------------------------------------------------

    def _world(self) -> tuple[FloatImage, FloatImage, npt.NDArray[np.bool_]]:
        spec, geometry, rng = self.spec, self.geometry, self._rng
        h, w = spec.height, spec.width
        gx, gz, footprint = self._gx, self._gz, self._footprint
        sky = ~np.isfinite(gx) | (gz > 400.0)
        gx = np.nan_to_num(gx, nan=0.0)
        gz = np.nan_to_num(gz, nan=1000.0)
        s, d = geometry.to_lane(gx, gz)
        half = geometry.lane_width_m / 2
        on_lane = (np.abs(d) <= half) & (s >= -30.0) & (s <= geometry.length_m + 30.0)

        blurred = cv2.GaussianBlur(rng.normal(0, 1, (512, 512)).astype(np.float32), (0, 0), 0.8)
        texture: FloatImage = np.asarray(blurred, np.float32) / (float(np.std(blurred)) + 1e-6)
        # Asphalt grain at 4 cm per texel, sampled in metres: it fades with distance as it should.
        grain = cv2.remap(
            texture,
            (gx * 25.0 % 512).astype(np.float32),
            (gz * 25.0 % 512).astype(np.float32),
            cv2.INTER_LINEAR,
        )
        fade = np.clip(0.04 / np.maximum(footprint, 1e-3), 0.0, 1.0)
        grain = grain * fade
        tone = float(rng.uniform(0.85, 1.15))
        asphalt = np.asarray(spec.asphalt_bgr, np.float32) * tone
        lane = asphalt[None, None, :] * (1.0 + 0.10 * grain[..., None])
        lane_ir = 0.32 * tone * (1.0 + 0.10 * grain)

        paving = np.asarray((150.0, 160.0, 168.0), np.float32) * float(rng.uniform(0.85, 1.1))
        joint_m = float(rng.uniform(0.4, 0.8))
        joints = np.maximum(
            _smoothstep_line((gx % joint_m) - joint_m / 2, 0.02, footprint),
            _smoothstep_line((gz % joint_m) - joint_m / 2, 0.02, footprint),
        )
        ground = paving[None, None, :] * (1.0 - 0.25 * joints[..., None]) * (1.0 + 0.05 * grain[..., None])
        ground_ir = 0.55 * (1.0 - 0.25 * joints) * (1.0 + 0.05 * grain)
        # A verge of grass on one side: bright in infrared, as vegetation is.
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        verge = (side * d > half + float(rng.uniform(1.5, 3.5))) & ~sky
        grass = np.asarray((60.0, 120.0, 80.0), np.float32) * (1.0 + 0.15 * grain[..., None])
        ground = np.where(verge[..., None], grass, ground)
        ground_ir = np.where(verge, 0.85 * (1.0 + 0.15 * grain), ground_ir)

        markings = np.zeros((h, w), np.float32)
        edge = _smoothstep_line(np.abs(d) - (half - 0.12), 0.08, footprint)
        markings = np.maximum(markings, edge)
        if spec.hatched:
            period = float(rng.uniform(1.5, 2.5))
            for sign in (1.0, -1.0):
                phase = (s + sign * d) / math.sqrt(2.0)
                dist = (phase % period) - period / 2
                markings = np.maximum(markings, _smoothstep_line(dist, 0.08, footprint * 1.4))
        markings *= on_lane & (s >= 0) & (s <= geometry.length_m)
        yellow = np.asarray((40.0, 190.0, 225.0), np.float32)
        lane = lane * (1 - markings[..., None]) + yellow * markings[..., None]
        lane_ir = lane_ir * (1 - markings) + 0.75 * markings

        albedo = np.where(on_lane[..., None], lane, ground)
        albedo_ir = np.where(on_lane, lane_ir, ground_ir)
        # Above the horizon: a building facade with windows.
        facade = np.zeros((h, w, 3), np.float32)
        facade[:] = (170, 180, 190)
        for row in range(6):
            for col in range(14):
                x0, y0 = int((0.02 + 0.07 * col) * w), int((0.02 + 0.06 * row) * h)
                cv2.rectangle(facade, (x0, y0), (x0 + int(0.04 * w), y0 + int(0.035 * h)), (110, 95, 80), -1)
        facade_ir = cv2.cvtColor(facade.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
        albedo = np.where(sky[..., None], facade, albedo).astype(np.float32)
        albedo_ir = np.where(sky, 0.7 * facade_ir, albedo_ir).astype(np.float32)
        return albedo, albedo_ir * 255.0, sky

    def _blobs(self, shape: tuple[int, int], sigma: float, level: float) -> FloatImage:
        noise = self._rng.normal(0, 1, shape).astype(np.float32)
        smooth = np.asarray(cv2.GaussianBlur(noise, (0, 0), sigma), dtype=np.float32)
        smooth /= float(smooth.std()) + 1e-6
        mask = (smooth > level).astype(np.float32)
        return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma * 0.3), dtype=np.float32)

    def _ir_illuminator(self) -> FloatImage:
        """The camera's infrared lamp: bright near the camera, falling off with distance."""
        distance = np.sqrt(np.nan_to_num(self._gx, nan=0.0) ** 2 + np.nan_to_num(self._gz, nan=200.0) ** 2)
        light = 1.0 / (1.0 + (distance / float(self._rng.uniform(15.0, 30.0))) ** 2)
        return np.asarray(0.15 + light, np.float32)

    def _lamp_pools(self) -> FloatImage:
        pools = np.zeros((self.spec.height, self.spec.width), np.float32)
        gx, gz = np.nan_to_num(self._gx, nan=1e4), np.nan_to_num(self._gz, nan=1e4)
        for k in range(4):
            x, _, z = self.geometry.lane_point(
                self.geometry.length_m * (0.15 + 0.25 * k), self.geometry.lane_width_m * 0.9
            )
            pools += np.exp(-((gx - x) ** 2 + (gz - z) ** 2) / (2 * 6.0**2)).astype(np.float32)
        return pools

    # ---- light --------------------------------------------------------------------------------

    def _daylight(self, t: float) -> float:
        spec = self.spec
        level = 1.0
        if Condition.LIGHTING_DRIFT in spec.conditions:
            level *= 1.0 + 0.35 * math.sin(2 * math.pi * t / max(spec.duration_s, 1.0))
        if Condition.DUSK in spec.conditions and t >= spec.dusk_from_s:
            ramp = min(1.0, (t - spec.dusk_from_s) / max(1.0, spec.dusk_s))
            level *= 1.0 - 0.96 * ramp
        return level

    def _shadow_mask(self, t: float) -> FloatImage:
        """Shadows of trucks driving past on the road beside the lane, cast across it."""
        spec, geometry = self.spec, self.geometry
        shadow = np.zeros((spec.height, spec.width), np.float32)
        s, d = geometry.to_lane(np.nan_to_num(self._gx, nan=1e4), np.nan_to_num(self._gz, nan=1e4))
        period_s = 40.0
        phase = t % period_s
        if phase > 14.0:
            return shadow
        center_s = -15.0 + (geometry.length_m + 30.0) * phase / 14.0
        inside = np.clip(
            np.minimum(6.0 - np.abs(s - center_s), 2.0 * geometry.lane_width_m - np.abs(d - 1.0)) / 0.6,
            0.0,
            1.0,
        )
        return np.asarray(inside, np.float32)

    def _illumination(self, t: float) -> FloatImage:
        spec = self.spec
        w, h = spec.width, spec.height
        daylight = self._daylight(t)
        light = np.full((h, w), daylight, np.float32)
        if Condition.CLOUD_SHADOWS in spec.conditions:
            ox = int((t * 0.02 * w) % (2 * w))
            oy = int((t * 0.005 * h) % h)
            light *= 1.0 - 0.55 * self._clouds[oy : oy + h, ox : ox + w]
        if Condition.TRUCK_SHADOWS in spec.conditions:
            light *= 1.0 - 0.55 * self._shadow_mask(t) * min(1.0, daylight)
        color = np.ones((h, w, 3), np.float32) * light[..., None]
        if Condition.STREET_LIGHTS in spec.conditions and t >= spec.street_lights_on_s:
            sodium = np.array((0.35, 0.75, 1.0), np.float32)
            color += 0.5 * self._lamps[..., None] * sodium
        color += self._headlights(t)[..., None]
        return color

    def _headlights(self, t: float) -> FloatImage:
        spec = self.spec
        beam = np.zeros((spec.height, spec.width), np.float32)
        if Condition.HEADLIGHT_SWEEPS not in spec.conditions:
            return beam
        phase = (t % 30.0) / 5.0
        if phase >= 1.0:
            return beam
        x, _, z = self.geometry.lane_point(self.geometry.length_m * 0.3, (phase - 0.5) * 20.0)
        gx, gz = np.nan_to_num(self._gx, nan=1e4), np.nan_to_num(self._gz, nan=1e4)
        beam += 1.5 * np.exp(-((gx - x) ** 2 / 8.0 + (gz - z) ** 2 / 60.0)).astype(np.float32)
        return beam

    def _ir_light(self, t: float) -> FloatImage:
        light = self._hotspot.copy()
        if Condition.HEADLIGHT_SWEEPS in self.spec.conditions:
            light += 0.3 * self._headlights(t)
        return light

    # ---- the camera ---------------------------------------------------------------------------

    def _camera(self, scene: FloatImage, rng: np.random.Generator, t: float | None, infrared: bool) -> Image:
        spec = self.spec
        w, h = spec.width, spec.height
        mean = float(scene.mean())
        gain = float(np.clip(120.0 / max(mean, 1e-3), 0.8, 16.0))
        image = scene * gain
        sigma = 1.5 * math.sqrt(gain) * (1.6 if infrared else 1.0)
        if t is not None and Condition.RAIN in spec.conditions:
            image *= 0.85
            streaks = np.zeros((h, w), np.float32)
            for _ in range(int(0.15 * w)):
                x, y = rng.integers(0, w), rng.integers(0, h)
                length = int(rng.integers(h // 20 + 2, h // 8 + 3))
                cv2.line(streaks, (int(x), int(y)), (int(x) + length // 6, int(y) + length), 1.0, 1)
            image += 45.0 * cv2.GaussianBlur(streaks, (0, 0), 0.6)[..., None]
            sigma *= 1.5
        noise = rng.normal(0, sigma, (h, w, 1)).astype(np.float32)
        image = image + noise
        frame: Image = np.clip(image, 0, 255).astype(np.uint8)
        if t is not None and Condition.CAMERA_SHAKE in spec.conditions:
            dx, dy = rng.uniform(-0.012, 0.012, 2) * w
            angle = float(rng.uniform(-0.3, 0.3))
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            matrix[:, 2] += (dx, dy)
            frame = np.asarray(cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REFLECT), np.uint8)
        return frame

    # ---- objects ------------------------------------------------------------------------------

    def _draw_objects(self, albedo: FloatImage, t: float, infrared: bool) -> None:
        geometry = self.geometry
        boxes: list[Box3] = []
        for index, vehicle in enumerate(self.spec.vehicles):
            placed = self._vehicle_position(vehicle, t)
            if placed is None:
                continue
            s, d = placed
            boxes.extend(
                object_boxes(vehicle.kind, s, d, vehicle.color_bgr, vehicle.ir, self.spec.seed + index)
            )
        for index, crosser in enumerate(self.spec.crossers):
            crossing = self._crosser_position(crosser, t)
            if crossing is None:
                continue
            s, d, yaw = crossing
            ir = 0.55
            boxes.extend(
                object_boxes(crosser.kind, s, d, crosser.color_bgr, ir, self.spec.seed + 100 + index, yaw)
            )
        if not boxes:
            return
        camera = np.array([0.0, geometry.cam_height_m, 0.0])
        faces: list[tuple[float, npt.NDArray[np.float64], tuple[float, float, float]]] = []
        shadow = np.zeros(albedo.shape[:2], np.float32)
        for box in boxes:
            corners = box.corners(geometry)
            pixels = geometry.project(corners)
            if box.bottom < 0.4:
                # Contact shadow: the ground under the object, a little larger than it, darkened.
                centre = pixels[:4].mean(axis=0)
                grown = np.round((centre + 1.15 * (pixels[:4] - centre)) * 8).astype(np.int32)
                cv2.fillConvexPoly(shadow, cv2.convexHull(grown), 1.0, lineType=cv2.LINE_AA, shift=3)
            world = np.asarray(corners)
            for indices, factor in BOX_FACES:
                centre3 = world[list(indices)].mean(axis=0)
                color = (
                    (box.ir * 255.0 * factor,) * 3
                    if infrared
                    else tuple(float(c) * factor for c in box.color_bgr)
                )
                faces.append((float(np.linalg.norm(centre3 - camera)), pixels[list(indices)], color))  # type: ignore[arg-type]
        albedo *= (1.0 - 0.55 * np.minimum(shadow, 1.0))[..., None]
        for _, polygon, color in sorted(faces, key=lambda face: -face[0]):
            points = np.round(polygon * 8).astype(np.int32)
            cv2.fillConvexPoly(albedo, cv2.convexHull(points), color, lineType=cv2.LINE_AA, shift=3)

    def _vehicle_position(self, vehicle: Vehicle, t: float) -> tuple[float, float] | None:
        geometry = self.geometry
        s_stop = vehicle.along * geometry.length_m
        d = vehicle.across * geometry.lane_width_m
        drives = vehicle.kind in (ObjectKind.CAR, ObjectKind.VAN)
        move_s = vehicle.move_s if drives else 0.0
        if not vehicle.arrive_s - move_s <= t < vehicle.leave_s + move_s:
            return None
        if t < vehicle.arrive_s:
            offset = (vehicle.arrive_s - t) / max(move_s, 1e-6)
        elif t >= vehicle.leave_s:
            offset = (t - vehicle.leave_s) / max(move_s, 1e-6)
        else:
            offset = 0.0
        # Driving in from (and off to) the near end of the lane at about 5 m/s.
        return s_stop - offset * 5.0 * move_s, d

    def _crosser_position(self, crosser: Crosser, t: float) -> tuple[float, float, float] | None:
        geometry = self.geometry
        total = crosser.cross_s + crosser.pause_s
        if not crosser.start_s <= t < crosser.start_s + total:
            return None
        elapsed = t - crosser.start_s
        half = crosser.cross_s / 2
        if elapsed < half:
            progress = elapsed / crosser.cross_s
        elif elapsed < half + crosser.pause_s:
            progress = 0.5
        else:
            progress = (elapsed - crosser.pause_s) / crosser.cross_s
        if crosser.lengthwise:
            s = -5.0 + (geometry.length_m + 10.0) * progress
            return s, 0.15 * geometry.lane_width_m, 0.0
        d = (-0.8 + 1.6 * progress) * geometry.lane_width_m
        return crosser.along * geometry.length_m, d, 90.0


def object_boxes(
    kind: ObjectKind,
    s: float,
    d: float,
    color: tuple[float, float, float],
    ir: float,
    seed: int,
    yaw_deg: float = 0.0,
) -> list[Box3]:
    """The boxes an object is made of, centred at lane point (s, d)."""
    rng = np.random.default_rng(seed)
    glass = (62.0, 56.0, 52.0)

    def box(
        ds: float,
        dd: float,
        length: float,
        width: float,
        bottom: float,
        top: float,
        c: tuple[float, float, float],
        r: float,
    ) -> Box3:
        yaw = math.radians(yaw_deg)
        return Box3(
            s + ds * math.cos(yaw) - dd * math.sin(yaw),
            d + ds * math.sin(yaw) + dd * math.cos(yaw),
            length,
            width,
            bottom,
            top,
            c,
            r,
            yaw_deg,
        )

    if kind is ObjectKind.CAR:
        width = float(rng.uniform(1.7, 1.9))
        return [
            box(0, 0, 4.4, width, 0.25, 0.95, color, ir),
            box(-0.2, 0, 2.3, width - 0.15, 0.95, 1.45, glass, 0.1),
            box(-0.2, 0, 1.9, width - 0.25, 1.45, 1.5, color, ir),
        ]
    if kind is ObjectKind.VAN:
        return [
            box(0, 0, 5.0, 2.0, 0.3, 2.3, color, ir),
            box(-2.45, 0, 0.12, 1.8, 1.3, 2.1, glass, 0.1),
        ]
    if kind is ObjectKind.BOXES:
        parts = []
        for row in range(2):
            for level in range(int(rng.integers(1, 3))):
                tone = float(rng.uniform(0.75, 1.1))
                c = (60.0 * tone, 110.0 * tone, 160.0 * tone)
                parts.append(
                    box(
                        0,
                        (row - 0.5) * 0.75,
                        0.7,
                        0.7,
                        0.72 * level,
                        0.72 * level + 0.7,
                        c,
                        0.7,
                    )
                )
        return parts
    if kind is ObjectKind.MATERIALS:
        return [
            box(0, -0.4, 1.2, 1.0, 0.0, 0.15, (90.0, 130.0, 150.0), 0.5),
            box(0, -0.4, 1.1, 0.95, 0.15, 0.85, (60.0, 70.0, 150.0), 0.45),
            box(0.3, 0.7, 3.0, 0.8, 0.0, 0.45, (140.0, 140.0, 140.0), 0.6),
        ]
    if kind is ObjectKind.PERSON:
        return [
            box(0, 0, 0.25, 0.4, 0.0, 0.85, (50.0, 45.0, 40.0), 0.3),
            box(0, 0, 0.28, 0.45, 0.85, 1.45, color, 0.6),
            box(0, 0, 0.2, 0.2, 1.5, 1.72, (90.0, 120.0, 160.0), 0.7),
        ]
    return [
        box(0, 0, 1.7, 0.08, 0.3, 0.9, (30.0, 30.0, 30.0), 0.2),
        box(0, 0, 0.3, 0.4, 0.9, 1.5, color, 0.6),
        box(0, 0, 0.2, 0.2, 1.5, 1.7, (90.0, 120.0, 160.0), 0.7),
    ]


def write_scene(
    spec: SceneSpec, directory: Path, references: Sequence[str] = ("day",)
) -> tuple[Path, Path, Path]:
    """Write `<name>.avi` (MJPG), `<name>.truth.json` (ground truth), `<name>.lane.json` (the
    SPEC 11 LANE.json) and the calibrated clear-lane references asked for: `<name>.reference.png`
    (daylight) and `<name>.reference_ir.png` (infrared). Returns (video, truth, day reference)."""
    directory.mkdir(parents=True, exist_ok=True)
    video_path = directory / f"{spec.name}.avi"
    renderer = SceneRenderer(spec)
    writer = cv2.VideoWriter(
        str(video_path), cv2.VideoWriter.fourcc(*"MJPG"), spec.fps, (spec.width, spec.height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MJPG video to {video_path}")
    try:
        for _, frame in renderer.frames():
            writer.write(frame)
    finally:
        writer.release()
    truth = ground_truth(spec)
    truth_path = directory / f"{spec.name}.truth.json"
    truth_path.write_text(truth.to_json())
    (directory / f"{spec.name}.lane.json").write_text(json.dumps(truth.lane))
    day_path = directory / f"{spec.name}.reference.png"
    for regime in references:
        path = day_path if regime == "day" else directory / f"{spec.name}.reference_ir.png"
        # Through the same JPEG coding as the video, as `firelane calibrate` would capture it.
        _, coded = cv2.imencode(".jpg", renderer.reference(regime == "ir"), [cv2.IMWRITE_JPEG_QUALITY, 90])
        decoded = cv2.imdecode(coded, cv2.IMREAD_COLOR)
        if decoded is None or not cv2.imwrite(str(path), decoded):
            raise RuntimeError(f"cannot write the reference image {path}")
    return video_path, truth_path, day_path


def fault_scenes(seed: int = 1) -> list[SceneSpec]:
    """One scene per lens / stream fault, each 30 s long in the middle of a 90 s clear scene."""
    return [
        SceneSpec(f"fault_{kind}", seed=seed, faults=(FaultWindow(kind, 30.0, 60.0),)) for kind in FaultKind
    ]


def long_stay_scene(seed: int = 1) -> SceneSpec:
    """A car parked for three hours while day drifts into dusk and an infrared night, one frame
    every 10 s: it must stay blocked (never fade into the background) and clear when it goes."""
    return SceneSpec(
        "long_stay",
        seed=seed,
        fps=0.1,
        duration_s=4 * 3600.0,
        dwell_s=180.0,
        clear_s=30.0,
        conditions=(
            Condition.LIGHTING_DRIFT,
            Condition.CLOUD_SHADOWS,
            Condition.DUSK,
            Condition.STREET_LIGHTS,
        ),
        dusk_from_s=1.5 * 3600.0,
        dusk_s=3600.0,
        street_lights_on_s=2.2 * 3600.0,
        ir_from_s=2.6 * 3600.0,
        vehicles=(Vehicle(600.0, 600.0 + 3 * 3600.0, along=0.5, move_s=10.0),),
    )


def main(argv: Sequence[str] | None = None) -> int:
    from simulators.firelane_suite import Split, suite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory to write scenes into")
    parser.add_argument("--split", choices=[str(s) for s in Split], default=str(Split.HELD_OUT))
    args = parser.parse_args(argv)
    for scene in suite(Split(args.split)):
        video, _, _ = write_scene(scene.spec, args.out, scene.references)
        print(video)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
