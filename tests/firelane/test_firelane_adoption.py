"""Taking into the reference what stood through a light switch, once it has left (issue 12)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane import CameraPipeline, FirelaneEventName, LaneConfig

Image = npt.NDArray[np.uint8]
SIZE = (320, 180)
LANE = LaneConfig("lane", ((40.0, 175.0), (280.0, 175.0), (200.0, 30.0), (120.0, 30.0)), 20.0, 10.0)
BOX = ((130, 90), (190, 130))


def _day(rng: np.random.Generator, texture: npt.NDArray[np.float32], box: bool) -> Image:
    """Textured, coloured asphalt by day; the box is red with a dark rim."""
    frame = np.asarray((70.0, 90.0, 120.0), np.float32) * (1.0 + 0.2 * texture[..., None])
    if box:
        cv2.rectangle(frame, *BOX, (20.0, 20.0, 90.0), -1)
        cv2.rectangle(
            frame, (BOX[0][0] + 3, BOX[0][1] + 3), (BOX[1][0] - 3, BOX[1][1] - 3), (40.0, 40.0, 170.0), -1
        )
    return np.clip(frame + rng.normal(0.0, 2.0, frame.shape), 0, 255).astype(np.uint8)


def _infrared(rng: np.random.Generator, box: bool) -> Image:
    """Grey and flat under the camera's lamp, with an infrared camera's strong sensor noise."""
    frame = np.full((SIZE[1], SIZE[0]), 100.0, np.float32)
    if box:
        cv2.rectangle(frame, *BOX, 40.0, -1)
        cv2.rectangle(frame, (BOX[0][0] + 3, BOX[0][1] + 3), (BOX[1][0] - 3, BOX[1][1] - 3), 170.0, -1)
    noisy = np.clip(frame + rng.normal(0.0, 10.0, frame.shape), 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR), np.uint8)


def test_a_stay_through_the_switch_to_infrared_is_cleared_once_it_leaves_a_noisy_flat_lane() -> None:
    """What stood is taken into the infrared reference as the mean of the frames after it left:
    a single frame's noise, adopted, read as texture no later frame matched, and the cells
    where the box had stood stayed "occupied" for ever (the held-out 80 m lane's stay)."""
    rng = np.random.default_rng(5)
    texture = cv2.GaussianBlur(rng.normal(0.0, 1.0, (SIZE[1], SIZE[0])).astype(np.float32), (0, 0), 1.0)
    texture /= float(texture.std())
    pipeline = CameraPipeline([LANE], 0.0, [_day(rng, texture, box=False)])
    events = []
    for t in range(170):
        frame = _day(rng, texture, box=t >= 10) if t < 50 else _infrared(rng, box=t < 100)
        events += [(e.name, t) for e in pipeline.frame(float(t), frame)]
    assert [name for name, _ in events] == [FirelaneEventName.LANE_BLOCKED, FirelaneEventName.LANE_CLEARED]
    assert 28 <= events[0][1] <= 40
    assert 100 + 10 <= events[1][1] <= 100 + 10 + 10
