"""Incidents: alerts of one building close in time are one incident; a storm is one incident."""

from __future__ import annotations

from analytics.alerts import AlertService, AlertSignal, Severity
from analytics.incidents import Incident, IncidentTracker
from tests.rules.scenario import MemoryJournal

BUILDINGS = {"s1": "b1", "s2": "b1", "s3": "b2", "x": ""}


class Screen:
    def __init__(self, window_s: float = 300.0, storm_devices: int = 10) -> None:
        self.now = 1000.0
        self.alerts = AlertService(MemoryJournal(), lambda: self.now)
        self.incidents = IncidentTracker(
            lambda d: BUILDINGS.get(d, "b1"), window_s=window_s, storm_devices=storm_devices
        )
        self.changes: list[Incident] = []
        self.incidents.subscribe(self.changes.append)
        self.alerts.subscribe(self.incidents.observe)

    def raise_(
        self, device: str, at: float, rule: str = "fire_alarm", severity: Severity = Severity.CRITICAL
    ) -> int:
        self.now = 1000.0 + at
        alert = self.alerts.apply(AlertSignal(rule, device, True, self.now, severity, device))
        assert alert is not None
        return alert.id


def test_alerts_of_one_building_within_the_window_are_one_incident() -> None:
    screen = Screen()
    a = screen.raise_("s1", 0, severity=Severity.WARNING, rule="smoke_prealarm")
    b = screen.raise_("s2", 200)
    c = screen.raise_("s3", 210)  # another building
    d = screen.raise_("s1", 600)  # 400 s after the last one in b1: a new incident
    incidents = screen.incidents.open_incidents()
    assert [(i.building, i.alert_ids) for i in incidents] == [("b1", (a, b)), ("b2", (c,)), ("b1", (d,))]
    assert incidents[0].severity is Severity.CRITICAL and incidents[0].rules == {
        "smoke_prealarm",
        "fire_alarm",
    }


def test_forty_detectors_are_one_storm_incident() -> None:
    screen = Screen()
    for n in range(40):
        screen.raise_(f"d{n}", n * 2.0)
    [incident] = screen.incidents.open_incidents()
    assert len(incident.alert_ids) == 40 and incident.storm
    assert screen.incidents.incident_of(incident.alert_ids[-1]) == incident


def test_an_incident_closes_when_its_last_alert_is_resolved() -> None:
    screen = Screen()
    first, second = screen.raise_("s1", 0), screen.raise_("s2", 10)
    screen.alerts.resolve(first, "op", "false alarm: dust")
    assert screen.incidents.open_incidents()[0].open_alert_ids == {second}
    screen.now = 2000.0
    screen.alerts.resolve(second, "op", "checked")
    assert screen.incidents.open_incidents() == []
    assert screen.changes[-1].closed_at == 2000.0
    assert screen.incidents.incident_of(first) is None
    later = screen.raise_("s1", 1100)
    assert screen.incidents.incident_of(later) is not None
    assert screen.incidents.open_incidents()[0].id == screen.changes[-1].id != screen.changes[0].id


def test_repeats_do_not_add_alerts_and_restore_keeps_numbering() -> None:
    screen = Screen()
    alert_id = screen.raise_("s1", 0)
    screen.raise_("s1", 5)
    [incident] = screen.incidents.open_incidents()
    assert incident.alert_ids == (alert_id,)
    restored = IncidentTracker(lambda d: "b1", open_incidents=[incident])
    assert restored.incident_of(alert_id) == incident
    assert restored.open_incidents() == [incident]
