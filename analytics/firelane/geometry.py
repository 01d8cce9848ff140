"""Lane polygons in pixel coordinates, their cells on the detector's working grid, and their
cross-sections (the lane's own width at each row, which carries its perspective)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane.errors import LaneGeometryError

Point = tuple[float, float]
BoolGrid = npt.NDArray[np.bool_]


def validate_polygon(polygon: Sequence[Sequence[float]], width: int, height: int) -> list[Point]:
    """Check a lane polygon against a `width` x `height` frame; returns it as float pairs."""
    points: list[Point] = []
    for index, point in enumerate(polygon):
        if len(point) != 2:
            raise LaneGeometryError(f"polygon point {index} is {list(point)!r}, expected [x, y]")
        x, y = float(point[0]), float(point[1])
        if not (0.0 <= x <= width and 0.0 <= y <= height):
            raise LaneGeometryError(
                f"polygon point {index} ({x:g}, {y:g}) is outside the {width}x{height} frame"
            )
        points.append((x, y))
    if len(points) < 3:
        raise LaneGeometryError(f"a lane polygon needs at least 3 points, got {len(points)}")
    area_px2 = abs(cv2.contourArea(np.asarray(points, dtype=np.float32)))
    if area_px2 < 1e-3 * width * height:
        raise LaneGeometryError(
            f"lane polygon area {area_px2:.0f} px² is under 0.1 % of the frame; check the points"
        )
    return points


def with_far_end_headroom(points: Sequence[Point], headroom_frac: float) -> list[Point]:
    """The polygon grown upwards at its far end by `headroom_frac` of its width there.

    An installer draws the lane on the ground; whatever stands on its far end rises above that
    outline in the image (a car's body, a stack of boxes), and would otherwise be cut off
    where it matters most. Returns the convex hull of the polygon and its raised far edge.
    """
    array = np.asarray(points, dtype=np.float32)
    top = float(array[:, 1].min())
    near_top = array[array[:, 1] <= top + 0.02 * (float(array[:, 1].max()) - top) + 1.0]
    width = max(float(np.ptp(array[:, 0])) * 0.05, float(np.ptp(near_top[:, 0])))
    lift = headroom_frac * width
    raised = near_top - np.array([0.0, lift], np.float32)
    raised[:, 1] = np.maximum(raised[:, 1], 0.0)
    hull = cv2.convexHull(np.vstack([array, raised]))
    return [(float(x), float(y)) for x, y in hull.reshape(-1, 2)]


def cell_weights(
    points: Sequence[Point], scale: tuple[float, float], grid_shape: tuple[int, int], cell_px: int
) -> npt.NDArray[np.float32]:
    """Fraction of each working-grid cell covered by the polygon (rows x cols), the polygon
    being mapped from frame to working pixels by `scale` (x, y)."""
    rows, cols = grid_shape
    mask = np.zeros((rows * cell_px, cols * cell_px), dtype=np.uint8)
    # fillPoly with shift=3 takes coordinates in 1/8 px: sub-pixel accurate edges.
    scaled = np.round(np.asarray(points, dtype=np.float64) * np.asarray(scale) * 8).astype(np.int32)
    cv2.fillPoly(mask, [scaled], 255, lineType=cv2.LINE_8, shift=3)
    coverage = cv2.resize(mask.astype(np.float32) / 255.0, (cols, rows), interpolation=cv2.INTER_AREA)
    return coverage.astype(np.float32)


@dataclass(frozen=True, slots=True)
class CrossSections:
    """A lane's cells arranged by cross-section.

    Each cell row of the grid is a cross-section of the lane; its width (in cells) is the
    polygon's own width there, so it shrinks towards the far end exactly as the lane does.
    Every cell maps onto the bins of the lane's width it covers (0 = left edge, 1 = right), so
    occupied cells anywhere can be projected onto "how much of the width is taken".

    Attributes:
        weights: polygon coverage of each cell (rows x cols), 0 outside the lane.
        width_cells: the lane's width at each row, in cells (0 where the lane is not).
        spans: rows x cols x bins, True where a lane cell covers a bin of the width.
    """

    weights: npt.NDArray[np.float32]
    width_cells: npt.NDArray[np.float32]
    spans: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, weights: npt.NDArray[np.float32], bins: int) -> CrossSections:
        width = weights.sum(axis=1).astype(np.float32)
        before = np.cumsum(weights, axis=1) - weights
        safe = np.maximum(width, 1e-6)[:, None]
        start, end = before / safe, (before + weights) / safe
        edges = np.linspace(0.0, 1.0, bins + 1, dtype=np.float32)
        spans = (start[..., None] < edges[None, None, 1:]) & (end[..., None] > edges[None, None, :-1])
        spans &= (weights > 0)[..., None]
        return cls(weights, width, spans)

    def obstruction(self, occupied: BoolGrid, band_frac: float, min_length_frac: float) -> float:
        """The largest fraction of the lane's width blocked at any cross-section.

        A bin of the width counts as blocked in the band of rows from a cross-section towards
        the camera (`band_frac` lane widths long) when occupied cells cover it over at least
        `min_length_frac` lane widths along the lane: a thin line (a shadow's edge, a crack in
        the reference) never blocks, a car, a van or a stack of boxes does, at any distance.
        """
        by_bin: npt.NDArray[np.bool_] = np.any(occupied[:, :, None] & self.spans, axis=1)
        rows = np.flatnonzero(self.width_cells > 0.5)
        if rows.size == 0 or not by_bin.any():
            return 0.0
        bins = by_bin.shape[1]
        occupied_rows = np.flatnonzero(by_bin.any(axis=1))
        best = 0.0
        last_row = int(rows[-1])
        for row in occupied_rows:
            width = float(self.width_cells[row])
            if width <= 0.5:
                continue
            band = by_bin[row : min(last_row + 1, row + max(1, round(band_frac * width)))]
            # At least two rows: one row of cells is a line (a shadow's edge), not an object.
            min_rows = max(2, round(min_length_frac * width))
            hit = band.any(axis=0)
            first = np.argmax(band, axis=0)
            last = band.shape[0] - 1 - np.argmax(band[::-1], axis=0)
            blocked = hit & (last - first + 1 >= min_rows)
            best = max(best, float(blocked.sum()) / bins)
        return best

    def area(self, occupied: BoolGrid) -> float:
        """The share of the polygon's area that is occupied (the old, area-based figure)."""
        return float((self.weights * occupied).sum() / max(float(self.weights.sum()), 1e-6))
