"""The default rule set (SPEC section 5) and how configuration overrides its parameters.

Names, device kinds and severities come from the rule catalogue; this module adds each rule's
evaluation and its default parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from analytics.alerts import Severity
from analytics.records import DeviceKind
from analytics.rules.base import Rule
from analytics.rules.burst import EventBurstRule
from analytics.rules.catalogue import rule_entry
from analytics.rules.correlation import ZoneCorrelationRule
from analytics.rules.duration import OpenTooLongRule
from analytics.rules.event import EventRule
from analytics.rules.health import DeviceOfflineRule
from analytics.rules.lane import LaneEventRule
from analytics.rules.rate import RateOfRiseRule
from analytics.rules.school_hours import AfterHoursAccessRule, SchoolCalendar
from analytics.rules.sequence import DualControlRule
from analytics.rules.sustained import SustainedThresholdRule
from analytics.rules.threshold import ThresholdRule
from analytics.rules.tiered import TieredThresholdRule
from analytics.rules.ventilation import VentilationFaultRule

K = DeviceKind


def _catalogued(name: str) -> tuple[str, frozenset[DeviceKind], Severity]:
    """A rule's name, kinds and severity, as the rule catalogue lists them."""
    entry = rule_entry(name)
    return entry.name, entry.kinds, entry.severity


def default_rules(
    calendar: SchoolCalendar | None = None,
    cabinet_custodians: Mapping[str, Iterable[str]] | None = None,
) -> list[Rule]:
    """Every rule of SPEC section 5 with its default parameters.

    `calendar` is the school-hours calendar for after_hours_access (default: weekdays
    07:00-18:00, Asia/Shanghai); `cabinet_custodians` maps a chemical cabinet's device id to the
    person ids authorised to open it (dual_control_violation; a cabinet not listed has none).
    """
    custodians = {cabinet: frozenset(persons) for cabinet, persons in (cabinet_custodians or {}).items()}
    return [
        EventRule(*_catalogued("fire_alarm"), raise_on=frozenset({"alarm"}), clear_on=frozenset({"alarm_clear"})),
        ThresholdRule(*_catalogued("heat_high"), metric="temperature_c", raise_at=57.0, clear_below=54.0,
                      clear_hold_s=60.0),
        EventRule(*_catalogued("panic_pressed"), raise_on=frozenset({"pressed"}), clear_on=frozenset({"cancelled"})),
        EventRule(*_catalogued("gate_forced"), raise_on=frozenset({"forced_open"}), clear_on=frozenset({"closed"})),
        DeviceOfflineRule(*_catalogued("device_offline")),
        EventRule(*_catalogued("device_fault"), raise_on=frozenset({"fault", "camera_fault"}),
                  clear_on=frozenset({"fault_clear", "camera_ok"})),
        EventRule(*_catalogued("tamper"), raise_on=frozenset({"tamper"}), clear_on=frozenset({"tamper_clear"})),
        EventRule(*_catalogued("clock_skew"), raise_on=frozenset({"clock_skew"}),
                  clear_on=frozenset({"clock_skew_clear"})),
        SustainedThresholdRule(*_catalogued("smoke_prealarm"), metrics=frozenset({"obscuration_pct_m"}),
                               raise_at=2.0, hold_s=10.0, clear_at=1.5, clear_hold_s=10.0),
        ZoneCorrelationRule(*_catalogued("fire_confirmed"), alarm_rules=frozenset({"fire_alarm"}),
                            support_rules=frozenset({"heat_high", "heat_rate_of_rise"}), window_s=120.0),
        RateOfRiseRule(*_catalogued("heat_rate_of_rise"), metric="temperature_c", rise_per_min=10.0,
                       min_span_s=90.0),
        # GB 50116: residual-current alarm set 300-500 mA; three samples so one spike is not a leak.
        SustainedThresholdRule(*_catalogued("electrical_leakage"), metrics=frozenset({"residual_current_ma"}),
                               raise_at=300.0, min_samples=3, clear_at=270.0, clear_samples=3),
        SustainedThresholdRule(*_catalogued("cable_overtemp"), metrics=frozenset(f"temp_c_{n}" for n in range(1, 5)),
                               raise_at=70.0, clear_at=65.0, clear_hold_s=60.0),
        OpenTooLongRule(*_catalogued("gate_held_open"), open_events=frozenset({"opened"}),
                        close_events=frozenset({"closed"}), raise_on=frozenset({"held_open"}), open_metric="open",
                        limit_s=120.0),
        AfterHoursAccessRule(*_catalogued("after_hours_access"), calendar=calendar or SchoolCalendar()),
        EventBurstRule(*_catalogued("access_denied_burst"), event="access_denied", count=5, window_s=60.0),
        DualControlRule(*_catalogued("dual_control_violation"), window_s=60.0, required_persons=2,
                        authorised=custodians),
        OpenTooLongRule(*_catalogued("cabinet_open_long"), open_events=frozenset({"door_opened"}),
                        close_events=frozenset({"door_closed"}), open_metric="door_open", limit_s=600.0),
        TieredThresholdRule(*_catalogued("chem_leak"), metric="voc_ppm", warn_at=10.0,
                            warn_severity=Severity.WARNING, raise_at=50.0, clear_below=8.0, clear_hold_s=30.0,
                            raise_on=frozenset({"leak_alarm"}), clear_on=frozenset({"leak_alarm_clear"})),
        # GB 15322: low alarm at 25 %LEL (major), high alarm at 50 %LEL (critical).
        TieredThresholdRule(*_catalogued("flammable_gas"), metric="lel_pct", warn_at=25.0,
                            warn_severity=Severity.MAJOR, raise_at=50.0, clear_below=20.0, clear_hold_s=30.0),
        VentilationFaultRule(*_catalogued("ventilation_fault"), voc_at=10.0, voc_clear_below=8.0,
                             clear_hold_s=30.0),
        LaneEventRule(*_catalogued("fire_lane_blocked"), raise_on=frozenset({"lane_blocked"}),
                      clear_on=frozenset({"lane_cleared"})),
        SustainedThresholdRule(*_catalogued("low_battery"), metrics=frozenset({"battery_pct"}), raise_at=20.0,
                               clear_at=25.0, below=True),
    ]  # fmt: skip


class RuleConfigError(ValueError):
    pass


_TUNABLE = (bool, int, float)


def configure_rules(rules: list[Rule], overrides: Mapping[str, Mapping[str, Any]]) -> list[Rule]:
    """Apply `{rule: {param: value}}` from config; unknown rules, params or types are refused."""
    by_name = {rule.name: rule for rule in rules}
    for rule_name in overrides:
        if rule_name not in by_name:
            raise RuleConfigError(f"rules.{rule_name}: no such rule (known: {', '.join(sorted(by_name))})")
    configured = []
    for rule in rules:
        params = dict(overrides.get(rule.name, {}))
        fields = {f.name: f for f in dataclasses.fields(rule) if not f.name.startswith("_")}
        for key, value in params.items():
            current = getattr(rule, key, None)
            if key not in fields or key in {"name", "kinds"} or not isinstance(current, _TUNABLE):
                tunable = sorted(k for k in fields if isinstance(getattr(rule, k), _TUNABLE))
                raise RuleConfigError(
                    f"rules.{rule.name}.{key}: not a tunable parameter (tunable: {', '.join(tunable)})"
                )
            if isinstance(current, bool) != isinstance(value, bool) or not isinstance(value, _TUNABLE):
                raise RuleConfigError(
                    f"rules.{rule.name}.{key}: expected {type(current).__name__}, got {value!r}"
                )
            if isinstance(current, float):
                params[key] = float(value)
        try:
            configured.append(dataclasses.replace(rule, **params) if params else rule)
        except ValueError as exc:
            raise RuleConfigError(f"rules.{rule.name}: {exc}") from None
    return configured
