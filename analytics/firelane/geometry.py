"""Lane polygons in pixel coordinates, their cells on the detector's working grid, and their
cross-sections (the lane's own width at each row, which carries its perspective)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane.errors import LaneGeometryError

Point = tuple[float, float]
BoolGrid = npt.NDArray[np.bool_]
_NEVER = np.iinfo(np.int32).max
_TAKEN = 0.5


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


class LaneAxis(StrEnum):
    """How a lane lies in the image: receding up it, running across it, or read from its shape."""

    AUTO = "auto"
    RECEDING = "receding"
    ACROSS = "across"


def with_headroom(points: Sequence[Point], headroom_frac: float, across: bool = False) -> list[Point]:
    """The polygon grown upwards by `headroom_frac` of the lane's width: at its far end for a
    receding lane, all along its far side for a lane running across the image.

    An installer draws the lane on the ground; whatever stands on its far end rises above that
    outline in the image (a car's body, a stack of boxes), and would otherwise be cut off
    where it matters most. Returns the convex hull of the polygon and its raised far edge.
    """
    array = np.asarray(points, dtype=np.float32)
    if across:
        # The lane's width in the image is its height: its area over its length.
        far_edge = array
        width = abs(cv2.contourArea(array)) / max(float(np.ptp(array[:, 0])), 1.0)
    else:
        top = float(array[:, 1].min())
        far_edge = array[array[:, 1] <= top + 0.02 * (float(array[:, 1].max()) - top) + 1.0]
        width = max(float(np.ptp(array[:, 0])) * 0.05, float(np.ptp(far_edge[:, 0])))
    raised = far_edge - np.array([0.0, headroom_frac * width], np.float32)
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


def runs_across(weights: npt.NDArray[np.float32]) -> bool:
    """Whether a lane (its cell coverage) runs across the image, left to right, rather than
    receding up it: its rows are then at least twice as long on average as it has rows.

    A receding lane is taller than wide in the image, or not much wider (a short, wide lane
    close to the camera); one seen from the side is a band across the frame. The polygon alone
    cannot tell the two apart in between, so a lane can also say which it is (`lane_axis`).
    """
    rows = int((weights.sum(axis=1) > 0.5).sum())
    return bool(rows > 0 and float(weights.sum()) / rows > 2.0 * rows)


@dataclass(frozen=True, slots=True)
class UprightShape:
    """A person's shape, standing on a lane receding up the image: far taller than wide in
    the image, and narrow for the lane.

    A person is not an obstruction, but measured at the working grid's resolution one standing
    still reads 0.17-0.21 of the lane's width (the cells and their 3x3 statistics add a cell
    or more to a body 0.3 m across), over the 0.15 that blocks. What must block is wide for its
    height in the image (boxes about as tall as wide, a car seen from behind wider) or wide
    outright (a car seen from above at the near end of a steep lane is tall in the image too,
    from its length, but takes a third of the width or more).

    Args:
        min_ratio: the blob's height over its width in the image (cells of standing structure,
            the 3x3 statistics' cell taken off each side of both) from which it is upright.
        min_rows: the height, so taken, a blob needs for its shape to be read at all (at the
            far end of a long lane anything is a few cells).
        max_width_frac: the share of the lane's width at its foot that it must stay under.
    """

    min_ratio: float = 2.2
    min_rows: int = 6
    max_width_frac: float = 0.3

    def matches(self, width_cells: int, height_cells: int, lane_width_cells: float) -> bool:
        """Whether a blob `width_cells` x `height_cells` (as standing, before narrowing) whose
        foot is where the lane is `lane_width_cells` wide is of this shape."""
        width, height = max(width_cells - 2, 1), height_cells - 2
        return (
            height >= self.min_rows
            and height >= self.min_ratio * width
            and width < self.max_width_frac * lane_width_cells
        )


@dataclass(frozen=True, slots=True)
class CrossSections:
    """A lane's cells arranged by cross-section, across the lane's own axis.

    A lane that recedes up the image has a cross-section per cell row, one that runs across
    it a cross-section per cell column (`across`; the grids below are then transposed, so a
    "row" is always a cross-section). Its width (in cells) is the polygon's own width there,
    so it shrinks towards the far end exactly as the lane does. Every cell maps onto the bins
    of the lane's width it covers (0 = one edge, 1 = the other), so occupied cells anywhere
    can be projected onto "how much of the width is taken".

    Attributes:
        weights: polygon coverage of each cell (rows x cols of the image grid), 0 outside.
        width_cells: the lane's width at each cross-section, in cells (0 where it is not).
        rows_per_width: how many cross-sections make one lane width along the lane there: the
            width itself where the lane runs straight up the image, less where it is slanted
            (a row then cuts it obliquely: longer than the lane is wide, and each row steps
            further along it).
        spans: cross-sections x cells x bins, the share of each bin of the width that each
            lane cell covers; a bin is taken when occupied cells cover at least half of it (a
            bin merely touched would widen everything by up to two bins).
        across: the lane runs across the image; cross-sections are the grid's columns.
    """

    weights: npt.NDArray[np.float32]
    width_cells: npt.NDArray[np.float32]
    spans: npt.NDArray[np.float32]
    rows_per_width: npt.NDArray[np.float32]
    across: bool = False

    @classmethod
    def of(cls, weights: npt.NDArray[np.float32], bins: int, across: bool | None = None) -> CrossSections:
        """`across=None` reads the lane's direction from its shape (`runs_across`)."""
        across = runs_across(weights) if across is None else across
        lane = np.ascontiguousarray(weights.T) if across else weights
        width = lane.sum(axis=1).astype(np.float32)
        before = np.cumsum(lane, axis=1) - lane
        safe = np.maximum(width, 1e-6)[:, None]
        start, end = before / safe, (before + lane) / safe
        edges = np.linspace(0.0, 1.0, bins + 1, dtype=np.float32)
        overlap = np.minimum(end[..., None], edges[None, None, 1:]) - np.maximum(
            start[..., None], edges[None, None, :-1]
        )
        spans = (np.clip(overlap, 0.0, None) * bins * (lane > 0)[..., None]).astype(np.float32)
        # The lane's centre line, and its slope in cells sideways per cross-section.
        present = width > 0.5
        centre = (lane * np.arange(lane.shape[1])[None, :]).sum(axis=1) / np.maximum(width, 1e-6)
        slope = np.zeros_like(width)
        if int(present.sum()) >= 2:
            rows = np.flatnonzero(present)
            smooth = np.interp(np.arange(len(width)), rows, centre[rows])
            slope = np.gradient(cv2.GaussianBlur(smooth.reshape(-1, 1), (1, 0), 3.0).ravel()).astype(
                np.float32
            )
        rows_per_width = (width / (1.0 + slope**2)).astype(np.float32)
        return cls(weights, width, spans, rows_per_width, across)

    def obstruction(self, occupied: BoolGrid, band_frac: float, min_length_frac: float) -> float:
        """The largest fraction of the lane's width blocked at any cross-section.

        A bin of the width counts as blocked in the band of cross-sections from one towards
        the camera (`band_frac` lane widths long) when occupied cells cover it over at least
        `min_length_frac` lane widths along the lane: a thin line (a shadow's edge, a crack in
        the reference) never blocks, a car, a van or a stack of boxes does, at any distance.

        On a receding lane, what stands rises straight up the image from where it touches the
        ground, so each blob of occupied cells is taken at its foot (its lowest row): it takes
        the width of its footprint, not of every cross-section its body covers in the image (a
        person standing on a slanted lane would otherwise sweep across a quarter of it).
        """
        by_bin, top_by_bin = self._across(occupied) if self.across else self._at_feet(occupied)
        rows = np.flatnonzero(self.width_cells > 0.5)
        if rows.size == 0 or not by_bin.any():
            return 0.0
        bins = by_bin.shape[1]
        best = 0.0
        last_row = int(rows[-1])
        for row in np.flatnonzero(by_bin.any(axis=1)):
            if self.width_cells[row] <= 0.5:
                continue
            length = float(self.rows_per_width[row])
            end = min(last_row + 1, row + max(1, round(band_frac * length)))
            band = by_bin[row:end]
            # At least two rows: one row of cells is a line (a shadow's edge), not an object.
            min_rows = max(2, round(min_length_frac * length))
            hit = band.any(axis=0)
            last = row + band.shape[0] - 1 - np.argmax(band[::-1], axis=0)
            first = top_by_bin[row:end].min(axis=0)
            blocked = hit & (last - first + 1 >= min_rows)
            best = max(best, float(blocked.sum()) / bins)
        return best

    def _across(self, occupied: BoolGrid) -> tuple[BoolGrid, npt.NDArray[np.int32]]:
        """Bins taken at each cross-section, and the first cross-section each is taken from,
        cell by cell (a lane across the image: up the image is across the lane)."""
        cells = occupied.T
        by_bin = np.einsum("rc,rcb->rb", cells.astype(np.float32), self.spans) >= _TAKEN
        index = np.arange(cells.shape[0], dtype=np.int32)[:, None]
        return by_bin, np.where(by_bin, index, _NEVER).astype(np.int32)

    def _at_feet(self, occupied: BoolGrid) -> tuple[BoolGrid, npt.NDArray[np.int32]]:
        """Bins taken at each cross-section by what stands with its foot there, and the top
        row of what takes each (how far it reaches along the lane in the image)."""
        shape = (self.spans.shape[0], self.spans.shape[2])
        by_bin = np.zeros(shape, bool)
        top_by_bin = np.full(by_bin.shape, _NEVER, np.int32)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(occupied.astype(np.uint8), connectivity=8)
        for label in range(1, count):
            top = int(stats[label, cv2.CC_STAT_TOP])
            foot = top + int(stats[label, cv2.CC_STAT_HEIGHT]) - 1
            columns = np.unique(np.flatnonzero((labels[top : foot + 1] == label).any(axis=0)))
            # Each column at the foot row, or at the nearest row where it is in the lane (the
            # lane's edge is slanted: a car's far corner reaches past it at the foot row).
            inside = self.spans[:, columns].sum(axis=2) > 0
            distance = np.where(inside, np.abs(np.arange(inside.shape[0])[:, None] - foot), _NEVER)
            nearest = distance.argmin(axis=0)
            valid = inside[nearest, np.arange(columns.size)]
            taken = self.spans[nearest[valid], columns[valid]].sum(axis=0) >= _TAKEN
            by_bin[foot] |= taken
            top_by_bin[foot] = np.where(taken, np.minimum(top_by_bin[foot], top), top_by_bin[foot])
        return by_bin, top_by_bin

    def without_upright(self, standing: BoolGrid, shape: UprightShape) -> BoolGrid:
        """`standing` less its blobs of a person's shape (`UprightShape`), on a lane receding up
        the image; one running across it is returned whole (a person seen side-on and a box
        stack 0.7 m long have the same outline there)."""
        if self.across or not standing.any():
            return standing
        count, labels, stats, _ = cv2.connectedComponentsWithStats(standing.astype(np.uint8), connectivity=8)
        kept = standing.copy()
        for label in range(1, count):
            top = int(stats[label, cv2.CC_STAT_TOP])
            height = int(stats[label, cv2.CC_STAT_HEIGHT])
            foot = min(top + height - 1, self.width_cells.shape[0] - 1)
            if shape.matches(int(stats[label, cv2.CC_STAT_WIDTH]), height, float(self.width_cells[foot])):
                kept[labels == label] = False
        return kept

    def area(self, occupied: BoolGrid) -> float:
        """The share of the polygon's area that is occupied (the old, area-based figure)."""
        return float((self.weights * occupied).sum() / max(float(self.weights.sum()), 1e-6))
