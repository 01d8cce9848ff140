"""Automatic-ticket policies: each default, driven by a controllable clock."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from analytics.tickets import (
    HazardLevel,
    PolicyConfigError,
    PolicyTrigger,
    configure_policies,
    default_policies,
    first_due_policy,
)
from analytics.tickets.config import TicketsConfig
from analytics.tickets.policies import AlertHistory
from tests.tickets.support import DAY_S, HOUR_S, T0, AlertBook

POLICIES = default_policies()


@pytest.mark.parametrize("rule", ["electrical_leakage", "dual_control_violation"])
def test_raised_policies_open_at_once(rule: str) -> None:
    alert = AlertBook().raise_alert(rule, "dev-1", T0)
    assert first_due_policy(POLICIES, alert, AlertHistory(T0), T0) == rule
    assert POLICIES[rule].level is HazardLevel.MAJOR


@pytest.mark.parametrize("rule", ["device_offline", "device_fault"])
def test_persisting_policies_wait_24_hours(rule: str) -> None:
    alert = AlertBook().raise_alert(rule, "dev-1", T0)
    history = AlertHistory(active_since_ts=T0)
    assert first_due_policy(POLICIES, alert, history, T0 + 24 * HOUR_S - 1) is None
    assert first_due_policy(POLICIES, alert, history, T0 + 24 * HOUR_S) == rule


def test_fire_lane_needs_three_blockings_within_seven_days() -> None:
    alert = AlertBook().raise_alert("fire_lane_blocked", "lane-east", T0 + 6 * DAY_S)
    two = AlertHistory(T0 + 6 * DAY_S, occurrence_ts=[T0, T0 + 6 * DAY_S])
    three = AlertHistory(T0 + 6 * DAY_S, occurrence_ts=[T0, T0 + 3 * DAY_S, T0 + 6 * DAY_S])
    assert first_due_policy(POLICIES, alert, two, T0 + 6 * DAY_S) is None
    assert first_due_policy(POLICIES, alert, three, T0 + 6 * DAY_S) == "fire_lane_blocked"
    # The first blocking has slid out of the window a day later.
    assert first_due_policy(POLICIES, alert, three, T0 + 7 * DAY_S + 1) is None


def test_a_cleared_alert_opens_nothing() -> None:
    book = AlertBook()
    alert = book.clear(book.raise_alert("electrical_leakage", "efm-1", T0).id, T0 + 1)
    assert first_due_policy(POLICIES, alert, AlertHistory(T0), T0 + DAY_S) is None


def test_rules_without_a_policy_open_nothing() -> None:
    alert = AlertBook().raise_alert("gate_held_open", "gate-1", T0)
    assert first_due_policy(POLICIES, alert, AlertHistory(T0), T0 + DAY_S) is None


def test_config_tunes_disables_and_adds_policies() -> None:
    policies = configure_policies(
        {
            "device_offline": {"after_s": 3600},
            "electrical_leakage": {"enabled": False},
            "chem_leak": {"rule": "chem_leak", "trigger": "raised", "category": "chemical", "level": "major"},
        }
    )
    assert policies["device_offline"].after_s == 3600
    assert policies["chem_leak"].trigger is PolicyTrigger.RAISED
    leak = AlertBook().raise_alert("electrical_leakage", "efm-1", T0)
    assert first_due_policy(policies, leak, AlertHistory(T0), T0) is None


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"device_offline": {"after_s": -1}}, "ticket_policies.device_offline.after_s"),
        ({"device_offline": {"colour": "red"}}, "ticket_policies.device_offline.colour"),
        ({"new_one": {"rule": "chem_leak"}}, "ticket_policies.new_one.trigger"),
    ],
)
def test_config_errors_name_the_key(overrides: dict[str, dict[str, object]], where: str) -> None:
    with pytest.raises(PolicyConfigError, match=re.escape(where)):
        configure_policies(overrides)


def test_the_tickets_config_section_validates_people_and_policies() -> None:
    config = TicketsConfig.model_validate(
        {"people": [{"id": "wang", "name": "王建国", "role": "总务主任", "phone": "1"}], "policies": {}}
    )
    assert config.build_policies() == default_policies()
    with pytest.raises(ValidationError, match="appears twice"):
        TicketsConfig.model_validate({"people": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]})
    with pytest.raises(ValidationError, match=re.escape("ticket_policies.device_fault.after_s")):
        TicketsConfig.model_validate({"policies": {"device_fault": {"after_s": "soon"}}})
