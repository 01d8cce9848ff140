"""Alert lifecycle and the spine's rules, with a fake clock and an in-memory journal."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from analytics.alerts import Alert, AlertNotFound, AlertService, AlertSignal, AlertState, Severity
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, StatusChange
from analytics.rules.defaults import RuleConfigError, configure_rules, default_rules
from analytics.rules.engine import RuleEngine
from analytics.rules.health import DeviceOfflineRule


@dataclass
class MemoryJournal:
    saved: list[Alert] = field(default_factory=list)
    trail: list[tuple[str, str, str]] = field(default_factory=list)

    def save_alert(self, alert: Alert) -> None:
        self.saved.append(alert)

    def audit(self, ts: float, actor: str, entity: str, entity_id: str, action: str, detail: str) -> None:
        self.trail.append((actor, action, detail))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def signal(raised: bool, ts: float = 1000.0, severity: Severity = Severity.CRITICAL) -> AlertSignal:
    return AlertSignal("fire_alarm", "s1", raised, ts, severity, "s1")


def test_one_alert_per_rule_and_subject_counts_repeats() -> None:
    journal = MemoryJournal()
    service = AlertService(journal, Clock())
    first = service.apply(signal(True))
    second = service.apply(signal(True, ts=1005))
    assert first is not None and second is not None and first.id == second.id
    assert (second.count, second.first_seen, second.last_seen) == (2, 1000.0, 1005.0)
    assert [action for _, action, _ in journal.trail] == ["raised"]


def test_annotating_an_open_alert_is_a_change_like_any_other_and_a_closed_one_is_left_alone() -> None:
    journal = MemoryJournal()
    service = AlertService(journal, Clock())
    heard: list[Alert] = []
    service.subscribe(heard.append)
    raised = service.apply(
        AlertSignal("fire_alarm", "s1", True, 1000.0, details={"value": 1, "evidence": []})
    )
    assert raised is not None
    annotated = service.annotate(raised.id, {"evidence": [{"id": "x"}]}, "evidence_unavailable")
    assert annotated is not None and annotated.version == raised.version + 1
    assert annotated.details == {"value": 1, "evidence": [{"id": "x"}]}
    assert service.get_open(raised.id) == annotated and journal.saved[-1] == annotated == heard[-1]
    assert journal.trail[-1] == ("system", "evidence_unavailable", "")
    service.resolve(raised.id, "operator-1", "checked")
    assert service.annotate(raised.id, {"evidence": []}, "evidence_unavailable") is None
    assert journal.saved[-1].details["evidence"] == [{"id": "x"}]


@pytest.mark.parametrize("ack_first", [True, False])
def test_acknowledge_and_clear_in_either_order(ack_first: bool) -> None:
    service = AlertService(MemoryJournal(), Clock())
    alert = service.apply(signal(True))
    assert alert is not None
    if ack_first:
        assert service.acknowledge(alert.id, "op").state is AlertState.ACKNOWLEDGED
        cleared = service.apply(signal(False))
    else:
        assert service.apply(signal(False)) is not None
        cleared = service.acknowledge(alert.id, "op")
    assert cleared is not None and cleared.state is AlertState.CLEARED and cleared.acknowledged_by == "op"
    resolved = service.resolve(alert.id, "op", "detector cleaned")
    assert resolved.state is AlertState.RESOLVED and service.open_alerts() == []
    with pytest.raises(AlertNotFound):
        service.acknowledge(alert.id, "op")
    reopened = service.apply(signal(True, ts=2000))
    assert reopened is not None and reopened.id != alert.id


def test_every_change_is_audited_with_who_what_and_why_and_a_cleared_alert_reactivates() -> None:
    """SPEC 6: every change audited (who, when, why). Found by mutmut: the actor, action and note
    of the trail, cleared_at, and the reactivation of a cleared alert were not checked."""
    journal, clock = MemoryJournal(), Clock()
    service = AlertService(journal, clock)
    alert = service.apply(
        AlertSignal("fire_alarm", "s1", True, 1000.0, Severity.CRITICAL, "s1", {"zone": "3F"})
    )
    assert alert is not None
    cleared = service.apply(signal(False, ts=1010))
    assert cleared is not None and (cleared.condition_active, cleared.cleared_at) == (False, 1010.0)
    back = service.apply(AlertSignal("fire_alarm", "s1", True, 1020.0, Severity.CRITICAL, "s1", {"value": 1}))
    assert back is not None and back.id == alert.id
    assert (back.condition_active, back.cleared_at, back.count, back.last_seen) == (True, None, 2, 1020.0)
    assert back.details == {"zone": "3F", "value": 1}
    clock.now = 1030.0
    acknowledged = service.acknowledge(alert.id, "duty-1")
    assert (acknowledged.acknowledged_at, acknowledged.acknowledged_by) == (1030.0, "duty-1")
    clock.now = 1040.0
    resolved = service.resolve(alert.id, "duty-2", "detector cleaned")
    assert (resolved.resolved_at, resolved.resolved_by, resolved.resolution_note) == (
        1040.0, "duty-2", "detector cleaned",
    )  # fmt: skip
    assert resolved.acknowledged_by == "duty-1", "resolving keeps who acknowledged"
    assert journal.trail == [
        ("system", "raised", ""),
        ("system", "cleared", ""),
        ("system", "reactivated", ""),
        ("duty-1", "acknowledged", ""),
        ("duty-2", "resolved", "detector cleaned"),
    ]


def test_a_repeat_after_acknowledgement_needs_attention_until_acknowledged_again() -> None:
    """A panic button pressed again after the operator took the first press is news."""
    journal, clock = MemoryJournal(), Clock()
    service = AlertService(journal, clock)
    alert = service.apply(signal(True, ts=1000))
    assert alert is not None and not alert.repeated_since_ack
    clock.now = 1010.0
    taken = service.acknowledge(alert.id, "duty-1")
    assert not taken.repeated_since_ack
    assert service.acknowledge(alert.id, "duty-1") == taken, "acknowledging twice changes nothing"
    again = service.apply(signal(True, ts=1020))
    assert again is not None and again.repeated_since_ack and again.count == 2
    clock.now = 1030.0
    retaken = service.acknowledge(alert.id, "duty-2")
    assert (retaken.acknowledged_at, retaken.acknowledged_by) == (1030.0, "duty-2")
    assert not retaken.repeated_since_ack
    assert [action for _, action, _ in journal.trail] == ["raised", "acknowledged", "acknowledged"]


def test_a_device_clock_ahead_of_the_gateway_is_not_a_repeat() -> None:
    service = AlertService(MemoryJournal(), Clock())
    alert = service.apply(signal(True, ts=1200))  # the device's clock is 200 s ahead
    assert alert is not None
    assert not service.acknowledge(alert.id, "duty-1").repeated_since_ack


def test_resolving_an_unacknowledged_alert_acknowledges_it_in_the_same_change() -> None:
    clock = Clock()
    service = AlertService(MemoryJournal(), clock)
    alert = service.apply(signal(True))
    assert alert is not None
    clock.now = 1050.0
    resolved = service.resolve(alert.id, "duty-1", "test press")
    assert (resolved.acknowledged_at, resolved.acknowledged_by) == (1050.0, "duty-1")


def test_restored_alerts_continue_and_ids_do_not_collide() -> None:
    journal = MemoryJournal()
    old = AlertService(journal, Clock())
    alert = old.apply(signal(True))
    assert alert is not None
    restored = AlertService(journal, Clock(), next_id=alert.id + 1, open_alerts=[alert])
    again = restored.apply(signal(True, ts=1100))
    assert again is not None and again.id == alert.id and again.count == 2


def heat(value: float, ts: float) -> Reading:
    return Reading("k1", DeviceKind.TEMPERATURE, "temperature_c", ts, value)


KITCHEN = DeviceSpec(id="k1", kind=DeviceKind.TEMPERATURE, reporting_interval_s=10)


def run(engine: RuleEngine, service: AlertService, *readings: Reading) -> list[Alert]:
    changes = []
    for reading in readings:
        for sig in engine.evaluate(reading, KITCHEN):
            changed = service.apply(sig)
            if changed is not None:
                changes.append(changed)
    return changes


def test_heat_high_hysteresis_and_clear_hold_mean_no_flapping_at_the_limit() -> None:
    engine = RuleEngine(default_rules())
    service = AlertService(MemoryJournal(), Clock())
    hovering = [heat(v, t) for t, v in enumerate([56.9, 57.0, 56.0, 57.1, 55.0, 57.0, 54.5], start=0)]
    run(engine, service, *hovering)
    [alert] = service.open_alerts()
    assert alert.count == 3 and alert.state is AlertState.ACTIVE
    run(engine, service, heat(53.9, 10), heat(53.0, 40), heat(53.5, 69))
    assert service.open_alerts()[0].state is AlertState.ACTIVE  # below 54 for 59 s: still held
    run(engine, service, heat(53.5, 70))
    assert service.open_alerts()[0].state is AlertState.CLEARED


def test_per_device_threshold_override_from_inventory() -> None:
    engine = RuleEngine(default_rules())
    service = AlertService(MemoryJournal(), Clock())
    boiler = DeviceSpec(id="k1", kind=DeviceKind.TEMPERATURE, thresholds={"heat_high.raise_at": 80.0})
    for sig in engine.evaluate(heat(70.0, 0), boiler):
        service.apply(sig)
    assert service.open_alerts() == []


def test_device_offline_by_status_and_by_silence() -> None:
    engine = RuleEngine(default_rules())
    rule = engine.rule("device_offline")
    assert isinstance(rule, DeviceOfflineRule)
    rule.watch(KITCHEN, 0.0)
    assert engine.tick(29.0) == []
    [silent] = engine.tick(30.0)
    assert silent.raised and silent.details["reason"] == "silent"
    assert engine.tick(31.0) == []  # raised once, not every tick
    [back] = [s for s in engine.evaluate(heat(20.0, 32.0), KITCHEN) if s.rule == "device_offline"]
    assert not back.raised
    status = StatusChange("k1", DeviceKind.TEMPERATURE, DeviceState.OFFLINE, 40.0, "status")
    [offline] = [s for s in engine.evaluate(status, KITCHEN) if s.rule == "device_offline"]
    assert offline.raised and offline.details == {"reason": "status"}


@pytest.mark.parametrize(
    ("point", "silent"),
    [
        (None, True),  # an MQTT device
        ({"system_address": 1}, False),  # a fire panel behind a transmission device
        ({"system_address": 1, "component_address": "10-2"}, False),  # one of its detectors
        ({"system_address": 1, "component_address": "10-2", "reports_periodically": True}, True),
    ],
)
def test_panel_points_report_on_change_and_are_never_silent_unless_they_opt_in(
    point: dict[str, object] | None, silent: bool
) -> None:
    engine = RuleEngine(default_rules())
    rule = engine.rule("device_offline")
    assert isinstance(rule, DeviceOfflineRule)
    gb = {"protocol": "gb26875", "gb26875": {"transmitter": "uitd-1", **point}} if point else {}
    device = DeviceSpec.model_validate({"id": "d1", "kind": "smoke", "reporting_interval_s": 10, **gb})
    rule.watch(device, 0.0)
    assert bool(engine.tick(30.0)) is silent
    alarm = DeviceEvent("d1", DeviceKind.SMOKE, "alarm", 31.0, {})
    assert [s.raised for s in engine.evaluate(alarm, device) if s.rule == "device_offline"] == (
        [False] if silent else []
    )
    assert bool(engine.tick(70.0)) is silent  # a report does not start a silence clock either


def test_rules_are_dispatched_by_kind_only() -> None:
    engine = RuleEngine(default_rules())
    panic = DeviceSpec(id="p1", kind=DeviceKind.PANIC)
    press = DeviceEvent("p1", DeviceKind.PANIC, "pressed", 1.0, {"button": "main"})
    [pressed] = [s for s in engine.evaluate(press, panic) if s.raised]
    assert (pressed.rule, pressed.severity, pressed.details["attrs"]["button"]) == (
        "panic_pressed",
        Severity.CRITICAL,
        "main",
    )
    assert all(rule.name != "heat_high" for rule in engine._by_kind[DeviceKind.PANIC])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"heat_hihg": {"raise_at": 50}}, "rules.heat_hihg: no such rule"),
        ({"heat_high": {"metric": "humidity_pct"}}, "rules.heat_high.metric: not a tunable parameter"),
        ({"heat_high": {"raise_at": "hot"}}, "rules.heat_high.raise_at: expected float, got 'hot'"),
        ({"heat_high": {"enabled": 1}}, "rules.heat_high.enabled: expected bool"),
        ({"heat_high": {"clear_below": 60}}, "clear_below (60.0) must not exceed raise_at (57.0)"),
    ],
)
def test_misconfigured_rules_are_refused_with_a_precise_message(overrides: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(RuleConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        configure_rules(default_rules(), overrides)


def test_disabled_rule_is_not_evaluated() -> None:
    engine = RuleEngine(configure_rules(default_rules(), {"heat_high": {"enabled": False}}))
    assert engine.rule("heat_high") is None
