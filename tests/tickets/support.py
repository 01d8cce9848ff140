"""Scenario helpers for ticket tests: a clock the test moves, alerts, people and a recording escalator."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from analytics.alerts import Alert, Severity
from analytics.tickets import (
    HazardCategory,
    HazardLevel,
    PeopleDirectory,
    PersonConfig,
    Ticket,
    TicketDraft,
    TicketService,
)
from storage.tickets import SqliteTicketRepository

T0 = 1_790_000_000.0  # 2026-09-21 UTC: a fixed start for every scenario
HOUR_S = 3600.0
DAY_S = 86400.0

DRAFT = TicketDraft(
    title="化学实验室危化品柜违规开启",
    category=HazardCategory.CHEMICAL,
    level=HazardLevel.MAJOR,
    location="实验楼 2F",
    discovered_at=T0,
    discovered_by="op",
    rule="dual_control_violation",
    subject="cab-1",
    device_id="cab-1",
)


PEOPLE = [
    PersonConfig(id="wang", name="王建国", role="总务主任", phone="13800000001"),
    PersonConfig(id="li", name="李红", role="安全干事", phone="13800000002"),
    PersonConfig(id="zhao", name="赵强", role="电工", phone="13800000003"),
]


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class RecordingEscalator:
    escalated: list[tuple[int, str]] = field(default_factory=list)
    fail: bool = False

    def escalate(self, ticket: Ticket, reason: str) -> None:
        if self.fail:
            raise ConnectionError("webhook unreachable")
        self.escalated.append((ticket.id, reason))


@dataclass
class AlertBook:
    """Alerts by id, as the alert service and store would return them."""

    alerts: dict[int, Alert] = field(default_factory=dict)
    next_id: int = 1

    def raise_alert(self, rule: str, device_id: str, ts: float, severity: Severity = Severity.MAJOR) -> Alert:
        alert = Alert(
            id=self.next_id,
            rule=rule,
            subject=device_id,
            device_id=device_id,
            severity=severity,
            condition_active=True,
            first_seen=ts,
            last_seen=ts,
        )
        self.next_id += 1
        self.alerts[alert.id] = alert
        return alert

    def clear(self, alert_id: int, ts: float) -> Alert:
        alert = replace(self.alerts[alert_id], condition_active=False, cleared_at=ts)
        self.alerts[alert_id] = alert
        return alert

    def resolve(self, alert_id: int, ts: float) -> Alert:
        alert = replace(self.alerts[alert_id], resolved_at=ts, resolved_by="op", resolution_note="done")
        self.alerts[alert_id] = alert
        return alert

    def get(self, alert_id: int) -> Alert | None:
        return self.alerts.get(alert_id)


@dataclass
class TicketWorld:
    clock: FakeClock
    alerts: AlertBook
    escalator: RecordingEscalator
    repository: SqliteTicketRepository
    service: TicketService


def make_world(db_path: Path) -> TicketWorld:
    clock = FakeClock()
    alerts = AlertBook()
    escalator = RecordingEscalator()
    repository = SqliteTicketRepository(db_path)
    service = TicketService(
        repository,
        PeopleDirectory(PEOPLE),
        alerts.get,
        clock,
        escalator=escalator,
        locate=lambda device_id: f"教学楼 {device_id}",
    )
    return TicketWorld(clock, alerts, escalator, repository, service)
