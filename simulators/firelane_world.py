"""A pinhole camera over a ground plane, for the fire-lane simulator: lanes in real perspective.

`LaneGeometry` places a camera (height, pitch, yaw, focal length) and a lane (a ground strip of
given width and length, straight ahead or at an angle). It maps image pixels to ground points,
so the ground texture (asphalt grain, hatching, kerbs) is drawn in metres and shrinks with
distance, and projects 3-D boxes (vehicles, boxes, people) into the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatImage = npt.NDArray[np.float32]
Point3 = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class LaneGeometry:
    """Camera and lane. World: X right, Y up, Z forward (metres), camera at (0, height, 0).

    The lane starts at ground point (x0_m, z0_m) and runs `length_m` along `heading_deg`
    (0 = straight away from the camera, positive = turning right).
    """

    name: str
    width: int = 640
    height: int = 360
    focal_frac: float = 1.05
    cam_height_m: float = 6.0
    pitch_deg: float = 14.0
    yaw_deg: float = 0.0
    x0_m: float = 0.0
    z0_m: float = 8.0
    length_m: float = 60.0
    lane_width_m: float = 5.0
    heading_deg: float = 0.0

    @property
    def focal_px(self) -> float:
        return self.focal_frac * self.width

    def scaled(self, width: int, height: int) -> LaneGeometry:
        """The same view at another resolution (same aspect ratio expected)."""
        from dataclasses import replace

        return replace(self, width=width, height=height)

    def _rotations(self) -> tuple[float, float, float, float]:
        yaw, pitch = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        return math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)

    def project(self, points: Sequence[Point3]) -> npt.NDArray[np.float64]:
        """World points -> pixel (u, v); points behind the camera come out far away."""
        cy_, sy_, cp, sp = self._rotations()
        out = np.empty((len(points), 2), np.float64)
        f = self.focal_px
        for index, (x, y, z) in enumerate(points):
            y -= self.cam_height_m
            x1, z1 = cy_ * x - sy_ * z, sy_ * x + cy_ * z
            y2, z2 = cp * y + sp * z1, -sp * y + cp * z1
            z2 = max(z2, 0.05)
            out[index] = (self.width / 2 + f * x1 / z2, self.height / 2 - f * y2 / z2)
        return out

    def ground_maps(self) -> tuple[FloatImage, FloatImage, FloatImage]:
        """Per pixel: ground X, ground Z (NaN above the horizon) and the pixel's footprint (m)."""
        cy_, sy_, cp, sp = self._rotations()
        f = self.focal_px
        vs, us = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        dx = (us + 0.5 - self.width / 2) / f
        dy = -(vs + 0.5 - self.height / 2) / f
        dz = np.ones_like(dx)
        y1 = cp * dy - sp * dz
        z1 = sp * dy + cp * dz
        wx = cy_ * dx + sy_ * z1
        wz = -sy_ * dx + cy_ * z1
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(y1 < -1e-4, -self.cam_height_m / y1, np.nan)
        gx, gz = t * wx, t * wz
        distance = t * np.sqrt(dx**2 + dy**2 + 1.0)
        footprint = distance / f / np.maximum(np.abs(y1) / np.sqrt(dx**2 + dy**2 + 1.0), 0.05)
        return gx.astype(np.float32), gz.astype(np.float32), footprint.astype(np.float32)

    def to_lane(self, gx: FloatImage, gz: FloatImage) -> tuple[FloatImage, FloatImage]:
        """Ground points -> lane coordinates: s along the lane from its start, d across (m)."""
        heading = math.radians(self.heading_deg)
        ox, oz = gx - self.x0_m, gz - self.z0_m
        s = ox * math.sin(heading) + oz * math.cos(heading)
        d = ox * math.cos(heading) - oz * math.sin(heading)
        return s.astype(np.float32), d.astype(np.float32)

    def lane_point(self, s: float, d: float, up: float = 0.0) -> Point3:
        """Lane coordinates (and a height) -> world point."""
        heading = math.radians(self.heading_deg)
        x = self.x0_m + s * math.sin(heading) + d * math.cos(heading)
        z = self.z0_m + s * math.cos(heading) - d * math.sin(heading)
        return (x, up, z)

    def lane_polygon(self) -> list[list[float]]:
        """The lane's outline in the image, clipped to the frame (what an installer draws)."""
        half = self.lane_width_m / 2
        corners = [
            self.lane_point(self.length_m, -half),
            self.lane_point(self.length_m, half),
            self.lane_point(0.0, half),
            self.lane_point(0.0, -half),
        ]
        outline = [(float(u), float(v)) for u, v in self.project(corners)]
        clipped = clip_to_frame(outline, self.width - 1.0, self.height - 1.0)
        return [[round(x, 1), round(y, 1)] for x, y in clipped]


def clip_to_frame(
    polygon: list[tuple[float, float]], max_x: float, max_y: float
) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clip of a polygon to [0, max_x] x [0, max_y]."""

    def clip(points: list[tuple[float, float]], axis: int, limit: float, keep_below: bool):  # type: ignore[no-untyped-def]
        result: list[tuple[float, float]] = []
        for index, current in enumerate(points):
            previous = points[index - 1]
            inside_c = (current[axis] <= limit) if keep_below else (current[axis] >= limit)
            inside_p = (previous[axis] <= limit) if keep_below else (previous[axis] >= limit)
            if inside_c != inside_p:
                frac = (limit - previous[axis]) / (current[axis] - previous[axis])
                point = (
                    previous[0] + frac * (current[0] - previous[0]),
                    previous[1] + frac * (current[1] - previous[1]),
                )
                result.append(point)
            if inside_c:
                result.append(current)
        return result

    points = polygon
    for axis, limit, below in ((0, 0.0, False), (0, max_x, True), (1, 0.0, False), (1, max_y, True)):
        points = clip(points, axis, limit, below)
    return points


@dataclass(frozen=True, slots=True)
class Box3:
    """An upright box in lane coordinates: centre (s, d), yaw relative to the lane, sizes in m."""

    s: float
    d: float
    length: float
    width: float
    bottom: float
    top: float
    color_bgr: tuple[float, float, float]
    ir: float
    yaw_deg: float = 0.0

    def corners(self, geometry: LaneGeometry) -> list[Point3]:
        yaw = math.radians(self.yaw_deg)
        ca, sa = math.cos(yaw), math.sin(yaw)
        points = []
        for up in (self.bottom, self.top):
            for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                da, db = a * self.length / 2, b * self.width / 2
                points.append(geometry.lane_point(self.s + da * ca - db * sa, self.d + da * sa + db * ca, up))
        return points


# Faces of a box by corner index (bottom 0-3, top 4-7), with a shade factor (sun from above).
BOX_FACES: tuple[tuple[tuple[int, int, int, int], float], ...] = (
    ((4, 5, 6, 7), 1.0),
    ((0, 1, 5, 4), 0.8),
    ((1, 2, 6, 5), 0.7),
    ((2, 3, 7, 6), 0.85),
    ((3, 0, 4, 7), 0.7),
)
