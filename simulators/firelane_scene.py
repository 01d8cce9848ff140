"""Synthetic fire-lane videos with ground truth, for tests, benchmarks and the report command.

A scene is a static world (building, pavements, an asphalt fire lane with yellow hatching)
lit by a time-varying illumination field (daylight drift, cloud and tree shadows, dusk, street
lights, headlight sweeps), with vehicles and people composited in, then seen through a camera
(auto exposure, sensor noise, rain, shake, defocus, a covered lens, a frozen stream). Every
random choice comes from the scene's seed, so a scene renders identically on every run.

Run `python -m simulators.firelane_scene --out DIR` to write the standard suite.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]

ASPHALT_BGR = (88.0, 90.0, 92.0)


class Condition(StrEnum):
    LIGHTING_DRIFT = "lighting_drift"
    CLOUD_SHADOWS = "cloud_shadows"
    TREE_SHADOWS = "tree_shadows"
    DUSK_NIGHT = "dusk_night"
    STREET_LIGHTS = "street_lights"
    HEADLIGHT_SWEEPS = "headlight_sweeps"
    RAIN = "rain"
    CAMERA_SHAKE = "camera_shake"


class FaultKind(StrEnum):
    FROZEN = "frozen"
    COVERED = "covered"
    DEFOCUSED = "defocused"


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A vehicle that drives onto the lane at `arrive_s`, stands until `leave_s`, drives off.

    `u` is its position across the lane (0 left edge, 1 right), `v` along it (0 far, 1 near).
    Its standing interval is the ground truth; entering and leaving each take `move_s`.
    """

    arrive_s: float
    leave_s: float
    color_bgr: tuple[float, float, float] = (40.0, 40.0, 170.0)
    u: float = 0.5
    v: float = 0.6
    move_s: float = 3.0


@dataclass(frozen=True, slots=True)
class Crosser:
    """A person or vehicle crossing the lane sideways, optionally pausing in the middle."""

    start_s: float
    cross_s: float = 6.0
    pause_s: float = 0.0
    v: float = 0.5
    is_vehicle: bool = False
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
    width: int = 320
    height: int = 180
    fps: float = 1.0
    duration_s: float = 90.0
    dwell_s: float = 20.0
    clear_s: float = 5.0
    conditions: tuple[Condition, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    crossers: tuple[Crosser, ...] = ()
    faults: tuple[FaultWindow, ...] = ()
    night_from_s: float = 0.0
    street_lights_on_s: float = 0.0
    hatched: bool = True


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def lane_polygon(width: int, height: int) -> list[list[float]]:
    """The painted lane's outline (a trapezoid in perspective), in pixels."""
    return [
        [0.43 * width, 0.40 * height],
        [0.61 * width, 0.40 * height],
        [0.82 * width, 0.95 * height],
        [0.22 * width, 0.95 * height],
    ]


def ground_truth(spec: SceneSpec) -> GroundTruth:
    """Blocked a dwell after a vehicle comes onto the lane (if it stays that long); cleared a
    clear_s after it is off the lane again."""
    truth = GroundTruth(
        name=spec.name,
        lane={
            "polygon": lane_polygon(spec.width, spec.height),
            "dwell_s": spec.dwell_s,
            "clear_s": spec.clear_s,
        },
        faults=list(spec.faults),
        conditions=[str(c) for c in spec.conditions],
    )
    for vehicle in sorted(spec.vehicles, key=lambda v: v.arrive_s):
        # On the lane from half-way through driving in to half-way through driving off.
        on_s = vehicle.arrive_s - vehicle.move_s / 2
        off_s = vehicle.leave_s + vehicle.move_s / 2
        if off_s - on_s < spec.dwell_s:
            continue
        truth.expected.append(ExpectedEvent("blocked", max(0.0, on_s) + spec.dwell_s, max(0.0, on_s)))
        if off_s + spec.clear_s <= spec.duration_s:
            truth.expected.append(ExpectedEvent("cleared", off_s + spec.clear_s, max(0.0, on_s)))
    return truth


class SceneRenderer:
    """Renders frame `t` of a scene; `reference()` is the clear lane in plain daylight."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        self._rng = np.random.default_rng(spec.seed)
        self._albedo = self._world()
        w, h = spec.width, spec.height
        self._clouds = self._blobs((2 * h, 3 * w), sigma=0.12 * w, level=0.55)
        self._leaves = self._blobs((h, w), sigma=0.012 * w, level=0.5, soft=0.004 * w)
        self._lamps = self._lamp_pools()
        self._frozen: Image | None = None

    def frames(self) -> Iterator[tuple[float, Image]]:
        count = int(self.spec.duration_s * self.spec.fps)
        for index in range(count):
            t = index / self.spec.fps
            yield t, self.render(t)

    def reference(self) -> Image:
        frame_rng = np.random.default_rng(self.spec.seed + 10_000)
        light = np.ones((self.spec.height, self.spec.width, 1), np.float32)
        return self._camera(self._albedo * light, frame_rng, t=None)

    def render(self, t: float) -> Image:
        fault = self._fault_at(t)
        if fault is FaultKind.FROZEN and self._frozen is not None:
            return self._frozen
        frame_rng = np.random.default_rng([self.spec.seed, round(t * 1000)])
        albedo = self._albedo.copy()
        self._draw_objects(albedo, t)
        scene = albedo * self._illumination(t)
        frame = self._camera(scene, frame_rng, t)
        if fault is FaultKind.COVERED:
            dark = np.full_like(frame, 14)
            frame = np.asarray(
                cv2.add(dark, frame_rng.integers(0, 3, frame.shape, dtype=np.uint8)), dtype=np.uint8
            )
        elif fault is FaultKind.DEFOCUSED:
            frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), 0.012 * self.spec.width), dtype=np.uint8)
        self._frozen = frame
        return frame

    def _fault_at(self, t: float) -> FaultKind | None:
        for window in self.spec.faults:
            if window.start_s <= t < window.end_s:
                return window.kind
        return None

    def _world(self) -> FloatImage:
        w, h = self.spec.width, self.spec.height
        rng = self._rng
        world = np.zeros((h, w, 3), np.float32)
        world[:] = (150, 165, 175)
        horizon = int(0.36 * h)
        world[:horizon] = (170, 190, 205)
        for row in range(4):
            for col in range(10):
                x0, y0 = int((0.04 + 0.1 * col) * w), int((0.03 + 0.08 * row) * h)
                cv2.rectangle(world, (x0, y0), (x0 + int(0.05 * w), y0 + int(0.045 * h)), (110, 95, 80), -1)
        for y in range(horizon, h, max(2, h // 24)):
            cv2.line(world, (0, y), (w, y), (120, 130, 140), 1)
        poly = np.asarray(lane_polygon(w, h), np.float32)
        grow = poly.copy()
        grow[:, 0] += np.array([-0.02, 0.02, 0.04, -0.04]) * w
        grow[:2, 1] -= 0.02 * h
        cv2.fillPoly(world, [np.round(grow).astype(np.int32)], (70, 72, 74))
        lane_mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(lane_mask, [np.round(poly).astype(np.int32)], 255)
        asphalt = np.empty((h, w, 3), np.float32)
        asphalt[:] = ASPHALT_BGR
        grain = cv2.GaussianBlur(rng.normal(0, 9, (h, w)).astype(np.float32), (0, 0), 0.6)
        asphalt += grain[..., None]
        hatch = np.zeros((h, w), np.uint8)
        step = max(6, w // 22)
        thick = max(1, w // 200)
        for offset in range(-h, w + h, step) if self.spec.hatched else ():
            cv2.line(hatch, (offset, 0), (offset + h, h), 255, thick)
            cv2.line(hatch, (offset, h), (offset + h, 0), 255, thick)
        cv2.polylines(hatch, [np.round(poly).astype(np.int32)], True, 255, 2 * thick + 1)
        yellow = np.array((40, 190, 225), np.float32)
        hatch_f = (hatch.astype(np.float32) / 255.0)[..., None]
        asphalt = asphalt * (1 - hatch_f) + yellow * hatch_f
        inside = (lane_mask > 0)[..., None]
        return np.where(inside, asphalt, world).astype(np.float32)

    def _blobs(self, shape: tuple[int, int], sigma: float, level: float, soft: float = 0.0) -> FloatImage:
        noise = self._rng.normal(0, 1, shape).astype(np.float32)
        smooth = np.asarray(cv2.GaussianBlur(noise, (0, 0), sigma), dtype=np.float32)
        smooth /= float(smooth.std()) + 1e-6
        mask = (smooth > level).astype(np.float32)
        blurred = cv2.GaussianBlur(mask, (0, 0), soft if soft > 0 else sigma * 0.3)
        return np.asarray(blurred, dtype=np.float32)

    def _lamp_pools(self) -> FloatImage:
        w, h = self.spec.width, self.spec.height
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        pools = np.zeros((h, w), np.float32)
        for cx, cy in ((0.25, 0.55), (0.75, 0.5), (0.5, 0.9)):
            d2 = ((xs - cx * w) / (0.22 * w)) ** 2 + ((ys - cy * h) / (0.18 * h)) ** 2
            pools += np.exp(-d2)
        return pools

    def _daylight(self, t: float) -> float:
        spec = self.spec
        level = 1.0
        if Condition.LIGHTING_DRIFT in spec.conditions:
            level *= 1.0 + 0.35 * math.sin(2 * math.pi * t / max(spec.duration_s, 1.0))
        if Condition.DUSK_NIGHT in spec.conditions and t >= spec.night_from_s:
            ramp = min(1.0, (t - spec.night_from_s) / max(1.0, 0.3 * spec.duration_s))
            level *= 1.0 - 0.96 * ramp
        return level

    def _illumination(self, t: float) -> FloatImage:
        spec = self.spec
        w, h = spec.width, spec.height
        light = np.full((h, w), self._daylight(t), np.float32)
        if Condition.CLOUD_SHADOWS in spec.conditions:
            ox = int((t * 0.02 * w) % (2 * w))
            oy = int((t * 0.005 * h) % h)
            light *= 1.0 - 0.55 * self._clouds[oy : oy + h, ox : ox + w]
        if Condition.TREE_SHADOWS in spec.conditions:
            sway = np.array([[1, 0, 0.03 * w * math.sin(t / 2.0)], [0, 1, 0]], dtype=np.float32)
            leaves = cv2.warpAffine(self._leaves, sway, (w, h), borderMode=cv2.BORDER_REFLECT)
            canopy = np.zeros((h, w), np.float32)
            canopy[:, : int(0.55 * w)] = 1.0
            light *= 1.0 - 0.6 * leaves * cv2.GaussianBlur(canopy, (0, 0), 0.05 * w)
        color = np.ones((h, w, 3), np.float32) * light[..., None]
        if Condition.STREET_LIGHTS in spec.conditions and t >= spec.street_lights_on_s:
            sodium = np.array((0.35, 0.75, 1.0), np.float32)
            color += 0.5 * self._lamps[..., None] * sodium
        if Condition.HEADLIGHT_SWEEPS in spec.conditions:
            phase = (t % 30.0) / 4.0
            if phase < 1.0:
                ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
                cx, cy = (0.1 + 0.8 * phase) * w, 0.7 * h
                beam = np.exp(-(((xs - cx) / (0.15 * w)) ** 2 + ((ys - cy) / (0.2 * h)) ** 2))
                color += 1.5 * beam[..., None]
        return color

    def _camera(self, scene: FloatImage, rng: np.random.Generator, t: float | None) -> Image:
        spec = self.spec
        w, h = spec.width, spec.height
        mean = float(scene.mean())
        gain = float(np.clip(120.0 / max(mean, 1e-3), 0.8, 16.0))
        image = scene * gain
        sigma = 1.5 * math.sqrt(gain)
        if t is not None and Condition.RAIN in spec.conditions:
            image *= 0.85
            streaks = np.zeros((h, w), np.float32)
            for _ in range(int(0.15 * w)):
                x, y = rng.integers(0, w), rng.integers(0, h)
                length = int(rng.integers(h // 20 + 2, h // 8 + 3))
                cv2.line(streaks, (int(x), int(y)), (int(x) + length // 6, int(y) + length), 1.0, 1)
            image += 45.0 * cv2.GaussianBlur(streaks, (0, 0), 0.6)[..., None]
            sigma *= 1.5
        image += rng.normal(0, sigma, (h, w, 1)).astype(np.float32)
        frame: Image = np.clip(image, 0, 255).astype(np.uint8)
        if t is not None and Condition.CAMERA_SHAKE in spec.conditions:
            dx, dy = rng.uniform(-0.012, 0.012, 2) * w
            angle = float(rng.uniform(-0.3, 0.3))
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            matrix[:, 2] += (dx, dy)
            shaken = cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
            frame = np.asarray(shaken, dtype=np.uint8)
        return frame

    def _lane_point(self, u: float, v: float) -> tuple[float, float, float]:
        """Pixel position and local lane width at lane coordinates (u across, v along)."""
        (x0, y0), (x1, _), (x2, y2), (x3, _) = lane_polygon(self.spec.width, self.spec.height)
        left = x0 + (x3 - x0) * v
        right = x1 + (x2 - x1) * v
        return left + (right - left) * u, y0 + (y2 - y0) * v, right - left

    def _draw_objects(self, albedo: FloatImage, t: float) -> None:
        for vehicle in self.spec.vehicles:
            start, end = vehicle.arrive_s - vehicle.move_s, vehicle.leave_s + vehicle.move_s
            if not start <= t < end:
                continue
            if t < vehicle.arrive_s:
                offset = (vehicle.arrive_s - t) / vehicle.move_s
            elif t >= vehicle.leave_s:
                offset = (t - vehicle.leave_s) / vehicle.move_s
            else:
                offset = 0.0
            self._draw_vehicle(albedo, vehicle.u, vehicle.v + 0.8 * offset, vehicle.color_bgr)
        for crosser in self.spec.crossers:
            total = crosser.cross_s + crosser.pause_s
            if not crosser.start_s <= t < crosser.start_s + total:
                continue
            elapsed = t - crosser.start_s
            half = crosser.cross_s / 2
            if elapsed < half:
                progress = elapsed / crosser.cross_s
            elif elapsed < half + crosser.pause_s:
                progress = 0.5
            else:
                progress = (elapsed - crosser.pause_s) / crosser.cross_s
            u = -0.3 + 1.6 * progress
            if crosser.is_vehicle:
                self._draw_vehicle(albedo, u, crosser.v, crosser.color_bgr)
            else:
                self._draw_person(albedo, u, crosser.v, crosser.color_bgr)

    def _draw_vehicle(
        self, albedo: FloatImage, u: float, v: float, color: tuple[float, float, float]
    ) -> None:
        x, y, lane_w = self._lane_point(u, min(v, 1.3))
        half_w, length = 0.3 * lane_w, 0.55 * lane_w
        top, bottom = int(y - length / 2), int(y + length / 2)
        left, right = int(x - half_w), int(x + half_w)
        cv2.ellipse(
            albedo,
            (int(x), bottom),
            (int(half_w * 1.1), max(2, int(length * 0.12))),
            0,
            0,
            360,
            (30, 30, 30),
            -1,
        )
        cv2.rectangle(albedo, (left, top), (right, bottom), color, -1)
        edge = tuple(0.6 * c for c in color)
        cv2.rectangle(albedo, (left, top), (right, bottom), edge, max(1, int(lane_w / 60)))
        glass = (70.0, 60.0, 55.0)
        cv2.rectangle(
            albedo,
            (left + int(0.15 * half_w), top + int(0.12 * length)),
            (right - int(0.15 * half_w), top + int(0.38 * length)),
            glass,
            -1,
        )
        cv2.rectangle(
            albedo,
            (left + int(0.2 * half_w), top + int(0.7 * length)),
            (right - int(0.2 * half_w), top + int(0.85 * length)),
            glass,
            -1,
        )
        wheel = (max(1, int(0.12 * half_w)), max(1, int(0.1 * length)))
        for wx in (left, right):
            for wy in (top + int(0.2 * length), bottom - int(0.2 * length)):
                cv2.ellipse(albedo, (wx, wy), wheel, 0, 0, 360, (15, 15, 15), -1)

    def _draw_person(self, albedo: FloatImage, u: float, v: float, color: tuple[float, float, float]) -> None:
        x, y, lane_w = self._lane_point(u, v)
        body_h, body_w = 0.18 * lane_w, 0.05 * lane_w
        cv2.rectangle(albedo, (int(x - body_w), int(y - body_h)), (int(x + body_w), int(y)), color, -1)
        cv2.circle(albedo, (int(x), int(y - body_h - body_w)), max(1, int(body_w)), (80, 110, 150), -1)


def write_scene(spec: SceneSpec, directory: Path) -> tuple[Path, Path, Path]:
    """Write `<name>.avi` (MJPG), `<name>.truth.json` (ground truth), `<name>.lane.json` (the
    SPEC 11 LANE.json) and `<name>.reference.png` (the calibrated clear lane)."""
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
    reference_path = directory / f"{spec.name}.reference.png"
    # Through the same JPEG coding as the video, as `firelane calibrate` would capture it.
    _, coded = cv2.imencode(".jpg", renderer.reference(), [cv2.IMWRITE_JPEG_QUALITY, 90])
    decoded = cv2.imdecode(coded, cv2.IMREAD_COLOR)
    if decoded is None or not cv2.imwrite(str(reference_path), decoded):
        raise RuntimeError(f"cannot write the reference image {reference_path}")
    return video_path, truth_path, reference_path


def standard_scenes(
    seed: int = 1, width: int = 320, height: int = 180, dwell_s: float = 20.0, clear_s: float = 5.0
) -> list[SceneSpec]:
    """One scene per condition of issue 6, each with a vehicle standing past the dwell."""
    base = SceneSpec("base", seed=seed, width=width, height=height, dwell_s=dwell_s, clear_s=clear_s)
    parked = (Vehicle(arrive_s=20.0, leave_s=60.0),)
    pause_s = 0.6 * dwell_s
    return [
        replace(base, name="plain", vehicles=parked),
        replace(base, name="lighting_drift", conditions=(Condition.LIGHTING_DRIFT,), vehicles=parked),
        replace(base, name="cloud_shadows", conditions=(Condition.CLOUD_SHADOWS,), vehicles=parked),
        replace(
            base,
            name="tree_shadows",
            conditions=(Condition.TREE_SHADOWS,),
            vehicles=(Vehicle(20.0, 60.0, u=0.35),),
        ),
        replace(
            base,
            name="dusk_night",
            conditions=(Condition.DUSK_NIGHT, Condition.STREET_LIGHTS),
            duration_s=120.0,
            street_lights_on_s=30.0,
            vehicles=(Vehicle(50.0, 95.0),),
        ),
        replace(
            base,
            name="headlight_sweeps",
            conditions=(Condition.DUSK_NIGHT, Condition.HEADLIGHT_SWEEPS),
            vehicles=parked,
        ),
        replace(base, name="rain", conditions=(Condition.RAIN,), vehicles=parked),
        replace(base, name="camera_shake", conditions=(Condition.CAMERA_SHAKE,), vehicles=parked),
        replace(base, name="asphalt_vehicle", vehicles=(Vehicle(20.0, 60.0, color_bgr=ASPHALT_BGR),)),
        replace(base, name="present_at_start", vehicles=(Vehicle(0.0, 40.0, move_s=0.0),)),
        replace(
            base,
            name="night_rain_everything",
            conditions=(
                Condition.DUSK_NIGHT,
                Condition.STREET_LIGHTS,
                Condition.HEADLIGHT_SWEEPS,
                Condition.RAIN,
                Condition.CAMERA_SHAKE,
            ),
            vehicles=(Vehicle(20.0, 60.0, color_bgr=ASPHALT_BGR, u=0.6),),
        ),
        replace(base, name="half_on_the_lane", vehicles=(Vehicle(20.0, 60.0, u=0.95, v=0.5),)),
        replace(
            base,
            name="passers_by",
            duration_s=120.0,
            crossers=(
                Crosser(5.0),
                Crosser(20.0, pause_s=pause_s, v=0.7),
                Crosser(40.0, cross_s=3.0, is_vehicle=True),
                Crosser(
                    60.0, cross_s=4.0, pause_s=pause_s, is_vehicle=True, v=0.6, color_bgr=(200, 200, 200)
                ),
                Crosser(90.0, cross_s=8.0, v=0.3),
            ),
        ),
    ]


def fault_scenes(seed: int = 1, width: int = 320, height: int = 180) -> list[SceneSpec]:
    """One scene per lens / stream fault, each 30 s long in the middle of a 90 s clear scene."""
    base = SceneSpec("base", seed=seed, width=width, height=height)
    return [
        replace(base, name=f"fault_{kind}", faults=(FaultWindow(kind, 30.0, 60.0),)) for kind in FaultKind
    ]


def long_stay_scene(seed: int = 1, width: int = 320, height: int = 180) -> SceneSpec:
    """A vehicle parked for three hours while day drifts into a street-lit night, one frame
    every 10 s: it must stay blocked (never fade into the background) and clear when it goes."""
    return SceneSpec(
        "long_stay",
        seed=seed,
        width=width,
        height=height,
        fps=0.1,
        duration_s=4 * 3600.0,
        dwell_s=180.0,
        clear_s=30.0,
        conditions=(
            Condition.LIGHTING_DRIFT,
            Condition.CLOUD_SHADOWS,
            Condition.DUSK_NIGHT,
            Condition.STREET_LIGHTS,
        ),
        night_from_s=1.5 * 3600.0,
        street_lights_on_s=2.5 * 3600.0,
        vehicles=(Vehicle(600.0, 600.0 + 3 * 3600.0, move_s=10.0),),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory to write scenes into")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--long", action="store_true", help="also write the 4-hour long-stay scene")
    args = parser.parse_args(argv)
    specs = standard_scenes(args.seed, args.width, args.height)
    if args.long:
        specs.append(long_stay_scene(args.seed, args.width, args.height))
    for spec in specs:
        video, _, _ = write_scene(spec, args.out)
        print(video)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
