"""Who is told about an alert, and when: the escalation policy (SPEC section 6). Pure, no I/O.

- A new alert of `notify_severities` goes to the first tier.
- An alert of `escalate_severities` still unacknowledged after `escalate_after_s` goes to the
  next tier, and so on up; `immediate_rules` start one tier up at once.
- `police_rules` (panic) go to the police channels at once.
- Drill-tagged alerts (`details["drill"]`) never go to outside channels. Only the pipeline sets
  that key, from the modes an admin started; a device's own attrs sit under `details["attrs"]`.
- An alarm storm is told once: alerts of one incident and one rule share one message per
  channel and tier (`incident_of`), so 40 detectors in one fire are one message, not 40.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from analytics.alerts import Alert, AlertState, Severity
from analytics.incidents import Incident
from gateway.notify.config import NotifyConfig

POLICE_TIER = -1
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


class Reason(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    POLICE = "police"
    EVIDENCE_UNAVAILABLE = "evidence_unavailable"  # a follow-up: the promised video is not there


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send `alert` to `channel` (at escalation `tier`, or POLICE_TIER)."""

    alert: Alert
    channel: str
    tier: int
    reason: Reason


@dataclass(slots=True)
class _Watch:
    alert: Alert
    next_tier: int
    due_at: float


class EscalationPolicy:
    """Turns alert changes and time into dispatches; remembers what it already sent."""

    def __init__(
        self,
        config: NotifyConfig,
        incident_of: Callable[[int], Incident | None] | None = None,
        forget_after_s: float = 86400.0,
    ) -> None:
        self.config = config
        self._incident_of = incident_of
        self._forget_after_s = forget_after_s
        self._outside = {channel.name for channel in config.channels if channel.outside}
        self._seen: dict[int, Severity] = {}  # alert id -> the severity it was told at
        self._watch: dict[int, _Watch] = {}
        self._sent: dict[tuple[str, str, Severity, str, int], float] = {}  # what was sent, and when

    def restore(self, open_alerts: Iterable[Alert], now: float) -> None:
        """After a restart: watch unacknowledged open alerts again, without re-sending tier 0."""
        for alert in open_alerts:
            self._seen[alert.id] = alert.severity
            if self._escalates(alert) and len(self.config.tiers) > 1:
                self._watch[alert.id] = _Watch(alert, 1, now + self.config.escalate_after_s)

    def on_alert(self, alert: Alert, now: float) -> list[Dispatch]:
        """An alert changed (an `AlertService` listener); returns what to send now."""
        if alert.state is AlertState.RESOLVED:
            self._seen.pop(alert.id, None)
            self._watch.pop(alert.id, None)
            return []
        told = self._seen.get(alert.id)
        if told is not None:
            watch = self._watch.get(alert.id)
            if watch is not None:
                if alert.acknowledged_at is not None:
                    del self._watch[alert.id]
                else:
                    watch.alert = alert
            if _RANK[alert.severity] <= _RANK[told]:
                return []
        if not alert.condition_active or alert.state is not AlertState.ACTIVE:
            return []
        # New, or its severity rose (chem_leak warning -> major): told as a new alert.
        self._seen[alert.id] = alert.severity
        dispatches: list[Dispatch] = []
        if alert.rule in self.config.police_rules:
            dispatches += self._to(alert, self.config.police, POLICE_TIER, Reason.POLICE, now)
        tiers = self.config.tiers
        if tiers and alert.severity in self.config.notify_severities:
            dispatches += self._to(alert, tiers[0], 0, Reason.RAISED, now)
        next_tier = 1
        if alert.rule in self.config.immediate_rules and len(tiers) > 1:
            dispatches += self._to(alert, tiers[1], 1, Reason.ESCALATED, now)
            next_tier = 2
        if self._escalates(alert) and next_tier < len(tiers):
            self._watch[alert.id] = _Watch(alert, next_tier, now + self.config.escalate_after_s)
        return dispatches

    def due(self, now: float) -> list[Dispatch]:
        """Escalations whose time has come; called about once a second."""
        dispatches: list[Dispatch] = []
        tiers = self.config.tiers
        for alert_id, watch in list(self._watch.items()):
            if now < watch.due_at:
                continue
            dispatches += self._to(
                watch.alert, tiers[watch.next_tier], watch.next_tier, Reason.ESCALATED, now
            )
            watch.next_tier += 1
            watch.due_at = now + self.config.escalate_after_s
            if watch.next_tier >= len(tiers):
                del self._watch[alert_id]
        if self._sent and len(self._sent) > 1000:
            horizon = now - self._forget_after_s
            self._sent = {key: ts for key, ts in self._sent.items() if ts >= horizon}
        return dispatches

    def evidence_unavailable(self, alert: Alert) -> list[Dispatch]:
        """Whom to tell that an alert's video is unavailable: whoever was told of it at once
        (police, first tier), drill rules applying as they did."""
        dispatches: list[Dispatch] = []
        drill = bool(alert.details.get("drill"))
        targets: list[tuple[list[str], int]] = []
        if alert.rule in self.config.police_rules:
            targets.append((self.config.police, POLICE_TIER))
        if self.config.tiers and alert.severity in self.config.notify_severities:
            targets.append((self.config.tiers[0], 0))
        for channels, tier in targets:
            for channel in channels:
                if not (drill and channel in self._outside):
                    dispatches.append(Dispatch(alert, channel, tier, Reason.EVIDENCE_UNAVAILABLE))
        return dispatches

    def _escalates(self, alert: Alert) -> bool:
        return alert.severity in self.config.escalate_severities and alert.acknowledged_at is None

    def _to(
        self, alert: Alert, channels: Iterable[str], tier: int, reason: Reason, now: float
    ) -> list[Dispatch]:
        drill = bool(alert.details.get("drill"))
        incident = self._incident_of(alert.id) if self._incident_of is not None else None
        # Panic is never folded into a storm: each press is its own call for help.
        group = (
            f"alert:{alert.id}" if incident is None or reason is Reason.POLICE else f"incident:{incident.id}"
        )
        dispatches = []
        for channel in channels:
            if drill and channel in self._outside:
                continue
            key = (group, alert.rule, alert.severity, channel, tier)
            if key in self._sent:
                continue
            self._sent[key] = now
            dispatches.append(Dispatch(alert, channel, tier, reason))
        return dispatches
