"""Rules about time: rate of rise, bursts, doors open too long, school hours."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from analytics.records import DeviceKind
from analytics.rules.defaults import default_rules
from analytics.rules.school_hours import SchoolCalendar
from tests.rules.scenario import T0, Campus, device

K = DeviceKind


@pytest.mark.parametrize(
    ("step_s", "rise_per_step", "steps", "active"),
    [
        (5, 1.0, 18, True),  # 12 °C/min for 90 s
        (5, 0.8, 18, False),  # 9.6 °C/min: under the limit
        (5, 5 / 6, 18, True),  # exactly 10 °C/min
        (10, 2.0, 9, True),  # 12 °C/min, seen as soon as 90 s have passed
        (10, 2.0, 8, False),  # only 80 s of rise: too short to judge
        (60, 11.0, 3, True),  # a slow reporter: one rise per minute still counts
        (0.5, 0.1, 185, True),  # a fast reporter, thinned to ~20 samples a window: 12 °C/min
        (0.5, 0.075, 185, False),  # 9 °C/min
    ],
)
def test_heat_rate_of_rise(step_s: float, rise_per_step: float, steps: int, active: bool) -> None:
    campus = Campus([device("t1", K.TEMPERATURE)])
    for i in range(steps + 1):
        campus.reading("t1", "temperature_c", 20 + i * rise_per_step, at=i * step_s)
    assert campus.active("heat_rate_of_rise", "t1") is active


@pytest.mark.parametrize("seed", range(4))
def test_heat_rate_of_rise_never_raised_by_the_demo_noise(seed: int) -> None:
    """The demo's room sensors report 20-30 °C at random every 5 s: +-5 °C of noise, no rise."""
    rng = random.Random(seed)
    campus = Campus([device("t1", K.TEMPERATURE)])
    for i in range(6 * 3600 // 5):
        campus.reading("t1", "temperature_c", round(rng.uniform(20, 30), 1), at=i * 5)
    assert campus.raised_count("heat_rate_of_rise") == 0


def test_heat_rate_of_rise_sees_a_real_rise_through_the_same_noise() -> None:
    rng = random.Random(1)
    campus = Campus([device("t1", K.TEMPERATURE)])
    for i in range(60):  # five minutes of noisy normal
        campus.reading("t1", "temperature_c", round(rng.uniform(20, 30), 1), at=i * 5)
    for i in range(1, 19):  # then 15 °C/min with +-1 °C of noise, for 90 s
        campus.reading("t1", "temperature_c", 30 + 1.25 * i + rng.uniform(-1, 1), at=300 + i * 5)
    assert campus.active("heat_rate_of_rise", "t1")


def test_heat_rate_of_rise_ignores_one_noisy_sample_and_clears_once_steady() -> None:
    campus = Campus([device("t1", K.SMOKE)])
    for at, value in [(0, 20), (5, 20), (10, 32), (15, 20), (20, 20), (35, 20), (40, 20)]:
        campus.reading("t1", "temperature_c", value, at)
    assert campus.raised_count("heat_rate_of_rise") == 0
    for i in range(19):  # a real climb for 90 s, then a plateau
        campus.reading("t1", "temperature_c", 20 + 2 * i, at=50 + 5 * i)
    assert campus.active("heat_rate_of_rise", "t1")
    for at in range(145, 300, 5):
        campus.reading("t1", "temperature_c", 56, at)
    assert not campus.active("heat_rate_of_rise", "t1")
    assert campus.raised_count("heat_rate_of_rise") == 1


@pytest.mark.parametrize(
    ("denials_at", "active"),
    [
        ((0, 10, 20, 30, 40), True),
        ((0, 10, 20, 30), False),
        ((0, 20, 40, 61, 70), False),  # never five inside one minute
        ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), True),
    ],
)
def test_access_denied_burst(denials_at: tuple[float, ...], active: bool) -> None:
    campus = Campus([device("g1", K.GATE), device("g2", K.GATE)])
    for at in denials_at:
        campus.event("g1", "access_denied", at, person_id="p9")
        campus.event("g2", "access_granted", at, person_id="p1")
    assert campus.active("access_denied_burst", "g1") is active
    assert campus.raised_count("access_denied_burst") == (1 if active else 0)


def test_access_denied_burst_clears_after_a_quiet_minute() -> None:
    campus = Campus([device("g1", K.GATE)])
    for at in range(0, 100, 5):
        campus.event("g1", "access_denied", at)
        campus.tick(at)
    assert campus.raised_count("access_denied_burst") == 1
    campus.ticks(100, 154)
    assert campus.active("access_denied_burst", "g1")
    campus.ticks(155, 160)
    assert not campus.active("access_denied_burst", "g1")


@pytest.mark.parametrize(
    ("rule", "kind", "opened", "closed", "metric", "limit_s"),
    [
        ("gate_held_open", K.GATE, "opened", "closed", "open", 120),
        ("cabinet_open_long", K.CHEM_CABINET, "door_opened", "door_closed", "door_open", 600),
    ],
)
@pytest.mark.parametrize("by_metric", [False, True])
def test_open_too_long(
    rule: str, kind: DeviceKind, opened: str, closed: str, metric: str, limit_s: int, by_metric: bool
) -> None:
    campus = Campus([device("d1", kind)])

    def door(is_open: bool, at: float) -> None:
        if by_metric:
            campus.reading("d1", metric, 1.0 if is_open else 0.0, at)
        else:
            campus.event("d1", opened if is_open else closed, at)

    door(True, at=0)
    campus.ticks(0, limit_s, step=5)
    door(True, at=limit_s)  # repeated "open" reports do not restart the clock
    assert not campus.active(rule, "d1")
    campus.ticks(limit_s + 1, limit_s + 10)
    assert campus.active(rule, "d1")
    campus.ticks(limit_s + 11, limit_s + 100, step=10)
    door(False, at=limit_s + 101)
    assert not campus.active(rule, "d1")
    assert campus.raised_count(rule) == 1


def test_gate_that_reports_held_open_itself_raises_at_once() -> None:
    campus = Campus([device("g1", K.GATE)])
    campus.event("g1", "held_open", at=0)
    assert campus.active("gate_held_open", "g1")
    campus.event("g1", "closed", at=5)
    assert not campus.active("gate_held_open", "g1")


SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> float:
    """Seconds after T0 of a local Shanghai time."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp() - T0


CALENDAR = SchoolCalendar.model_validate(
    {
        "timezone": "Asia/Shanghai",
        "weekly": {day: ["07:00-12:00", "13:30-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "closed_dates": ["2025-12-31"],
        "special_days": {"2025-11-29": ["08:00-12:00"]},
    }
)


@pytest.mark.parametrize(
    ("when", "after_hours"),
    [
        ("2025-11-24 07:30", False),  # Monday morning
        ("2025-11-24 06:59", True),  # before the gate opens
        ("2025-11-24 12:30", True),  # lunch break
        ("2025-11-24 18:00", True),  # end is exclusive
        ("2025-11-23 10:00", True),  # Sunday
        ("2025-11-29 09:00", False),  # make-up school Saturday
        ("2025-12-31 10:00", True),  # a holiday on a Wednesday
    ],
)
def test_after_hours_access(when: str, after_hours: bool) -> None:
    rules = default_rules(calendar=CALENDAR)
    campus = Campus([device("g1", K.GATE)], rules=rules)
    campus.event("g1", "access_granted", local(when), person_id="p1")
    assert campus.active("after_hours_access", "g1") is after_hours


def test_after_hours_access_clears_when_school_opens() -> None:
    campus = Campus([device("g1", K.GATE)], rules=default_rules(calendar=CALENDAR))
    campus.event("g1", "access_granted", local("2025-11-24 05:00"), person_id="p1")
    campus.event("g1", "access_granted", local("2025-11-24 05:10"), person_id="p2")
    campus.tick(local("2025-11-24 06:59"))
    alert = campus.alert("after_hours_access", "g1")
    assert alert is not None and alert.condition_active and alert.count == 2
    campus.tick(local("2025-11-24 07:00"))
    assert not campus.active("after_hours_access", "g1")


@pytest.mark.parametrize(
    "bad",
    [
        {"timezone": "Mars/Olympus"},
        {"weekly": {"mon": ["7-18"]}},
        {"weekly": {"mon": ["18:00-07:00"]}},
        {"weekly": {"monday": ["07:00-18:00"]}},
    ],
)
def test_school_calendar_refuses_what_a_user_must_fix(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SchoolCalendar.model_validate(bad)


def test_school_calendar_can_run_to_midnight() -> None:
    calendar = SchoolCalendar.model_validate({"weekly": {"sun": ["20:00-24:00"]}})
    assert calendar.is_open(T0 + local("2025-11-23 23:59"))
    assert not calendar.is_open(T0 + local("2025-11-24 00:00"))


def test_school_calendar_in_another_time_zone() -> None:
    urumqi = CALENDAR.in_timezone("Asia/Urumqi")  # UTC+6: two hours behind Beijing time
    monday_8_30_beijing = T0 + local("2025-11-24 08:30")
    assert CALENDAR.is_open(monday_8_30_beijing)
    assert not urumqi.is_open(monday_8_30_beijing)
    assert urumqi.weekly == CALENDAR.weekly
