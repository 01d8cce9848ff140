"""The default rule set (SPEC section 5) and how configuration overrides its parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from analytics.alerts import Severity
from analytics.records import DeviceKind
from analytics.rules.base import Rule
from analytics.rules.event import EventRule
from analytics.rules.health import DeviceOfflineRule
from analytics.rules.threshold import ThresholdRule

K = DeviceKind
_ALL_KINDS = frozenset(DeviceKind)


def default_rules() -> list[Rule]:
    return [
        EventRule("fire_alarm", frozenset({K.SMOKE}), Severity.CRITICAL, raise_on=frozenset({"alarm"}),
                  clear_on=frozenset({"alarm_clear"})),
        ThresholdRule("heat_high", frozenset({K.SMOKE, K.TEMPERATURE}), Severity.CRITICAL, metric="temperature_c",
                      raise_at=57.0, clear_below=54.0, clear_hold_s=60.0),
        EventRule("panic_pressed", frozenset({K.PANIC}), Severity.CRITICAL, raise_on=frozenset({"pressed"}),
                  clear_on=frozenset({"cancelled"})),
        EventRule("gate_forced", frozenset({K.GATE}), Severity.CRITICAL, raise_on=frozenset({"forced_open"}),
                  clear_on=frozenset({"closed"})),
        DeviceOfflineRule("device_offline", _ALL_KINDS, Severity.WARNING),
        EventRule("device_fault", _ALL_KINDS, Severity.WARNING, raise_on=frozenset({"fault", "camera_fault"}),
                  clear_on=frozenset({"fault_clear", "camera_ok"})),
        EventRule("tamper", _ALL_KINDS, Severity.MAJOR, raise_on=frozenset({"tamper"}),
                  clear_on=frozenset({"tamper_clear"})),
        EventRule("clock_skew", _ALL_KINDS, Severity.INFO, raise_on=frozenset({"clock_skew"}),
                  clear_on=frozenset({"clock_skew_clear"})),
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
