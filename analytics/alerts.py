"""Alert lifecycle (SPEC section 6): one open alert per (rule, subject), ack / clear / resolve.

Pure and synchronous: the service keeps open alerts in memory, and reports every change to
an `AlertJournal` (the store) and to listeners (the live stream). Clock injected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from analytics.bus import MessageBus


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"


class AlertState(StrEnum):
    ACTIVE = "active"  # condition present, nobody has acknowledged it
    ACKNOWLEDGED = "acknowledged"  # condition present, an operator has it
    CLEARED = "cleared"  # condition ended, awaiting an operator's resolution
    RESOLVED = "resolved"  # closed by an operator with a note


@dataclass(frozen=True, slots=True)
class AlertSignal:
    """A rule's verdict about one subject: the condition is raised (or still raised) or cleared."""

    rule: str
    subject: str  # a device id, or a zone key for cross-device rules
    raised: bool
    ts: float
    severity: Severity = Severity.WARNING
    device_id: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


ACKNOWLEDGED_COUNT = "acknowledged_count"  # key in Alert.details: `count` when last acknowledged


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule: str
    subject: str
    device_id: str
    severity: Severity
    condition_active: bool
    first_seen: float
    last_seen: float
    count: int = 1
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    cleared_at: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1  # grows with every change, so the store keeps the newest whatever the order

    @property
    def repeated_since_ack(self) -> bool:
        """Acknowledged, then raised again (a second press, a gate forced again): needs attention.

        Judged by count, not by time: `last_seen` is the device's clock, the acknowledgement the
        gateway's. The count at acknowledgement rides in `details` (persisted with the alert).
        """
        return (
            self.acknowledged_at is not None
            and self.condition_active
            and self.resolved_at is None
            and self.count > int(self.details.get(ACKNOWLEDGED_COUNT, self.count))
        )

    @property
    def state(self) -> AlertState:
        if self.resolved_at is not None:
            return AlertState.RESOLVED
        if not self.condition_active:
            return AlertState.CLEARED
        return AlertState.ACKNOWLEDGED if self.acknowledged_at is not None else AlertState.ACTIVE


class AlertJournal(Protocol):
    """Durable record of alerts and of who changed them."""

    def save_alert(self, alert: Alert) -> None: ...

    def audit(self, ts: float, actor: str, entity: str, entity_id: str, action: str, detail: str) -> None: ...


class AlertNotFound(LookupError):
    pass


class AlertAlreadyResolved(ValueError):
    pass


AlertListener = Callable[[Alert], None]


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """Published on the bus after every change of an alert (raised, repeated, acked, cleared, resolved)."""

    alert: Alert


class AlertService:
    """Applies rule signals and operator actions to open alerts."""

    def __init__(
        self,
        journal: AlertJournal,
        clock: Callable[[], float],
        next_id: int = 1,
        open_alerts: Iterable[Alert] = (),
        bus: MessageBus | None = None,
    ) -> None:
        self._journal = journal
        self._clock = clock
        self._next_id = next_id
        self._open: dict[tuple[str, str], Alert] = {}
        self._by_id: dict[int, Alert] = {}
        self.bus = bus or MessageBus()
        for alert in open_alerts:
            self._remember(alert)

    def subscribe(self, listener: AlertListener) -> None:
        """Hear every change (a handler of `AlertChanged` on the bus)."""
        self.bus.subscribe(AlertChanged, lambda message: listener(message.alert))

    def open_alerts(self) -> list[Alert]:
        return sorted(self._by_id.values(), key=lambda alert: alert.id)

    def get_open(self, alert_id: int) -> Alert | None:
        return self._by_id.get(alert_id)

    def open_for(self, rule: str, subject: str) -> Alert | None:
        """The open alert a signal of (`rule`, `subject`) would repeat, if there is one."""
        return self._open.get((rule, subject))

    def apply(self, signal: AlertSignal) -> Alert | None:
        """Raise, repeat or clear the open alert this signal is about; returns what changed."""
        key = (signal.rule, signal.subject)
        current = self._open.get(key)
        if signal.raised:
            if current is None:
                alert = Alert(
                    id=self._next_id,
                    rule=signal.rule,
                    subject=signal.subject,
                    device_id=signal.device_id or signal.subject,
                    severity=signal.severity,
                    condition_active=True,
                    first_seen=signal.ts,
                    last_seen=signal.ts,
                    details=dict(signal.details),
                )
                self._next_id += 1
                return self._commit(alert, "system", "raised", "")
            alert = replace(
                current,
                count=current.count + 1,
                last_seen=max(current.last_seen, signal.ts),
                condition_active=True,
                cleared_at=None,
                severity=max(current.severity, signal.severity, key=_SEVERITY_ORDER.__getitem__),
                details={**current.details, **signal.details},
            )
            action = "repeated" if current.condition_active else "reactivated"
            return self._commit(alert, "system", action, "")
        if current is None or not current.condition_active:
            return None
        return self._commit(
            replace(current, condition_active=False, cleared_at=signal.ts), "system", "cleared", ""
        )

    def acknowledge(self, alert_id: int, actor: str) -> Alert:
        """Take an alert; again after it repeated (panic pressed again), since the repeat is new."""
        alert = self._require_open(alert_id)
        if not alert.repeated_since_ack and alert.acknowledged_at is not None:
            return alert
        taken = replace(
            alert,
            acknowledged_at=self._clock(),
            acknowledged_by=actor,
            details={**alert.details, ACKNOWLEDGED_COUNT: alert.count},
        )
        return self._commit(taken, actor, "acknowledged", "")

    def resolve(self, alert_id: int, actor: str, note: str) -> Alert:
        alert = self._require_open(alert_id)
        now = self._clock()
        resolved = replace(alert, resolved_at=now, resolved_by=actor, resolution_note=note)
        if resolved.acknowledged_at is None:
            resolved = replace(resolved, acknowledged_at=now, acknowledged_by=actor)
        return self._commit(resolved, actor, "resolved", note)

    def annotate(self, alert_id: int, details: Mapping[str, Any], action: str) -> Alert | None:
        """Replace some of an open alert's details (its evidence entries, say) as the system;
        committed, audited as `action` and published like any change. None if no longer open."""
        alert = self._by_id.get(alert_id)
        if alert is None:
            return None
        return self._commit(replace(alert, details={**alert.details, **details}), "system", action, "")

    def _require_open(self, alert_id: int) -> Alert:
        alert = self._by_id.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"alert {alert_id} is not open")
        return alert

    def _commit(self, alert: Alert, actor: str, action: str, note: str) -> Alert:
        previous = self._by_id.get(alert.id)
        if previous is not None:
            alert = replace(alert, version=previous.version + 1)
        if alert.state is AlertState.RESOLVED:
            self._open.pop((alert.rule, alert.subject), None)
            self._by_id.pop(alert.id, None)
        else:
            self._remember(alert)
        self._journal.save_alert(alert)
        # Repeats are counted on the alert itself; auditing each one would flood the trail.
        if action != "repeated":
            self._journal.audit(self._clock(), actor, "alert", str(alert.id), action, note)
        self.bus.publish(AlertChanged(alert))
        return alert

    def _remember(self, alert: Alert) -> None:
        self._open[(alert.rule, alert.subject)] = alert
        self._by_id[alert.id] = alert


_SEVERITY_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}
