"""Lighting regime of a frame: colour daylight or the camera's grey infrared night.

Cameras switch to infrared at night; the image loses its colour and is lit by the camera's own
lamp, so it no longer matches a daylight reference. The regime is read from the frame itself
(colour saturation), and only a run of frames agreeing switches it, so one odd frame does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt


class LightRegime(StrEnum):
    DAY = "day"
    INFRARED = "ir"


@dataclass(frozen=True, slots=True)
class RegimePolicy:
    """`grey_saturation`: mean HSV saturation (0..1) under which a frame is infrared; a
    colour camera at night under street lights stays well above it (sodium light is orange).
    `switch_after`: consecutive frames of the other regime needed to switch."""

    grey_saturation: float = 0.04
    switch_after: int = 2


def frame_regime(frame: npt.NDArray[np.uint8], policy: RegimePolicy | None = None) -> LightRegime:
    """The regime one frame looks like (colour saturation of a small thumbnail)."""
    if frame.ndim != 3:
        return LightRegime.INFRARED
    small = cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA)
    saturation = float(cv2.cvtColor(small, cv2.COLOR_BGR2HSV)[..., 1].mean()) / 255.0
    limit = (policy or RegimePolicy()).grey_saturation
    return LightRegime.INFRARED if saturation < limit else LightRegime.DAY


class RegimeTracker:
    """The current regime, switched only by `switch_after` consecutive frames of the other."""

    def __init__(self, policy: RegimePolicy | None = None) -> None:
        self.policy = policy or RegimePolicy()
        self.regime: LightRegime | None = None
        self._other_run = 0

    def update(self, frame: npt.NDArray[np.uint8]) -> LightRegime:
        seen = frame_regime(frame, self.policy)
        if self.regime is None or seen is self.regime:
            self.regime = seen
            self._other_run = 0
            return seen
        self._other_run += 1
        if self._other_run >= self.policy.switch_after:
            self.regime = seen
            self._other_run = 0
        return self.regime
