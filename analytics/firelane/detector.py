"""Per-lane occupancy from one frame compared with a calibrated clear-lane reference.

The comparison works on illumination-invariant structure, not on brightness: each frame is
downscaled to a working width, registered to the reference by phase correlation (camera shake),
band-passed and divided by its local mean (so gain, offset, smooth shadows, dusk and street
lights cancel), and compared cell by cell with normalised cross-correlation. A cell is occupied
when the lane structure the reference shows there (markings, kerbs, joints, texture) is hidden,
or when strong new structure appears on a cell the reference shows as flat. The reference
adapts slowly, and only on cells that have been confirmed clear for a while, so a vehicle
parked for hours never becomes background.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane.errors import FrameSizeError, LaneGeometryError
from analytics.firelane.geometry import cell_weights, validate_polygon

Image = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Tuning of the structure comparison; defaults suit 720p-1080p CCTV at 1 fps."""

    work_width_px: int = 320
    cell_px: int = 10
    fine_sigma_px: float = 0.9
    coarse_sigma_px: float = 3.0
    mean_floor: float = 12.0
    min_cell_coverage: float = 0.5
    textured_energy: float = 0.0025
    occupied_ncc: float = 0.35
    new_structure_ratio: float = 4.0
    max_shift_frac: float = 0.08
    adapt_ncc: float = 0.7
    adapt_after_samples: int = 20
    adapt_rate: float = 0.02


@dataclass(frozen=True, slots=True)
class OccupancyMeasurement:
    """One frame's result: occupancy per lane (0..1) and the shake it compensated."""

    occupancy: Mapping[str, float]
    shift_px: tuple[float, float]


def to_work_gray(frame: Image, work_size: tuple[int, int]) -> FloatImage:
    """Downscale a BGR (or grey) frame to the working size as float32 grey."""
    small = cv2.resize(frame, work_size, interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return small.astype(np.float32)


class LaneOccupancyDetector:
    """Measures the occupancy of every lane of one camera against its clear-lane reference."""

    def __init__(
        self,
        reference: Image,
        lanes: Mapping[str, Sequence[Sequence[float]]],
        params: DetectorParams | None = None,
    ) -> None:
        self.params = p = params or DetectorParams()
        height, width = reference.shape[:2]
        self.frame_size = (width, height)
        rows = max(1, round(height * p.work_width_px / width) // p.cell_px)
        cols = max(1, p.work_width_px // p.cell_px)
        self.grid_shape = (rows, cols)
        self.work_size = (cols * p.cell_px, rows * p.cell_px)
        self._lane_weights: dict[str, FloatImage] = {}
        for lane_id, polygon in lanes.items():
            try:
                points = validate_polygon(polygon, width, height)
            except LaneGeometryError as exc:
                raise LaneGeometryError(f"lane {lane_id!r}: {exc}") from exc
            scale = (self.work_size[0] / width, self.work_size[1] / height)
            weights = cell_weights(points, scale, self.grid_shape, p.cell_px)
            weights[weights < p.min_cell_coverage] = 0.0
            if not weights.any():
                raise LaneGeometryError(f"lane {lane_id!r}: polygon covers no detector cell")
            self._lane_weights[lane_id] = weights
        self._window = cv2.createHanningWindow(self.work_size, cv2.CV_32F)
        self._ref_gray = to_work_gray(reference, self.work_size)
        self._ref_structure = self._structure(self._ref_gray)
        self._ref_energy = self._cell_mean(self._ref_structure**2)
        self._clear_run = np.zeros(self.grid_shape, dtype=np.int32)

    def measure(self, frame: Image) -> OccupancyMeasurement:
        """Compare one frame with the reference; adapts the reference on long-clear cells."""
        height, width = frame.shape[:2]
        if (width, height) != self.frame_size:
            raise FrameSizeError(
                f"frame is {width}x{height} but the reference is "
                f"{self.frame_size[0]}x{self.frame_size[1]}; re-calibrate the camera"
            )
        gray = to_work_gray(frame, self.work_size)
        gray, shift = self._register(gray)
        structure = self._structure(gray)
        energy = self._cell_mean(structure**2)
        cross = self._cell_mean(structure * self._ref_structure)
        ncc = cross / np.sqrt(energy * self._ref_energy + 1e-12)
        p = self.params
        textured = self._ref_energy >= p.textured_energy
        hidden = textured & (ncc < p.occupied_ncc)
        new_structure = ~textured & (
            energy > p.new_structure_ratio * np.maximum(self._ref_energy, p.textured_energy / 4)
        )
        occupied = self._drop_isolated(hidden | new_structure)
        self._adapt(structure, ~occupied & (ncc >= p.adapt_ncc))
        occupancy = {
            lane_id: float((weights * occupied).sum() / weights.sum())
            for lane_id, weights in self._lane_weights.items()
        }
        return OccupancyMeasurement(occupancy, shift)

    def _register(self, gray: FloatImage) -> tuple[FloatImage, tuple[float, float]]:
        # Copies: OpenCV 5.0's phaseCorrelate multiplies its inputs by the window in place.
        (dx, dy), response = cv2.phaseCorrelate(self._ref_gray.copy(), gray.copy(), self._window)
        limit = self.params.max_shift_frac * self.work_size[0]
        if response < 0.05 or abs(dx) > limit or abs(dy) > limit or (dx == 0 and dy == 0):
            return gray, (0.0, 0.0)
        shift = np.array([[1, 0, -dx], [0, 1, -dy]], dtype=np.float32)
        aligned = cv2.warpAffine(
            gray, shift, self.work_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        to_frame_x = self.frame_size[0] / self.work_size[0]
        to_frame_y = self.frame_size[1] / self.work_size[1]
        return aligned.astype(np.float32), (dx * to_frame_x, dy * to_frame_y)

    def _structure(self, gray: FloatImage) -> FloatImage:
        """Band-pass divided by the local mean: contrast that gain, offset and shade cancel from."""
        p = self.params
        fine = cv2.GaussianBlur(gray, (0, 0), p.fine_sigma_px)
        coarse = cv2.GaussianBlur(gray, (0, 0), p.coarse_sigma_px)
        return ((fine - coarse) / (coarse + p.mean_floor)).astype(np.float32)

    def _cell_mean(self, image: FloatImage) -> FloatImage:
        rows, cols = self.grid_shape
        return cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32)

    @staticmethod
    def _drop_isolated(occupied: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """A lone occupied cell is noise (a raindrop, a glint); real objects span neighbours."""
        neighbours = cv2.filter2D(
            occupied.astype(np.float32), -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT
        )
        return occupied & (neighbours >= 2.0)

    def _adapt(self, structure: FloatImage, clear: npt.NDArray[np.bool_]) -> None:
        p = self.params
        self._clear_run = np.where(clear, self._clear_run + 1, 0).astype(np.int32)
        confirmed = self._clear_run >= p.adapt_after_samples
        if p.adapt_rate <= 0 or not confirmed.any():
            return
        mask = cv2.resize(confirmed.astype(np.uint8), self.work_size, interpolation=cv2.INTER_NEAREST).astype(
            bool
        )
        self._ref_structure[mask] += p.adapt_rate * (structure[mask] - self._ref_structure[mask])
        self._ref_energy = self._cell_mean(self._ref_structure**2)
