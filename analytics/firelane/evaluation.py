"""Scoring detected lane events against a scene's ground truth (precision, recall, delay)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """`event` is "blocked" or "cleared"; `t` seconds from the start of the video."""

    event: str
    t: float


@dataclass(frozen=True, slots=True)
class TruthEvent:
    event: str
    t: float
    on_lane_s: float


@dataclass(frozen=True, slots=True)
class SceneScore:
    predicted: int
    expected: int
    matched: int
    times_to_detect_s: tuple[float, ...]
    errors_s: tuple[float, ...]


def score_scene(
    predicted: Sequence[TimedEvent], expected: Sequence[TruthEvent], tolerance_s: float
) -> SceneScore:
    """Greedy one-to-one matching of same-kind events within `tolerance_s` of the truth.

    Time to detect runs from the vehicle coming onto the lane to the matched `blocked` event,
    so it includes the dwell; errors are detected minus expected times of matched events.
    """
    used: set[int] = set()
    times: list[float] = []
    errors: list[float] = []
    for truth in expected:
        best: int | None = None
        for index, event in enumerate(predicted):
            if index in used or event.event != truth.event:
                continue
            if abs(event.t - truth.t) <= tolerance_s and (
                best is None or abs(event.t - truth.t) < abs(predicted[best].t - truth.t)
            ):
                best = index
        if best is None:
            continue
        used.add(best)
        errors.append(predicted[best].t - truth.t)
        if truth.event == "blocked":
            times.append(predicted[best].t - truth.on_lane_s)
    return SceneScore(len(predicted), len(expected), len(used), tuple(times), tuple(errors))


@dataclass(frozen=True, slots=True)
class SuiteScore:
    scenes: int
    precision: float
    recall: float
    mean_time_to_detect_s: float | None
    mean_abs_error_s: float | None


def score_suite(scores: Sequence[SceneScore]) -> SuiteScore:
    predicted = sum(s.predicted for s in scores)
    expected = sum(s.expected for s in scores)
    matched = sum(s.matched for s in scores)
    times = [t for s in scores for t in s.times_to_detect_s]
    errors = [abs(e) for s in scores for e in s.errors_s]
    return SuiteScore(
        scenes=len(scores),
        precision=matched / predicted if predicted else 1.0,
        recall=matched / expected if expected else 1.0,
        mean_time_to_detect_s=sum(times) / len(times) if times else None,
        mean_abs_error_s=sum(errors) / len(errors) if errors else None,
    )
