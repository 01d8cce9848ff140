"""Lane polygons in frame pixel coordinates, and their cells on the detector's working grid."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane.errors import LaneGeometryError

Point = tuple[float, float]


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
