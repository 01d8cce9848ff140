"""The rule catalogue is SPEC sections 5-7, and everything that knows a rule reads it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from analytics.alerts import Alert, Severity
from analytics.catalog import EVENTS
from analytics.devices import DeviceSpec
from analytics.hazards import PolicyTrigger
from analytics.records import DeviceEvent
from analytics.rules.catalogue import DAY_S, RULES, Escalation
from analytics.rules.defaults import default_rules
from analytics.rules.engine import RuleEngine
from analytics.texts import alert_title
from analytics.tickets.policies import default_policies
from analytics.tickets.service import category_for_rule
from gateway.notify.config import NotifyConfig

# SPEC section 5, "Alert rules (defaults)": rule, severity, and what the row says of escalation;
# SPEC section 6: "a critical alert unacknowledged for 60 s goes to the next tier".
SPEC_5 = [
    ("fire_alarm", "critical", ""),
    ("smoke_prealarm", "warning", ""),
    ("fire_confirmed", "critical", "escalate at once"),
    ("heat_high", "critical", ""),
    ("heat_rate_of_rise", "critical", ""),
    ("electrical_leakage", "major", ""),
    ("cable_overtemp", "major", ""),
    ("panic_pressed", "critical", "notify police channel at once, no delay"),
    ("gate_forced", "critical", ""),
    ("gate_held_open", "warning", ""),
    ("after_hours_access", "warning", ""),
    ("access_denied_burst", "warning", ""),
    ("dual_control_violation", "major", ""),
    ("cabinet_open_long", "warning", ""),
    ("chem_leak", "major", ""),
    ("flammable_gas", "critical", ""),
    ("ventilation_fault", "major", ""),
    ("fire_lane_blocked", "major", ""),
    ("device_offline", "warning", ""),
    # "device_fault / tamper / low_battery (< 20 %) / clock_skew / unknown_device":
    # "warning / major / info / info / warning"
    ("device_fault", "warning", ""),
    ("tamper", "major", ""),
    ("low_battery", "info", ""),
    ("clock_skew", "info", ""),
    ("unknown_device", "warning", ""),
]
SPEC_ESCALATION = {
    "escalate at once": Escalation.AT_ONCE,
    "notify police channel at once, no delay": Escalation.POLICE,
}
# SPEC section 7 defaults: "electrical leakage, dual-control violation, device offline > 24 h, fault
# not cleared in 24 h, the same fire lane blocked 3 times in 7 days".
SPEC_7_AUTO_TICKETS = {
    "electrical_leakage": (PolicyTrigger.RAISED, 0.0, 1, 0.0),
    "dual_control_violation": (PolicyTrigger.RAISED, 0.0, 1, 0.0),
    "device_offline": (PolicyTrigger.PERSISTING, DAY_S, 1, 0.0),
    "device_fault": (PolicyTrigger.PERSISTING, DAY_S, 1, 0.0),
    "fire_lane_blocked": (PolicyTrigger.REPEATED, 0.0, 3, 7 * DAY_S),
}
BY_PIPELINE = {"unknown_device"}  # raised for traffic outside the inventory, not by a rule object


def test_the_catalogue_holds_the_spec_rules_and_no_others() -> None:
    assert list(RULES) == [name for name, _, _ in SPEC_5]


@pytest.mark.parametrize(("name", "severity", "escalation"), SPEC_5, ids=[row[0] for row in SPEC_5])
def test_each_rule_as_the_spec_lists_it(name: str, severity: str, escalation: str) -> None:
    entry = RULES[name]
    assert entry.severity is Severity(severity)
    expected = SPEC_ESCALATION.get(escalation) or (
        Escalation.UNACKNOWLEDGED if entry.severity is Severity.CRITICAL else Escalation.NONE
    )
    assert entry.escalation is expected
    assert entry.title_zh and entry.title_en and entry.title_zh != entry.title_en
    alert = Alert(1, name, "d1", "d1", entry.severity, condition_active=True, first_seen=0.0, last_seen=0.0)
    assert (alert_title(alert, "zh-CN"), alert_title(alert, "en")) == (entry.title_zh, entry.title_en)
    assert category_for_rule(name) is entry.category
    auto = entry.auto_ticket
    ticket = (auto.trigger, auto.after_s, auto.count, auto.window_s) if auto is not None else None
    assert ticket == SPEC_7_AUTO_TICKETS.get(name)


def test_default_rules_take_name_kinds_and_severity_from_the_catalogue() -> None:
    rules = default_rules()
    assert [rule.name for rule in rules if rule.name not in RULES] == []
    assert {rule.name for rule in rules} == set(RULES) - BY_PIPELINE
    for rule in rules:
        assert (rule.kinds, rule.severity) == (RULES[rule.name].kinds, RULES[rule.name].severity), rule.name


def test_ticket_policies_are_the_catalogues_automatic_tickets() -> None:
    policies = default_policies()
    assert set(policies) == set(SPEC_7_AUTO_TICKETS)
    for name, policy in policies.items():
        entry = RULES[name]
        assert entry.auto_ticket is not None
        assert (policy.rule, policy.category, policy.level) == (name, entry.category, entry.auto_ticket.level)


def test_notify_defaults_are_the_catalogues_escalations() -> None:
    config = NotifyConfig()
    assert config.immediate_rules == ["fire_confirmed"]
    assert config.police_rules == ["panic_pressed"]
    escalating = {entry.severity for entry in RULES.values() if entry.escalation is not Escalation.NONE}
    assert escalating == set(config.escalate_severities), "escalation by severity agrees with the catalogue"


# Keys a hostile device might send to steer policy (issue 11, finding 1).
STEERING_ATTRS = {"drill": True, "drill_id": 1, "escalate": "immediate", "severity": "info", "reason": "x"}


def test_device_attrs_never_reach_the_top_level_of_any_rules_alert_details() -> None:
    """Every event of every kind, with attrs named like policy keys, through every default rule:
    the attrs come back only under `details["attrs"]`, never beside the rule's own keys."""
    engine = RuleEngine(default_rules())
    sunday_night = datetime(2026, 11, 29, 3, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    fired: set[str] = set()
    for kind, names in EVENTS.items():
        device = DeviceSpec(id=f"d-{kind.value}", kind=kind)
        for name in sorted(names):
            for n in range(6):  # bursts need several
                event = DeviceEvent(device.id, kind, name, sunday_night + n, dict(STEERING_ATTRS))
                for signal in engine.evaluate(event, device):
                    if not signal.raised:
                        continue
                    fired.add(signal.rule)
                    assert not set(signal.details) & set(STEERING_ATTRS) - {"reason"}, signal
                    assert signal.details.get("attrs", STEERING_ATTRS) == STEERING_ATTRS, signal
    assert {"panic_pressed", "fire_alarm", "access_denied_burst", "after_hours_access", "fire_lane_blocked",
            "chem_leak", "device_fault", "tamper"} <= fired  # fmt: skip
