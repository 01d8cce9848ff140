"""Scenario helpers: render simulator scenes once per test session and run the pipeline on them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from analytics.firelane import CameraPipeline, FirelaneEvent, HealthPolicy, LaneConfig
from drivers.camera import read_video_file
from simulators.firelane_scene import SceneSpec, write_scene


@dataclass(frozen=True)
class RenderedScene:
    spec: SceneSpec
    video: Path
    lane_file: Path
    reference: Path
    truth: dict[str, object]

    @property
    def lane(self) -> LaneConfig:
        raw = json.loads(self.lane_file.read_text())
        polygon = tuple((float(x), float(y)) for x, y in raw["polygon"])
        return LaneConfig("lane", polygon, float(raw["dwell_s"]), float(raw["clear_s"]))

    def references(self) -> list[npt.NDArray[np.uint8]]:
        """The calibrated references written with the scene (day, and infrared if any)."""
        paths = [
            self.reference,
            self.reference.with_name(self.reference.name.replace(".reference", ".reference_ir")),
        ]
        return [np.asarray(cv2.imread(str(path)), np.uint8) for path in paths if path.is_file()]

    def expected(self) -> list[tuple[str, float]]:
        events = self.truth["expected"]
        assert isinstance(events, list)
        return [(str(e["event"]), float(e["t"])) for e in events]

    def run(self, health: HealthPolicy | None = None) -> list[FirelaneEvent]:
        """Every event the camera pipeline reports over the whole video, at the video's times."""
        pipeline = CameraPipeline([self.lane], 0.0, self.references(), health_policy=health)
        events: list[FirelaneEvent] = []
        for t, image in read_video_file(self.video, sample_fps=1.0):
            events.extend(pipeline.frame(t, image))
        return events


def render(spec: SceneSpec, directory: Path, references: tuple[str, ...] = ("day",)) -> RenderedScene:
    video, truth, reference = write_scene(spec, directory, references)
    lane_file = directory / f"{spec.name}.lane.json"
    return RenderedScene(spec, video, lane_file, reference, json.loads(truth.read_text()))
