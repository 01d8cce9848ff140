"""What a clear lane's surface looks like, read from one image: for a camera nobody calibrated.

Without a reference confirmed clear, the first frames are all a detector has, and a car standing
in them would be learned as road. A lane's surface is what most of each cross-section shows
(asphalt), and its markings recur all along it; something standing on it is a compact patch,
confined to a stretch of the lane, whose colour or texture departs from both. Such patches,
wide enough to block, are suspected obstructions (`suspected_obstructions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane.geometry import CrossSections

BoolGrid = npt.NDArray[np.bool_]
FloatImage = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SurfaceParams:
    """What departs from a lane's surface model.

    Args:
        band_sections: cross-sections either side pooled into each one's surface model (the
            far end of a long lane has few cells per cross-section).
        chroma_dev: colour departure (log-ratio distance, brightness taken out) from the
            cross-section's median colour.
        texture_dev: departure of the log structure energy (a car's flat roof on grainy asphalt,
            its outline on flat asphalt); half of it also counts together with a brightness
            departure (`brightness_dev`, log), which alone is what a shadow is.
        lane_wide_share: an appearance (colour, brightness, texture) seen in at least this share
            of the lane's cross-sections is the lane's own (its asphalt, its markings at every
            blend with the asphalt), wherever it is seen.
        width_frac: share of the lane's width a suspected obstruction must take, at its
            cross-sections (median) and as `CrossSections.obstruction` reads it: more than a
            live obstruction needs (`ObstructionParams.blocked_width_frac`), since nothing
            confirms it but the one image (a manhole cover, a puddle, a patch of new asphalt).
        max_length_widths: longer than this along the lane (in lane widths) it is a line
            along it, not something standing on it.
        min_solidity: share of its convex hull its departing cells must fill.
    """

    band_sections: int = 1
    chroma_dev: float = 0.12
    texture_dev: float = 1.0
    brightness_dev: float = 0.35
    lane_wide_share: float = 0.5
    chroma_bin: float = 0.06
    brightness_bin: float = 0.2
    width_frac: float = 0.25
    max_length_widths: float = 2.0
    min_solidity: float = 0.5


def suspected_obstructions(
    colour: FloatImage,
    energy: FloatImage,
    surface: BoolGrid,
    ground: BoolGrid,
    sections: CrossSections,
    band_frac: float,
    min_length_frac: float,
    params: SurfaceParams | None = None,
) -> BoolGrid:
    """Cells of one lane (`surface`: the cells analysed, its polygon and the headroom above its
    far end) taken by patches that are not its surface: each patch whole (its convex hull),
    standing on the lane (its foot on `ground`, the polygon's own cells) and taking
    `width_frac` of the lane's width at some cross-section (`CrossSections.obstruction`).

    `colour` is each cell's mean BGR, `energy` its structure energy (as the detector reads it).
    """
    p = params or SurfaceParams()
    log_colour = np.log(np.asarray(colour, np.float32) + 8.0)
    brightness = log_colour.mean(axis=2)
    chroma = log_colour - brightness[..., None]
    texture = np.log(np.asarray(energy, np.float32) + 1e-5)
    across = sections.across
    grids = [chroma, brightness[..., None], texture[..., None]]
    if across:
        grids = [np.ascontiguousarray(g.transpose(1, 0, 2)) for g in grids]
        lane = np.ascontiguousarray(surface.T)
    else:
        lane = surface
    features = np.concatenate(grids, axis=2)
    # A cell off each side: the lane's edge lines blend there with the pavement beside them,
    # in a different mixture at every cross-section.
    inner = cv2.erode(lane.astype(np.uint8), np.ones((1, 3), np.uint8), borderValue=0) > 0
    # The lane's own appearances are read from its inner cells too: its edge cells blend the
    # asphalt with the pavement beside it all along the lane, and a white car on a lane between
    # grey paving (grey in its own shade) took that blend's appearance, so it was road.
    departs = _departs_from_sections(features, lane, p) & ~_lane_wide(features, inner, p) & inner
    if across:
        departs = np.ascontiguousarray(departs.T)
    return _wide_patches(departs, ground, sections, band_frac, min_length_frac, p)


def _departs_from_sections(features: FloatImage, lane: BoolGrid, p: SurfaceParams) -> BoolGrid:
    """Cells that depart from the median of their cross-section (and its neighbours)."""
    departs = np.zeros(lane.shape, bool)
    rows = np.flatnonzero(lane.any(axis=1))
    for row in rows:
        band = slice(max(0, row - p.band_sections), row + p.band_sections + 1)
        pooled = features[band][lane[band]]
        if pooled.shape[0] < 3:
            continue
        median = np.median(pooled, axis=0)
        delta = features[row] - median
        chroma = np.linalg.norm(delta[:, :3], axis=1)
        brightness = np.abs(delta[:, 3])
        texture = np.abs(delta[:, 4])
        departs[row] = (
            (chroma > p.chroma_dev)
            | (texture > p.texture_dev)
            | ((brightness > p.brightness_dev) & (texture > p.texture_dev / 2))
        )
    return departs


def _lane_wide(features: FloatImage, lane: BoolGrid, p: SurfaceParams) -> BoolGrid:
    """Cells whose appearance (or a neighbouring one, binned) recurs along most of the lane."""
    rows, cols = np.nonzero(lane)
    if rows.size == 0:
        return np.zeros(lane.shape, bool)
    cells = features[rows, cols]
    # Two chroma axes (the third is their negative sum), brightness and texture, binned.
    a = (cells[:, 0] - cells[:, 2]) / np.sqrt(2.0)
    b = (2.0 * cells[:, 1] - cells[:, 0] - cells[:, 2]) / np.sqrt(6.0)
    binned = np.stack(
        [
            np.floor(a / p.chroma_bin),
            np.floor(b / p.chroma_bin),
            np.floor(cells[:, 3] / p.brightness_bin),
        ],
        axis=1,
    ).astype(np.int64)
    sections = int(np.unique(rows).size)
    keys, inverse = np.unique(binned, axis=0, return_inverse=True)
    rows_of: dict[tuple[int, ...], set[int]] = {}
    for key_index, row in zip(inverse.ravel().tolist(), rows.tolist(), strict=True):
        rows_of.setdefault(tuple(keys[key_index].tolist()), set()).add(row)
    offsets = np.stack(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    wide_key = np.zeros(len(keys), bool)
    for key_index, key in enumerate(keys):
        found: set[int] = set()
        for neighbour in (key + offsets).tolist():
            found |= rows_of.get(tuple(neighbour), set())
        wide_key[key_index] = len(found) >= p.lane_wide_share * sections
    wide = np.zeros(lane.shape, bool)
    wide[rows, cols] = wide_key[inverse.ravel()]
    return wide


def _wide_patches(
    departs: BoolGrid,
    ground: BoolGrid,
    sections: CrossSections,
    band_frac: float,
    min_length_frac: float,
    p: SurfaceParams,
) -> BoolGrid:
    """The convex hulls of the departing patches wide enough to block
    and no longer along the lane than `max_length_widths` lane widths (a line along it is not
    something standing on it)."""
    # 4-connected: an edge line's blend a cell beside a car is not part of it.
    count, labels = cv2.connectedComponents(departs.astype(np.uint8), connectivity=4)
    suspected = np.zeros(departs.shape, bool)
    for label in range(1, count):
        blob = labels == label
        spanned = np.flatnonzero((blob.T if sections.across else blob).any(axis=1))
        if int(blob.sum()) < 4:
            continue
        widths = float(sections.rows_per_width[spanned].max())
        if spanned.size > p.max_length_widths * max(widths, 1.0):
            continue
        hull = np.zeros(departs.shape, np.uint8)
        points = cv2.findNonZero(blob.astype(np.uint8))
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        patch = hull > 0
        # Standing on the lane: the headroom above its far end is whatever lies beyond it (the
        # lane running on into the dark, a wall), whose cross-sections mix surfaces.
        foot = int(np.flatnonzero(patch.any(axis=1)).max())
        if not (patch[foot] & ground[foot]).any():
            continue
        # Something standing departs over most of its outline; crossing markings that depart
        # here and there (their blends at the near end) only enclose the lane between them.
        if float(blob.sum()) < p.min_solidity * float(patch.sum()):
            continue
        # Wide where it is, not only from its foot: an edge line's blend with the pavement,
        # slanted across the image, would take the width its columns span.
        lane_patch = patch.T if sections.across else patch
        share = lane_patch.sum(axis=1)[spanned] / np.maximum(sections.width_cells[spanned], 1.0)
        wide = float(np.median(share)) >= p.width_frac
        if wide and sections.obstruction(patch, band_frac, min_length_frac) >= p.width_frac:
            suspected |= patch
    return suspected
