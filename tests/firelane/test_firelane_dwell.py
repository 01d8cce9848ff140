"""The dwell state machine under a fake clock: blocked after dwell_s, cleared after clear_s."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from analytics.firelane import DwellPolicy, DwellStateMachine, LaneEventKind, LaneState

POLICY = DwellPolicy(dwell_s=180.0, clear_s=30.0, occupied_threshold=0.12, clear_threshold=0.06)


def run(samples: Iterable[tuple[float, float]], policy: DwellPolicy = POLICY) -> list[tuple[str, float]]:
    machine = DwellStateMachine(policy)
    events = []
    for ts, occupancy in samples:
        transition = machine.update(ts, occupancy)
        if transition is not None:
            events.append((str(transition.kind), transition.ts))
    return events


def occupancy_track(
    intervals: list[tuple[float, float]], end_s: float, level: float = 0.5
) -> list[tuple[float, float]]:
    """1-fps samples: `level` inside any (start, end) interval, 0 elsewhere."""
    return [
        (float(t), level if any(start <= t < end for start, end in intervals) else 0.0)
        for t in range(int(end_s))
    ]


def test_blocked_after_dwell_and_cleared_after_clear_time() -> None:
    events = run(occupancy_track([(100, 1000)], 1200))
    assert events == [("blocked", 280.0), ("cleared", 1030.0)]


@pytest.mark.parametrize("stay_s", [5, 60, 179])
def test_stays_shorter_than_the_dwell_never_alarm(stay_s: int) -> None:
    assert run(occupancy_track([(100, 100 + stay_s)], 600)) == []


def test_short_dips_are_bridged_but_long_gaps_restart_the_dwell() -> None:
    dips = [(100, 150), (153, 300)]
    assert run(occupancy_track(dips, 400))[0] == ("blocked", 280.0)
    gap = [(100, 150), (170, 400)]
    assert run(occupancy_track(gap, 500))[0] == ("blocked", 350.0)


def test_reoccupation_during_clearing_keeps_the_lane_blocked() -> None:
    events = run(occupancy_track([(0, 300), (310, 600)], 700))
    assert events == [("blocked", 180.0), ("cleared", 630.0)]


def test_levels_between_the_thresholds_hold_the_current_state() -> None:
    machine = DwellStateMachine(DwellPolicy(dwell_s=10, clear_s=5))
    for t in range(12):
        machine.update(float(t), 0.5)
    assert machine.state is LaneState.BLOCKED
    for t in range(12, 40):
        assert machine.update(float(t), 0.09) is None
    assert machine.state is LaneState.BLOCKED


def test_reset_forgets_a_pending_blockage_only() -> None:
    machine = DwellStateMachine(DwellPolicy(dwell_s=10, clear_s=5))
    machine.update(0.0, 0.5)
    machine.reset()
    assert machine.state is LaneState.CLEAR
    transitions = [machine.update(float(t), 0.5) for t in range(12)]
    assert [t.kind for t in transitions if t is not None] == [LaneEventKind.BLOCKED]
    machine.reset()
    assert machine.state is LaneState.BLOCKED


def test_policy_rejects_inverted_thresholds() -> None:
    with pytest.raises(ValueError):
        DwellPolicy(occupied_threshold=0.05, clear_threshold=0.1)
