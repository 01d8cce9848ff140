"""The default rule set covers SPEC section 5, is configurable, and stays cheap per record."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.records import DeviceKind, Reading
from analytics.rules.catalogue import RULES
from analytics.rules.defaults import RuleConfigError, configure_rules, default_rules
from analytics.rules.engine import RuleEngine
from tests.rules.scenario import Campus, device

SPEC_RULES = {
    "fire_alarm", "smoke_prealarm", "fire_confirmed", "heat_high", "heat_rate_of_rise", "electrical_leakage",
    "cable_overtemp", "panic_pressed", "gate_forced", "gate_held_open", "after_hours_access",
    "access_denied_burst", "dual_control_violation", "cabinet_open_long", "chem_leak", "flammable_gas",
    "ventilation_fault", "fire_lane_blocked", "device_offline", "device_fault", "tamper", "low_battery",
    "clock_skew",
}  # fmt: skip


def test_every_rule_of_the_spec_is_a_default_with_titles() -> None:
    names = [rule.name for rule in default_rules()]
    assert len(names) == len(set(names))
    # unknown_device is raised by the pipeline for traffic outside the inventory, not by a rule.
    assert set(names) == SPEC_RULES
    assert set(names) <= set(RULES)


@pytest.mark.parametrize(
    ("overrides", "effect"),
    [
        ({"smoke_prealarm": {"hold_s": 5}}, ("smoke_prealarm", "hold_s", 5.0)),
        (
            {"electrical_leakage": {"raise_at": 500, "clear_at": 450}},
            ("electrical_leakage", "raise_at", 500.0),
        ),
        ({"access_denied_burst": {"count": 3}}, ("access_denied_burst", "count", 3)),
        ({"gate_held_open": {"limit_s": 60}}, ("gate_held_open", "limit_s", 60.0)),
        ({"fire_confirmed": {"window_s": 60}}, ("fire_confirmed", "window_s", 60.0)),
        ({"low_battery": {"enabled": False}}, ("low_battery", "enabled", False)),
    ],
)
def test_configure_new_rules(overrides: dict[str, dict[str, Any]], effect: tuple[str, str, object]) -> None:
    rules = {rule.name: rule for rule in configure_rules(default_rules(), overrides)}
    name, param, value = effect
    assert getattr(rules[name], param) == value


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"chem_leak": {"warn_at": 80}}, "warn_at"),
        ({"electrical_leakage": {"clear_at": 400}}, "clear_at"),
        ({"heat_rate_of_rise": {"clear_rise_per_min": 20}}, "clear_rise_per_min"),
        ({"dual_control_violation": {"authorised": {}}}, "not a tunable parameter"),
        ({"after_hours_access": {"calendar": "x"}}, "not a tunable parameter"),
        ({"access_denied_burst": {"count": 1}}, "count"),
    ],
)
def test_configure_refuses_what_would_break_a_rule(
    overrides: dict[str, dict[str, Any]], message: str
) -> None:
    with pytest.raises(RuleConfigError, match=message):
        configure_rules(default_rules(), overrides)


def test_fire_confirmed_can_be_disabled_without_touching_its_members() -> None:
    campus = Campus(
        [device("s1", DeviceKind.SMOKE, zone="z"), device("s2", DeviceKind.SMOKE, zone="z")],
        overrides={"fire_confirmed": {"enabled": False}},
    )
    campus.event("s1", "alarm", 0)
    campus.event("s2", "alarm", 1)
    assert campus.active("fire_alarm", "s1") and campus.active("fire_alarm", "s2")
    assert campus.alert("fire_confirmed", "zone:b1/z") is None


def test_records_no_rule_cares_about_produce_no_signals() -> None:
    engine = RuleEngine(default_rules())
    smoke = device("s1", DeviceKind.SMOKE, zone="z")
    for i in range(1000):
        assert engine.evaluate(Reading("s1", DeviceKind.SMOKE, "humidity_pct", 1000.0 + i, 40.0), smoke) == []


Step = tuple[str, str, float, float]  # ("r" reading | "e" event | "t" tick, name, value, at)
RESTART_STORIES: dict[str, tuple[DeviceKind, list[Step], list[Step]]] = {
    "smoke_prealarm": (DeviceKind.SMOKE, [("r", "obscuration_pct_m", 3.0, 0), ("r", "obscuration_pct_m", 3.0, 10)],
                       [("r", "obscuration_pct_m", 0.5, 20), ("r", "obscuration_pct_m", 0.5, 31)]),
    "cable_overtemp": (DeviceKind.ELECTRICAL_FIRE, [("r", "temp_c_2", 90, 0)],
                       [("r", "temp_c_2", 40, 10), ("r", "temp_c_2", 40, 80)]),
    "heat_rate_of_rise": (DeviceKind.TEMPERATURE, [("r", "temperature_c", 20 + 2 * i, 5 * i) for i in range(19)],
                          [("r", "temperature_c", 56, 95 + 5 * i) for i in range(40)]),
    "chem_leak": (DeviceKind.CHEM_CABINET, [("r", "voc_ppm", 60, 0), ("e", "leak_alarm", 0, 1)],
                  [("e", "leak_alarm_clear", 0, 2), ("r", "voc_ppm", 1, 10), ("r", "voc_ppm", 1, 45)]),
    "ventilation_fault": (DeviceKind.CHEM_CABINET, [("r", "voc_ppm", 20, 0), ("r", "fan_on", 0, 1)],
                          [("r", "fan_on", 1, 10), ("r", "fan_on", 1, 45)]),
    "cabinet_open_long": (DeviceKind.CHEM_CABINET, [("e", "door_opened", 0, 0), ("t", "", 0, 0), ("t", "", 0, 700)],
                          [("e", "door_closed", 0, 800)]),
    "dual_control_violation": (DeviceKind.CHEM_CABINET, [("e", "door_opened", 0, 0)], [("r", "door_open", 0, 50)]),
    "access_denied_burst": (DeviceKind.GATE, [("e", "access_denied", 0, i) for i in range(5)], [("t", "", 0, 100)]),
    "heat_high": (DeviceKind.TEMPERATURE, [("r", "temperature_c", 60, 0)],
                  [("r", "temperature_c", 40, 10), ("r", "temperature_c", 40, 75)]),
    "device_offline": (DeviceKind.SMOKE, [("r", "battery_pct", 90, 0), ("t", "", 0, 200)],
                       [("r", "battery_pct", 90, 300)]),
    "fire_lane_blocked": (DeviceKind.CAMERA, [("e", "lane_blocked", 0, 0)], [("e", "lane_cleared", 0, 10)]),
}  # fmt: skip


@pytest.mark.parametrize("rule", RESTART_STORIES)
def test_an_alert_open_at_shutdown_still_clears_after_a_restart(rule: str) -> None:
    kind, raise_steps, clear_steps = RESTART_STORIES[rule]

    def play(campus: Campus, steps: list[Step]) -> None:
        for what, name, value, at in steps:
            if what == "r":
                campus.reading("d1", name, value, at)
            elif what == "e":
                campus.event("d1", name, at)
            else:
                campus.tick(at)

    before = Campus([device("d1", kind)])
    play(before, raise_steps)
    assert before.active(rule, "d1")
    after = before.restart()
    play(after, clear_steps)
    assert not after.active(rule, "d1")
