"""The escalation policy with a fake clock: who hears what, and when."""

from __future__ import annotations

import pytest

from analytics.alerts import Alert, AlertService, AlertSignal, Severity
from analytics.incidents import IncidentTracker
from gateway.notify.config import ChannelConfig, NotifyConfig
from gateway.notify.policy import POLICE_TIER, Dispatch, EscalationPolicy, Reason
from tests.rules.scenario import MemoryJournal

T0 = 1_000_000.0


def config(**overrides: object) -> NotifyConfig:
    channels = [
        ChannelConfig(name="room", url="http://room.local/hook", outside=False),
        ChannelConfig(name="leaders", url="http://leaders/hook", format="dingtalk"),
        ChannelConfig(name="bureau", url="http://bureau/hook", format="wecom"),
        ChannelConfig(name="police", url="http://police/hook"),
    ]
    return NotifyConfig.model_validate(
        {
            "channels": channels,
            "tiers": [["room"], ["leaders"], ["bureau"]],
            "police": ["police"],
            **overrides,
        }
    )


class Desk:
    """Alerts raised and acknowledged through the real alert service, watched by the policy."""

    def __init__(self, policy_config: NotifyConfig | None = None, incidents: bool = False) -> None:
        self.now = T0
        self.alerts = AlertService(MemoryJournal(), lambda: self.now)
        self.tracker = IncidentTracker(lambda device_id: "b1") if incidents else None
        if self.tracker is not None:
            self.alerts.subscribe(self.tracker.observe)
        self.policy = EscalationPolicy(
            policy_config or config(), self.tracker.incident_of if self.tracker is not None else None
        )
        self.sent: list[tuple[float, str, int, str]] = []
        self.alerts.subscribe(lambda alert: self._record(self.policy.on_alert(alert, self.now)))

    def raise_(self, rule: str, device: str, severity: Severity, at: float = 0, **details: object) -> Alert:
        self.now = T0 + at
        alert = self.alerts.apply(AlertSignal(rule, device, True, self.now, severity, device, details))
        assert alert is not None
        return alert

    def wait(self, until: float) -> None:
        while self.now < T0 + until:
            self.now += 1
            self._record(self.policy.due(self.now))

    def _record(self, dispatches: list[Dispatch]) -> None:
        self.sent += [(d.alert.id, d.channel, round(self.now - T0), d.reason.value) for d in dispatches]

    def channels(self) -> list[tuple[str, int]]:
        return [(channel, at) for _, channel, at, _ in self.sent]


def test_unacknowledged_critical_climbs_a_tier_a_minute() -> None:
    desk = Desk()
    desk.raise_("fire_alarm", "s1", Severity.CRITICAL)
    desk.wait(200)
    assert desk.channels() == [("room", 0), ("leaders", 60), ("bureau", 120)]


@pytest.mark.parametrize(("ack_at", "expected"), [(30, [("room", 0)]), (90, [("room", 0), ("leaders", 60)])])
def test_acknowledging_stops_escalation(ack_at: float, expected: list[tuple[str, int]]) -> None:
    desk = Desk()
    alert = desk.raise_("fire_alarm", "s1", Severity.CRITICAL)
    desk.wait(ack_at)
    desk.alerts.acknowledge(alert.id, "operator")
    desk.wait(300)
    assert desk.channels() == expected


@pytest.mark.parametrize(
    ("severity", "expected"), [(Severity.MAJOR, [("room", 0)]), (Severity.WARNING, []), (Severity.INFO, [])]
)
def test_only_critical_escalates_and_warnings_stay_on_screen(
    severity: Severity, expected: list[tuple[str, int]]
) -> None:
    desk = Desk()
    desk.raise_("electrical_leakage", "e1", severity)
    desk.wait(300)
    assert desk.channels() == expected


def test_panic_goes_to_the_police_at_once() -> None:
    desk = Desk()
    desk.raise_("panic_pressed", "p1", Severity.CRITICAL)
    assert [(c, at, why) for _, c, at, why in desk.sent] == [("police", 0, "police"), ("room", 0, "raised")]


def test_fire_confirmed_escalates_at_once() -> None:
    desk = Desk()
    desk.raise_("fire_confirmed", "zone:b1/lab", Severity.CRITICAL)
    desk.wait(100)
    assert desk.channels() == [("room", 0), ("leaders", 0), ("bureau", 60)]


@pytest.mark.parametrize("rule", ["fire_alarm", "panic_pressed", "fire_confirmed"])
def test_drill_alerts_never_leave_for_outside_channels(rule: str) -> None:
    desk = Desk()
    desk.raise_(rule, "d1", Severity.CRITICAL, drill=True)
    desk.wait(300)
    assert {channel for channel, _ in desk.channels()} == {"room"}


def test_an_alarm_storm_is_told_once_per_rule_and_tier() -> None:
    desk = Desk(incidents=True)
    for n in range(40):
        desk.raise_("fire_alarm", f"s{n}", Severity.CRITICAL, at=n * 0.5)
    desk.raise_("fire_confirmed", "zone:b1/hall", Severity.CRITICAL, at=20)
    desk.wait(200)
    assert sorted(set(desk.channels())) == sorted(desk.channels()), "no duplicates"
    fire_alarm = [(c, at) for alert_id, c, at, _ in desk.sent if alert_id <= 40]
    assert fire_alarm == [("room", 0), ("leaders", 60), ("bureau", 120)]
    confirmed = [(c, at) for alert_id, c, at, _ in desk.sent if alert_id == 41]
    assert confirmed == [("room", 20), ("leaders", 20), ("bureau", 80)]


def test_a_severity_rise_is_told_like_a_new_alert() -> None:
    desk = Desk()
    desk.raise_("chem_leak", "c1", Severity.WARNING)
    desk.raise_("chem_leak", "c1", Severity.MAJOR, at=10)
    desk.raise_("chem_leak", "c1", Severity.MAJOR, at=20)
    assert desk.channels() == [("room", 10)]


def test_restore_resumes_escalation_without_repeating_the_first_tier() -> None:
    desk = Desk()
    alert = desk.raise_("fire_alarm", "s1", Severity.CRITICAL)
    policy = EscalationPolicy(config())
    policy.restore([alert], T0 + 5)
    assert policy.due(T0 + 64) == []
    assert [(d.channel, d.tier, d.reason) for d in policy.due(T0 + 65)] == [("leaders", 1, Reason.ESCALATED)]
    assert POLICE_TIER < 0


def test_config_names_only_known_channels() -> None:
    with pytest.raises(ValueError, match="unknown channels"):
        config(tiers=[["room"], ["nobody"]])
