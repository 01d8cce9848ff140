"""fire_confirmed (correlation), dual_control_violation (sequence), fire_lane_blocked (per lane)."""

from __future__ import annotations

import pytest

from analytics.alerts import Severity
from analytics.records import DeviceKind
from analytics.rules.defaults import default_rules
from tests.rules.scenario import Campus, device

K = DeviceKind
ZONE = "zone:b1/lab-2"


def lab() -> Campus:
    return Campus(
        [
            device("s1", K.SMOKE, zone="lab-2"),
            device("s2", K.SMOKE, zone="lab-2"),
            device("t1", K.TEMPERATURE, zone="lab-2"),
            device("s9", K.SMOKE, zone="library"),
            device("s0", K.SMOKE),  # no zone: stands alone
        ]
    )


@pytest.mark.parametrize(
    ("story", "confirmed"),
    [
        ([("event", "s1", "alarm", 0), ("event", "s2", "alarm", 30)], True),
        ([("event", "s1", "alarm", 0), ("event", "s2", "alarm", 121)], False),  # too far apart
        ([("event", "s1", "alarm", 0), ("event", "s1", "alarm", 30)], False),  # the same detector again
        ([("event", "s1", "alarm", 0), ("event", "s9", "alarm", 10)], False),  # another room
        ([("event", "s1", "alarm", 0), ("heat", "t1", 60.0, 50)], True),  # heat over the limit
        ([("heat", "t1", 60.0, 0), ("event", "s1", "alarm", 100)], True),  # either order
        ([("heat", "s1", 60.0, 0), ("event", "s1", "alarm", 10)], True),  # multi-sensor head
        ([("event", "s0", "alarm", 0), ("event", "s1", "alarm", 10)], False),  # zoneless device
    ],
)
def test_fire_confirmed(story: list[tuple[str, str, object, float]], confirmed: bool) -> None:
    campus = lab()
    for what, device_id, arg, at in story:
        if what == "event":
            campus.event(device_id, str(arg), at)
        else:
            campus.reading(device_id, "temperature_c", float(arg), at)  # type: ignore[arg-type]
    assert campus.active("fire_confirmed", ZONE) is confirmed
    if confirmed:
        alert = campus.alert("fire_confirmed", ZONE)
        assert alert is not None and alert.severity is Severity.CRITICAL
        assert alert.details["escalate"] == "immediate"


def test_fire_confirmed_by_rate_of_rise_raises_once_and_clears_with_the_last_alarm() -> None:
    campus = lab()
    campus.event("s1", "alarm", at=0)
    for i in range(19):
        campus.reading("t1", "temperature_c", 20 + 1.5 * i, at=5 * i)
    assert campus.active("heat_rate_of_rise", "t1")
    assert campus.active("fire_confirmed", ZONE)
    campus.event("s2", "alarm", at=100)
    assert campus.raised_count("fire_confirmed") == 1
    campus.event("s1", "alarm_clear", at=300)
    assert campus.active("fire_confirmed", ZONE), "s2 still in alarm"
    campus.event("s2", "alarm_clear", at=310)
    assert not campus.active("fire_confirmed", ZONE)


CABINET = {"c1": ["alice", "bob", "carol"]}


def cabinet() -> Campus:
    return Campus(
        [device("c1", K.CHEM_CABINET), device("c2", K.CHEM_CABINET)],
        rules=default_rules(cabinet_custodians=CABINET),
    )


@pytest.mark.parametrize(
    ("badges", "violation"),
    [
        ([("alice", -20), ("bob", -10)], False),
        ([("alice", -20)], True),  # one person
        ([("alice", -20), ("alice", -10)], True),  # one person twice
        ([("alice", -70), ("bob", -10)], True),  # the first badge is stale
        ([("alice", -20), ("mallory", -10)], True),  # not authorised for this cabinet
        ([("carol", -60), ("bob", 0)], False),  # window edges included
        ([], True),
    ],
)
def test_dual_control(badges: list[tuple[str, float]], violation: bool) -> None:
    campus = cabinet()
    for person, at in badges:
        campus.event("c1", "badge", 100 + at, person_id=person)
    campus.event("c1", "door_opened", at=100)
    assert campus.active("dual_control_violation", "c1") is violation
    if violation:
        alert = campus.alert("dual_control_violation", "c1")
        assert alert is not None and alert.severity is Severity.MAJOR


def test_dual_control_badges_open_the_door_once_and_close_clears() -> None:
    campus = cabinet()
    campus.event("c1", "badge", 0, person_id="alice")
    campus.event("c1", "badge", 1, person_id="bob")
    campus.event("c1", "door_opened", 5)
    campus.event("c1", "door_closed", 20)
    campus.event("c1", "door_opened", 30)  # the same pair of badges does not count twice
    assert campus.active("dual_control_violation", "c1")
    campus.event("c1", "door_closed", 40)
    alert = campus.alert("dual_control_violation", "c1")
    assert alert is not None and not alert.condition_active, "cleared, waiting for an operator"


def test_dual_control_cabinet_without_custodians_always_violates() -> None:
    campus = cabinet()
    campus.event("c2", "badge", 0, person_id="alice")
    campus.event("c2", "badge", 1, person_id="bob")
    campus.event("c2", "door_opened", 5)
    assert campus.active("dual_control_violation", "c2")


def test_fire_lane_blocked_is_one_alert_per_lane() -> None:
    campus = Campus([device("cam1", K.CAMERA)])
    campus.event("cam1", "lane_blocked", 0, lane="north", occupancy=0.6)
    campus.event("cam1", "lane_blocked", 5, lane="south", occupancy=0.4)
    campus.event("cam1", "lane_cleared", 50, lane="north")
    assert not campus.active("fire_lane_blocked", "cam1/north")
    alert = campus.alert("fire_lane_blocked", "cam1/south")
    assert alert is not None and alert.condition_active and alert.severity is Severity.MAJOR
    assert alert.device_id == "cam1"


@pytest.mark.parametrize("reports", [("metric",), ("event", "metric"), ("metric", "event")])
def test_dual_control_sees_the_door_as_a_value_too_and_counts_one_opening_once(
    reports: tuple[str, ...],
) -> None:
    campus = cabinet()
    campus.event("c1", "badge", 0, person_id="alice")
    campus.event("c1", "badge", 1, person_id="bob")
    for report in reports:
        if report == "metric":
            campus.reading("c1", "door_open", 1.0, at=5)
        else:
            campus.event("c1", "door_opened", 5)
    assert campus.alert("dual_control_violation", "c1") is None
    campus.reading("c1", "door_open", 0.0, at=30)
    campus.reading("c1", "door_open", 1.0, at=40)  # opened again, no fresh badges
    assert campus.active("dual_control_violation", "c1")
