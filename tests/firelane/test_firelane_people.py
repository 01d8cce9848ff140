"""A person standing in a lane for longer than the dwell is not an obstruction (issue 12)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from analytics.firelane import CameraPipeline, FirelaneEventName, LaneConfig

Image = npt.NDArray[np.uint8]
SIZE = (320, 180)
# A narrow lane receding up the image: 120 px wide at the bottom, 40 px at the top.
LANE = LaneConfig("lane", ((100.0, 175.0), (220.0, 175.0), (180.0, 20.0), (140.0, 20.0)), 20.0, 10.0)
FOOT_Y = 110  # where the lane is about 86 px (21 cells) wide


def _frame(
    rng: np.random.Generator, texture: npt.NDArray[np.float32], width_px: int, height_px: int
) -> Image:
    """Textured asphalt, and an object standing on it centred in the lane (none if 0 wide):
    a dark lower part and a coloured upper part, as a person's legs and coat or a box stack."""
    frame = np.asarray((90.0, 95.0, 100.0), np.float32) * (1.0 + 0.2 * texture[..., None])
    if width_px:
        left, top = 160 - width_px // 2, FOOT_Y - height_px
        cv2.rectangle(frame, (left, top), (left + width_px, FOOT_Y), (40.0, 45.0, 50.0), -1)
        cv2.rectangle(frame, (left, top), (left + width_px, top + height_px // 2), (160.0, 60.0, 40.0), -1)
    return np.clip(frame + rng.normal(0.0, 2.0, frame.shape), 0, 255).astype(np.uint8)


def _events(width_px: int, height_px: int) -> list[tuple[FirelaneEventName, float]]:
    """What a camera reports while the object stands from t=10 to t=60 (dwell 20 s)."""
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 1.0, (SIZE[1], SIZE[0])).astype(np.float32)
    texture = np.asarray(cv2.GaussianBlur(noise, (0, 0), 1.0), np.float32)
    texture /= float(texture.std())
    pipeline = CameraPipeline([LANE], 0.0, [_frame(rng, texture, 0, 0)])
    events = []
    for t in range(90):
        standing = 10 <= t < 60
        frame = _frame(rng, texture, width_px if standing else 0, height_px)
        events += [(e.name, float(t)) for e in pipeline.frame(float(t), frame)]
    return events


def test_a_person_standing_still_for_longer_than_the_dwell_is_not_reported() -> None:
    """A person 20 px wide and 64 tall, on a lane 86 px wide there: at the grid's resolution
    (4 px cells, 3x3 statistics) they read about a quarter of its width, over the 0.15 that
    blocks, but their shape (far taller than wide, narrow for the lane) is no obstruction's."""
    assert _events(20, 64) == []


@pytest.mark.parametrize(
    ("name", "width_px", "height_px"),
    [("a box stack as wide as tall", 40, 36), ("a car seen from behind", 56, 44)],
)
def test_what_is_wide_for_its_height_still_blocks(name: str, width_px: int, height_px: int) -> None:
    events = _events(width_px, height_px)
    kinds = [kind for kind, _ in events]
    assert kinds == [FirelaneEventName.LANE_BLOCKED, FirelaneEventName.LANE_CLEARED], name
    assert 10 + 20 <= events[0][1] <= 10 + 20 + 10
    assert 60 + 10 <= events[1][1] <= 60 + 10 + 10
