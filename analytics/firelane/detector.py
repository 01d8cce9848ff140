"""Per-lane obstruction from one frame compared with a clear-lane reference of its lighting.

The comparison works on illumination-invariant structure, not on brightness: each frame is
downscaled to a working width, registered to the reference by phase correlation (camera shake),
band-passed and divided by its local mean (so gain, offset, smooth shadows, dusk and street
lights cancel), and compared cell by cell with normalised cross-correlation. A cell is occupied
when the lane structure the reference shows there (markings, kerbs, joints, texture) is hidden,
or when strong new structure appears on a cell the reference shows as flat.

Only cells occupied for `stationary_s` count (people, bicycles, rain and passing shadows move
on), and a lane's figure is its obstruction: the largest share of its width blocked at any
cross-section (`geometry.CrossSections`), not the share of its area.

There is one reference per lighting regime (daylight, infrared night). A missing one is learned
from the first frames of that regime; cells that were occupied when the regime switched (a car
standing through dusk) are learned as "untrusted": they count as occupied while they still look
as learned, and are only taken into the reference once they have changed and stayed changed.
A camera's very first daylight reference (no calibration) is checked against each lane's
surface model (`surface`): what is not road in it is learned untrusted the same way, so a car
standing there from the first frame is reported, and cleared when it leaves.
References adapt slowly, and only on cells confirmed clear for a while, so a vehicle parked for
hours never becomes background.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane.errors import FrameSizeError, LaneGeometryError
from analytics.firelane.geometry import (
    CrossSections,
    LaneAxis,
    UprightShape,
    cell_weights,
    runs_across,
    validate_polygon,
    with_headroom,
)
from analytics.firelane.regime import LightRegime, RegimeTracker, frame_regime
from analytics.firelane.surface import suspected_obstructions

Image = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]
BoolGrid = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Tuning of the structure comparison; defaults suit 360p-1080p CCTV at 1 fps."""

    work_width_px: int = 640
    cell_px: int = 4
    fine_sigma_px: float = 0.9
    coarse_sigma_px: float = 3.0
    mean_floor: float = 12.0
    min_cell_coverage: float = 0.5
    textured_energy: float = 0.0025
    occupied_ncc: float = 0.35
    new_structure_ratio: float = 4.0
    faint_energy: float = 0.0004
    decorrelated_ncc: float = 0.2
    max_shift_frac: float = 0.08
    adapt_ncc: float = 0.7
    adapt_after_samples: int = 20
    adapt_rate: float = 0.02
    width_bins: int = 24
    far_end_headroom_frac: float = 0.35
    stationary_s: float = 5.0
    stable_ncc: float = 0.5
    gap_s: float = 1.5
    learn_frames: int = 3
    adopt_after_samples: int = 5
    left_share: float = 0.25
    settled_share: float = 0.9
    chroma_change: float = 0.15
    chroma_sigma_cells: float = 4.0
    chroma_max_ncc: float = 0.7
    # A person standing still is not an obstruction (issue 12): see `geometry.UprightShape`.
    upright: UprightShape = field(default_factory=UprightShape)


@dataclass(frozen=True, slots=True)
class ObstructionParams:
    """Per lane: what counts as blocked (issue 12).

    Args:
        blocked_width_frac: share of the lane's width (at one cross-section) that, once taken
            by something standing, blocks the lane. 0.15 of a 5 m lane is 0.75 m; as measured
            (bins of the width, a cell taken off each side) a stack of boxes 1.4 m wide reads
            0.12-0.42, a car 0.3-0.6, and a person standing still 0.08-0.25; on a lane receding
            up the image a person's shape is left out (`geometry.UprightShape`), on one across
            it someone standing for longer than the dwell is still reported.
        min_length_frac: how long along the lane (in lane widths, in the image) the occupied
            structure must be; a thin line (a shadow's edge) never blocks.
        band_frac: length of the stretch of lane (in lane widths) one cross-section's
            obstruction is gathered over; parts of one object (roof, bumper) are in it.
        lane_axis: whether the lane recedes up the image or runs across it (cross-sections
            are then columns); `auto` reads it from the polygon (`geometry.runs_across`).
    """

    blocked_width_frac: float = 0.15
    min_length_frac: float = 0.1
    band_frac: float = 1.0
    lane_axis: LaneAxis = LaneAxis.AUTO


@dataclass(frozen=True, slots=True)
class LaneOccupancy:
    """`obstruction`: worst cross-section's blocked share of the width (0..1);
    `area`: share of the polygon's area occupied."""

    obstruction: float
    area: float


@dataclass(frozen=True, slots=True)
class OccupancyMeasurement:
    """One frame's result per lane, the shake it compensated and the regime it was read in."""

    lanes: Mapping[str, LaneOccupancy]
    shift_px: tuple[float, float]
    regime: LightRegime
    learning: bool = False

    @property
    def occupancy(self) -> dict[str, float]:
        return {lane_id: lane.obstruction for lane_id, lane in self.lanes.items()}


def to_work_image(frame: Image, work_size: tuple[int, int]) -> FloatImage:
    """Downscale a BGR (or grey) frame to the working size as float32 BGR. Colour is kept:
    a brown box on grey asphalt can have the asphalt's brightness but not its colour."""
    small = cv2.resize(frame, work_size, interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    return small.astype(np.float32)


CHANNEL_MEAN = np.full((1, 3), 1.0 / 3.0, np.float32)


class _Reference:
    """One regime's clear-lane structure, with its adaptation and trust state per cell."""

    def __init__(
        self, image: FloatImage, structure: FloatImage, energy: FloatImage, untrusted: BoolGrid
    ) -> None:
        self.image = image
        self.structure = structure
        self.energy = energy
        self.untrusted = untrusted
        # What was seen standing at the switch, before the hull grew it: whether it has left
        # is judged on these cells, not on the lane the hull took in around it.
        self.stood: BoolGrid = np.zeros(energy.shape, bool)
        self.clear_run = np.zeros(energy.shape, np.int32)
        self.changed_run = np.zeros(energy.shape, np.int32)
        # The structure seen since each untrusted blob was left, summed per pixel: a blob is
        # adopted as the mean of those frames, never as one frame (see _adopt).
        self.left_sum = np.zeros_like(structure)
        self.left_count = np.zeros(structure.shape[:2], np.float32)
        # The regime whose reference saw the untrusted blobs as occupied (the one before).
        self.origin: LightRegime | None = None


class LaneOccupancyDetector:
    """Measures the obstruction of every lane of one camera, frame by frame (clock-injected)."""

    def __init__(
        self,
        frame_size: tuple[int, int],
        lanes: Mapping[str, Sequence[Sequence[float]]],
        references: Mapping[LightRegime, Image] | None = None,
        params: DetectorParams | None = None,
        lane_params: Mapping[str, ObstructionParams] | None = None,
        confirmed: bool = True,
    ) -> None:
        """`confirmed=False`: the references are estimates nobody confirmed clear (`eval`
        without `--reference`), checked against each lane's surface like learned ones."""
        self.params = p = params or DetectorParams()
        width, height = frame_size
        self.frame_size = frame_size
        work_width = min(p.work_width_px, width)
        rows = max(1, round(height * work_width / width) // p.cell_px)
        cols = max(1, work_width // p.cell_px)
        self.grid_shape = (rows, cols)
        self.work_size = (cols * p.cell_px, rows * p.cell_px)
        self._sections: dict[str, CrossSections] = {}
        self._surfaces: dict[str, BoolGrid] = {}
        self._grounds: dict[str, BoolGrid] = {}
        self._lane_params = {
            lane_id: (lane_params or {}).get(lane_id, ObstructionParams()) for lane_id in lanes
        }
        in_lanes = np.zeros(self.grid_shape, bool)
        for lane_id, polygon in lanes.items():
            try:
                points = validate_polygon(polygon, width, height)
            except LaneGeometryError as exc:
                raise LaneGeometryError(f"lane {lane_id!r}: {exc}") from exc
            scale = (self.work_size[0] / width, self.work_size[1] / height)
            axis = self._lane_params[lane_id].lane_axis
            across = (
                runs_across(cell_weights(points, scale, self.grid_shape, p.cell_px))
                if axis is LaneAxis.AUTO
                else axis is LaneAxis.ACROSS
            )
            analysed = with_headroom(points, p.far_end_headroom_frac, across)
            weights = cell_weights(analysed, scale, self.grid_shape, p.cell_px)
            weights[weights < p.min_cell_coverage] = 0.0
            if not weights.any():
                raise LaneGeometryError(f"lane {lane_id!r}: polygon covers no detector cell")
            self._sections[lane_id] = CrossSections.of(weights, p.width_bins, across)
            self._surfaces[lane_id] = weights >= 0.5
            self._grounds[lane_id] = cell_weights(points, scale, self.grid_shape, p.cell_px) >= 0.5
            in_lanes |= weights > 0
        self._roi = self._lane_roi(in_lanes)
        reg_size = (self.work_size[0] // 2, self.work_size[1] // 2)
        self._reg_size = reg_size
        self._window = cv2.createHanningWindow(reg_size, cv2.CV_32F)
        self._regime = RegimeTracker()
        self._references: dict[LightRegime, _Reference] = {}
        for regime, image in (references or {}).items():
            if image.shape[1] != width or image.shape[0] != height:
                raise FrameSizeError(
                    f"the {regime} reference is {image.shape[1]}x{image.shape[0]} but frames are {width}x{height}"
                )
            work = to_work_image(image, self.work_size)
            self._references[regime] = self._reference(work) if confirmed else self._unconfirmed(work, regime)
        self._learning: list[FloatImage] = []
        self._learning_since_ts = 0.0
        self._occupied_since = np.full(self.grid_shape, np.inf)
        self._last_occupied = np.full(self.grid_shape, -np.inf)
        self._stationary = np.zeros(self.grid_shape, bool)
        self._previous: tuple[FloatImage, FloatImage, FloatImage] | None = None
        self._last_ts: float | None = None
        self._last: OccupancyMeasurement | None = None

    @property
    def regimes(self) -> tuple[LightRegime, ...]:
        """The regimes a reference is known (calibrated or learned) for."""
        return tuple(self._references)

    def measure(self, frame: Image, ts: float = 0.0) -> OccupancyMeasurement:
        """Compare one frame taken at `ts` with the reference of its regime."""
        height, width = frame.shape[:2]
        if (width, height) != self.frame_size:
            raise FrameSizeError(
                f"frame is {width}x{height} but the reference is "
                f"{self.frame_size[0]}x{self.frame_size[1]}; re-calibrate the camera"
            )
        regime = self._regime.update(frame)
        image = to_work_image(frame, self.work_size)
        reference = self._references.get(regime)
        if reference is None:
            return self._learn(regime, image, ts)
        image, shift = self._register(reference.image, image)
        structure = self._structure(image)
        energy = self._cell_mean(structure**2)
        cross = self._cell_mean(structure * reference.structure)
        ncc = cross / np.sqrt(energy * reference.energy + 1e-12)
        p = self.params
        textured = reference.energy >= p.textured_energy
        hidden = textured & (ncc < p.occupied_ncc)
        # New structure counts on textured cells too: a small box stack beside a kerb line
        # leaves the line visible (the correlation stays positive) but adds strong edges.
        new_structure = energy > p.new_structure_ratio * np.maximum(reference.energy, p.textured_energy / 4)
        # Weaker evidence on faintly textured cells: the asphalt's grain no longer correlates
        # (a brown box on grey asphalt hides it). Sensor noise does that too, but noise is
        # never still from frame to frame, so it never counts as standing (see _still).
        decorrelated = (reference.energy >= p.faint_energy) & (ncc < p.decorrelated_ncc)
        chroma = self._chroma_shift(image, reference.image)
        # A flat object of its own colour (a brown box at the far end, a few cells big) hides
        # the lane's texture only partly at the cells' scale: its colour is the evidence, where
        # the texture no longer matches well. Coloured light (sodium lamps, dusk) shifts colour
        # too but keeps the texture, so it never passes the correlation test.
        recoloured = (
            (np.linalg.norm(chroma, axis=2) > p.chroma_change)
            & (reference.energy >= p.faint_energy)
            & (ncc < p.chroma_max_ncc)
        )
        changed = hidden | new_structure | decorrelated | recoloured
        # Untrusted cells were learned with something standing on them: occupied while they
        # still look as learned, taken into the reference once changed for a while.
        still = self._still(structure, energy, chroma)
        standing = self._adopt(reference, structure, changed, still) & self._still_occupied_in_origin(
            reference, structure, energy
        )
        occupied = np.where(reference.untrusted, standing, changed)
        occupied = self._drop_isolated(occupied & self._roi)
        stationary = self._stationary_cells(ts, occupied & still)
        self._adapt(reference, structure, ~occupied & ~reference.untrusted & (ncc >= p.adapt_ncc))
        lanes = {}
        for lane_id, sections in self._sections.items():
            lp = self._lane_params[lane_id]
            standing = sections.without_upright(stationary, p.upright)
            cells = self._narrowed(standing, recoloured, sections.across)
            lanes[lane_id] = LaneOccupancy(
                sections.obstruction(cells, lp.band_frac, lp.min_length_frac),
                sections.area(cells),
            )
        self._last = OccupancyMeasurement(lanes, shift, regime)
        return self._last

    def _learn(self, regime: LightRegime, image: FloatImage, ts: float) -> OccupancyMeasurement:
        """Collect frames of a regime without a reference; learn it from their median. Until
        then the last figures hold, so a standing blockage is not dropped by the switch."""
        if not self._learning:
            self._learning_since_ts = ts
        self._learning.append(image)
        if len(self._learning) >= self.params.learn_frames:
            median = np.median(np.stack(self._learning), axis=0).astype(np.float32)
            self._learning.clear()
            if self._last is None:
                # The first frames this camera has seen: nothing says the lane was clear.
                first = self._references[regime] = self._unconfirmed(median, regime)
                # What is suspected was there in every frame learned from: it has stood since
                # the first, so the dwell is not lengthened by the frames spent learning.
                self._occupied_since[first.untrusted] = self._learning_since_ts
                self._last_occupied[first.untrusted] = ts
            else:
                learned = self._reference(median, self._standing_regions())
                learned.stood = self._narrowed(
                    self._stationary, np.zeros(self.grid_shape, bool), across=False
                )
                learned.origin = self._last.regime
                self._references[regime] = learned
        if self._last is None:
            empty = {lane_id: LaneOccupancy(0.0, 0.0) for lane_id in self._sections}
            return OccupancyMeasurement(empty, (0.0, 0.0), regime, learning=True)
        return OccupancyMeasurement(self._last.lanes, (0.0, 0.0), regime, learning=True)

    def _standing_regions(self) -> BoolGrid:
        """What stood on the lane at the switch, whole: the convex hull of each standing blob
        (a car's flat roof has no structure of its own, but is not road either), grown a cell."""
        mask = np.zeros(self.grid_shape, np.uint8)
        # Narrowed first, as obstruction sees it: hulls of the widened cells would take in
        # lane around the car, which still looks as learned once it has gone.
        narrowed = self._narrowed(self._stationary, np.zeros(self.grid_shape, bool), across=False)
        blobs = cv2.dilate(narrowed.astype(np.uint8), np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(blobs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            cv2.fillConvexPoly(mask, cv2.convexHull(contour), 1)
        return cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0

    def _unconfirmed(self, image: FloatImage, regime: LightRegime) -> _Reference:
        """A reference from frames nobody confirmed clear: what departs from each lane's surface
        model (`surface.suspected_obstructions`) is learned untrusted, as a stay through a light
        switch is: raised up the image by its own height (whatever stands rises above its
        footprint, past the far end of the lane too), lowered by a third of it and grown two
        cells (its foot and its outline's blend with the road, which the surface model does not
        take, are learned untrusted too).

        By day only: an infrared image has no colour, and its lamp's fall-off along the lane
        darkens the far end as a car would (tuning scenes read a car there in 2 of 9 clear
        lanes), so an infrared start still learns what it sees.
        """
        reference = self._reference(image)
        if regime is not LightRegime.DAY:
            return reference
        rows, cols = self.grid_shape
        colour = np.asarray(cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA), np.float32)
        suspected = np.zeros(self.grid_shape, bool)
        for lane_id, sections in self._sections.items():
            lp = self._lane_params[lane_id]
            suspected |= suspected_obstructions(
                colour,
                reference.energy,
                self._surfaces[lane_id],
                self._grounds[lane_id],
                sections,
                lp.band_frac,
                lp.min_length_frac,
            )
        if not suspected.any():
            return reference
        raised: BoolGrid = np.zeros(self.grid_shape, bool)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(suspected.astype(np.uint8), connectivity=8)
        for label in range(1, count):
            height = int(stats[label, cv2.CC_STAT_HEIGHT])
            blob = (labels == label).astype(np.uint8)
            # Anchored at the kernel's top: each cell of the blob takes the `height` above it;
            # and a third of it below (bumpers, tyres and the shadow under it are grey and dark,
            # as road is, so the surface model misses the foot of what stands).
            raised |= cv2.dilate(blob, np.ones((height + 1, 1), np.uint8), anchor=(0, 0)) > 0
            down = max(2, height // 3)
            raised |= cv2.dilate(blob, np.ones((down + 1, 1), np.uint8), anchor=(0, down)) > 0
        reference.untrusted = self._grown(self._grown(raised)) & self._roi
        reference.stood = suspected
        return reference

    def _reference(self, image: FloatImage, untrusted: BoolGrid | None = None) -> _Reference:
        structure = self._structure(image)
        trust = untrusted if untrusted is not None else np.zeros(self.grid_shape, bool)
        return _Reference(image, structure, self._cell_mean(structure**2), trust)

    def _lane_roi(self, in_lanes: BoolGrid) -> BoolGrid:
        return in_lanes

    def _register(self, reference: FloatImage, image: FloatImage) -> tuple[FloatImage, tuple[float, float]]:
        ref_small = cv2.transform(
            cv2.resize(reference, self._reg_size, interpolation=cv2.INTER_AREA), CHANNEL_MEAN
        )
        small = cv2.transform(cv2.resize(image, self._reg_size, interpolation=cv2.INTER_AREA), CHANNEL_MEAN)
        # Copies: OpenCV 5.0's phaseCorrelate multiplies its inputs by the window in place.
        (dx, dy), response = cv2.phaseCorrelate(ref_small.copy(), small.copy(), self._window)
        dx, dy = 2.0 * dx, 2.0 * dy
        limit = self.params.max_shift_frac * self.work_size[0]
        if response < 0.05 or abs(dx) > limit or abs(dy) > limit or (abs(dx) < 0.2 and abs(dy) < 0.2):
            return image, (0.0, 0.0)
        shift = np.array([[1, 0, -dx], [0, 1, -dy]], dtype=np.float32)
        aligned = cv2.warpAffine(
            image, shift, self.work_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        to_frame_x = self.frame_size[0] / self.work_size[0]
        to_frame_y = self.frame_size[1] / self.work_size[1]
        return aligned.astype(np.float32), (dx * to_frame_x, dy * to_frame_y)

    def _structure(self, image: FloatImage) -> FloatImage:
        """Band-pass divided by the local mean: contrast that gain, offset and shade cancel from."""
        p = self.params
        fine = cv2.GaussianBlur(image, (0, 0), p.fine_sigma_px)
        coarse = cv2.GaussianBlur(image, (0, 0), p.coarse_sigma_px)
        return ((fine - coarse) / (coarse + p.mean_floor)).astype(np.float32)

    def _cell_mean(self, image: FloatImage) -> FloatImage:
        """Mean over each cell (and over the colour channels)."""
        if image.ndim == 3:
            image = np.asarray(cv2.transform(image, CHANNEL_MEAN), np.float32)
        rows, cols = self.grid_shape
        cells = cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA)
        # Each cell's figure over its 3x3 neighbourhood: small cells, steadier statistics.
        return cv2.blur(cells, (3, 3)).astype(np.float32)

    @staticmethod
    def _drop_isolated(occupied: BoolGrid) -> BoolGrid:
        """A lone occupied cell is noise (a raindrop, a glint); real objects span neighbours."""
        neighbours = cv2.filter2D(
            occupied.astype(np.float32), -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT
        )
        return np.asarray(occupied & (neighbours >= 3.0))

    @staticmethod
    def _narrowed(cells: BoolGrid, sharp: BoolGrid, across: bool) -> BoolGrid:
        """One cell taken off each side across the lane, except on `sharp` cells (found from
        each cell's own colour): the 3x3 neighbourhood of the structure statistics widens
        everything by that much, which at the far end of a long lane would make a walker look
        as wide as a car."""
        kernel = np.ones((3, 1) if across else (1, 3), np.uint8)
        eroded = cv2.erode(cells.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        return (eroded > 0) | (cells & sharp)

    def _still(self, structure: FloatImage, energy: FloatImage, chroma: FloatImage) -> BoolGrid:
        """Cells whose structure matches the previous frame's: what moves (a car driving
        through, a walker) never stands long enough to count, however slowly it goes. A flat
        cell (a box's face) has no structure to match, only noise: its colour must hold."""
        previous = self._previous
        self._previous = (structure, energy, chroma)
        if previous is None or previous[0].shape != structure.shape:
            return np.ones(self.grid_shape, bool)
        p = self.params
        ncc = self._cell_mean(structure * previous[0]) / np.sqrt(energy * previous[1] + 1e-12)
        flat = np.maximum(energy, previous[1]) < p.textured_energy
        same_colour = np.linalg.norm(chroma - previous[2], axis=2) < p.chroma_change / 2
        return np.asarray((ncc >= p.stable_ncc) | (flat & same_colour))

    def _chroma_shift(self, image: FloatImage, reference: FloatImage) -> FloatImage:
        """Per cell, how the frame's colour differs from the reference's, brightness taken out
        (log ratios less their mean over the channels: gain and shade cancel) and smooth
        changes of the light's colour over the image taken out too (a blur over cells)."""
        rows, cols = self.grid_shape
        cells = cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA)
        reference_cells = cv2.resize(reference, (cols, rows), interpolation=cv2.INTER_AREA)
        shift = np.log(cells + 8.0) - np.log(reference_cells + 8.0)
        shift -= shift.mean(axis=2, keepdims=True)
        smooth = cv2.GaussianBlur(shift, (0, 0), self.params.chroma_sigma_cells)
        return np.asarray(shift - smooth, np.float32)

    def _stationary_cells(self, ts: float, occupied: BoolGrid) -> BoolGrid:
        """Cells occupied (bridging gaps up to gap_s) for at least stationary_s."""
        p = self.params
        # At a slow sample rate (one frame per 10 s) consecutive samples are the gap to bridge.
        gap_s = max(p.gap_s, 1.5 * (ts - self._last_ts)) if self._last_ts is not None else p.gap_s
        self._last_ts = ts
        recent = (ts - self._last_occupied) <= gap_s
        self._occupied_since = np.where(occupied & ~recent, ts, self._occupied_since)
        self._last_occupied = np.where(occupied, ts, self._last_occupied)
        held = occupied | ((ts - self._last_occupied) <= gap_s)
        self._occupied_since = np.where(held, self._occupied_since, np.inf)
        self._stationary = held & (ts - self._occupied_since >= p.stationary_s)
        return self._stationary

    def _still_occupied_in_origin(
        self, reference: _Reference, structure: FloatImage, energy: FloatImage
    ) -> BoolGrid:
        """Untrusted cells must also differ from the reference of the regime they were found
        occupied in: a car does (its edges are new in any light), a lane that was only
        mistaken for occupied in deep dusk does not, so it cannot stay "standing" for ever."""
        origin = self._references.get(reference.origin) if reference.origin is not None else None
        if origin is None or not reference.untrusted.any():
            return np.ones(self.grid_shape, bool)
        p = self.params
        ncc = self._cell_mean(structure * origin.structure) / np.sqrt(energy * origin.energy + 1e-12)
        new = energy > p.new_structure_ratio * np.maximum(origin.energy, p.textured_energy / 4)
        hidden = (origin.energy >= p.faint_energy) & (ncc < p.occupied_ncc)
        return np.asarray(new | hidden)

    def _adopt(
        self, reference: _Reference, structure: FloatImage, changed: BoolGrid, still: BoolGrid
    ) -> BoolGrid:
        """Untrusted cells still standing: those of blobs that mostly look as learned. A blob
        that has mostly changed (what stood there left) is taken into the reference whole once
        it has been still for adopt_after_samples, as the mean of those frames, so no ghost edge
        is left behind."""
        standing = np.zeros(self.grid_shape, bool)
        if not reference.untrusted.any():
            return standing
        count, labels = cv2.connectedComponents(reference.untrusted.astype(np.uint8), connectivity=8)
        adopt = np.zeros(self.grid_shape, bool)
        leaving = np.zeros(self.grid_shape, bool)
        for label in range(1, count):
            blob = labels == label
            core = blob & reference.stood
            left = float(changed[core if core.any() else blob].mean()) >= self.params.left_share
            if not left:
                standing |= blob & ~changed
            # Counted only once what left has gone: frames of it driving off are not the lane.
            settled = left and float(still[blob].mean()) >= self.params.settled_share
            if settled:
                leaving |= blob
            reference.changed_run[blob] = reference.changed_run[blob] + 1 if settled else 0
            if settled and int(reference.changed_run[blob].max()) >= self.params.adopt_after_samples:
                adopt |= blob
        # One frame's sensor noise, adopted, would be "texture" that no later frame matches: on
        # faint cells (the far end of a long lane in infrared, where a flat grey cell is always
        # "still") it read as decorrelated and stood there for ever, so the lane never cleared.
        pixels = self._cells_to_pixels(self._grown(leaving))
        reference.left_sum[pixels] += structure[pixels]
        reference.left_count[pixels] += 1.0
        reference.left_sum[~pixels] = 0.0
        reference.left_count[~pixels] = 0.0
        if adopt.any():
            mask = self._cells_to_pixels(self._grown(adopt))
            mean = reference.left_sum[mask] / reference.left_count[mask][:, None]
            if reference.origin is None:
                # Suspected from the surface alone, a blob may miss part of what stood (its
                # bumper, a grey door): the changed cells it touches left with it.
                beside = self._cells_to_pixels(self._grown(self._touching(adopt, changed))) & ~mask
                reference.structure[beside] = structure[beside]
            reference.structure[mask] = mean
            reference.energy = self._cell_mean(reference.structure**2)
            reference.untrusted &= ~adopt
            reference.changed_run[adopt] = 0
        return standing

    @staticmethod
    def _touching(cells: BoolGrid, changed: BoolGrid) -> BoolGrid:
        """The changed cells connected to `cells` through changed cells."""
        _, labels = cv2.connectedComponents((changed | cells).astype(np.uint8), connectivity=8)
        touched = np.unique(labels[cells])
        return np.asarray(np.isin(labels, touched[touched > 0]) & changed & ~cells)

    @staticmethod
    def _grown(cells: BoolGrid) -> BoolGrid:
        """The cells and their neighbours (the 3x3 statistics reach that far)."""
        return np.asarray(cv2.dilate(cells.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)

    def _adapt(self, reference: _Reference, structure: FloatImage, clear: BoolGrid) -> None:
        p = self.params
        reference.clear_run = np.where(clear, reference.clear_run + 1, 0).astype(np.int32)
        confirmed = reference.clear_run >= p.adapt_after_samples
        if p.adapt_rate <= 0 or not confirmed.any():
            return
        mask = cv2.resize(confirmed.astype(np.uint8), self.work_size, interpolation=cv2.INTER_NEAREST)
        cv2.accumulateWeighted(structure, reference.structure, p.adapt_rate, mask)
        reference.energy = self._cell_mean(reference.structure**2)

    def _cells_to_pixels(self, cells: BoolGrid) -> npt.NDArray[np.bool_]:
        return cv2.resize(cells.astype(np.uint8), self.work_size, interpolation=cv2.INTER_NEAREST).astype(
            bool
        )


def regime_of(image: Image) -> LightRegime:
    """The regime a calibrated reference image belongs to."""
    return frame_regime(image)
