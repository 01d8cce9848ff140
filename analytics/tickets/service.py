"""The ticket service: operator actions, alert links and policies, over a repository port.

Synchronous and clock-injected like `AlertService`. The repository does optimistic versioning;
the service adds the rules that need more than one ticket: one open ticket per alert condition
(rule, subject), automatic tickets by policy, and escalation of overdue major hazards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from analytics.alerts import Alert, AlertState, Severity
from analytics.rules.catalogue import RULES
from analytics.texts import alert_title
from analytics.tickets.errors import TicketNotFound, UnknownAlert, VersionConflict
from analytics.tickets.machine import (
    Amendment,
    CloseBlocker,
    amend,
    assign,
    close_blockers,
    transition,
)
from analytics.tickets.model import (
    FieldChanges,
    HazardCategory,
    HazardLevel,
    HistoryEntry,
    Ticket,
    TicketComment,
    TicketDraft,
    TicketPhoto,
    TicketState,
    changed_fields,
)
from analytics.tickets.overdue import Escalator, escalation_reason, is_overdue, needs_escalation
from analytics.tickets.people import PeopleDirectory
from analytics.tickets.policies import (
    AlertHistory,
    PolicyTrigger,
    TicketPolicy,
    default_policies,
    draft_from_policy,
    first_due_policy,
)

log = logging.getLogger(__name__)

OPEN_STATES = tuple(state for state in TicketState if state is not TicketState.CLOSED)
SYSTEM = "system"


class TicketRepository(Protocol):
    """Durable tickets with optimistic versioning; `save` refuses a stale `expected_version`."""

    def create(self, draft: TicketDraft, actor: str, alert_ids: Sequence[int]) -> Ticket: ...

    def get(self, ticket_id: int) -> Ticket | None: ...

    def save(
        self, ticket: Ticket, expected_version: int, actor: str, action: str, changes: FieldChanges
    ) -> Ticket: ...

    def tickets(
        self,
        states: Sequence[TicketState] = (),
        level: HazardLevel | None = None,
        category: HazardCategory | None = None,
    ) -> list[Ticket]: ...

    def attach_alert(self, ticket_id: int, alert_id: int, ts: float, actor: str) -> bool: ...

    def alert_ids(self, ticket_id: int) -> list[int]: ...

    def ticket_id_for_alert(self, alert_id: int) -> int | None: ...

    def add_comment(self, ticket_id: int, ts: float, actor: str, text: str) -> TicketComment: ...

    def comments(self, ticket_id: int) -> list[TicketComment]: ...

    def add_photo(
        self,
        ticket_id: int,
        ts: float,
        actor: str,
        filename: str,
        content_type: str,
        size_bytes: int,
        stored_name: str,
    ) -> TicketPhoto: ...

    def photos(self, ticket_id: int) -> list[TicketPhoto]: ...

    def history(self, ticket_id: int) -> list[HistoryEntry]: ...

    def record_occurrence(self, rule: str, subject: str, ts: float) -> None: ...

    def occurrences_since(self, rule: str, subject: str, since_ts: float) -> list[float]: ...


AlertById = Callable[[int], Alert | None]


def category_for_rule(rule: str) -> HazardCategory:
    """The hazard category an alert rule suggests; device health rules are `device`."""
    entry = RULES.get(rule)
    return entry.category if entry is not None else HazardCategory.DEVICE


def level_for_severity(severity: Severity) -> HazardLevel:
    return HazardLevel.MAJOR if severity in (Severity.MAJOR, Severity.CRITICAL) else HazardLevel.GENERAL


class TicketService:
    """Applies operator actions, alert changes and periodic sweeps to tickets.

    Not thread-safe, on purpose: the gateway calls it from one thread only (its ticket desk), so
    a check and the write after it cannot interleave with another caller's, and no lock is held.

    Args:
        alert_by_id: any alert, open or resolved; None when unknown.
        locate: a device id's location text for new tickets.
        known_alerts: alerts open at start, so a repeat after a restart is not a new occurrence.
    """

    def __init__(
        self,
        repository: TicketRepository,
        people: PeopleDirectory,
        alert_by_id: AlertById,
        clock: Callable[[], float],
        policies: Mapping[str, TicketPolicy] | None = None,
        escalator: Escalator | None = None,
        locate: Callable[[str], str] = str,
        known_alerts: Iterable[Alert] = (),
    ) -> None:
        self.repository = repository
        self.people = people
        self._alert_by_id = alert_by_id
        self._clock = clock
        self.policies = dict(default_policies() if policies is None else policies)
        self._escalator = escalator
        self._locate = locate
        # Every alert change passes through on_alert; these keep that cheap.
        self._open_by_condition: dict[tuple[str, str], int] = {}
        self._linked: set[int] = set()
        for ticket in repository.tickets(OPEN_STATES):
            self._remember_open(ticket)
        self._active_since = {a.id: a.first_seen for a in known_alerts if a.condition_active}
        self._repeat_rules = {
            p.rule for p in self.policies.values() if p.enabled and p.trigger is PolicyTrigger.REPEATED
        }
        self._policy_rules = {p.rule for p in self.policies.values() if p.enabled}

    # -- reads -------------------------------------------------------------------------------

    def get(self, ticket_id: int) -> Ticket:
        ticket = self.repository.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        return ticket

    def uncleared_alert_ids(self, ticket: Ticket) -> list[int]:
        """Linked alerts whose condition is still active (the device is not back to normal)."""
        uncleared = []
        for alert_id in self.repository.alert_ids(ticket.id):
            alert = self._alert_by_id(alert_id)
            if alert is not None and alert.condition_active:
                uncleared.append(alert_id)
        return uncleared

    def close_blockers(self, ticket: Ticket, verifier_id: str | None = None) -> list[CloseBlocker]:
        verifier = verifier_id if verifier_id is not None else ticket.verifier_id
        return close_blockers(ticket, verifier, self.uncleared_alert_ids(ticket))

    def overdue(self, level: HazardLevel | None = None) -> list[Ticket]:
        now = self._clock()
        return [t for t in self.repository.tickets(OPEN_STATES, level=level) if is_overdue(t, now)]

    # -- operator actions --------------------------------------------------------------------

    def register(self, draft: TicketDraft, actor: str) -> Ticket:
        """A hazard found by inspection rather than by a device."""
        return self.repository.create(draft, actor, ())

    def open_from_alert(
        self,
        alert_id: int,
        actor: str,
        title: str | None = None,
        category: HazardCategory | None = None,
        level: HazardLevel | None = None,
        deadline_ts: float | None = None,
    ) -> tuple[Ticket, bool]:
        """A ticket for this alert, or the open one for its condition with the alert attached.

        Returns the ticket and whether it is new.
        """
        alert = self._alert_by_id(alert_id)
        if alert is None:
            raise UnknownAlert(alert_id)
        now = self._clock()
        existing = self._open_by_condition.get((alert.rule, alert.subject))
        if existing is not None:
            self._attach(existing, alert.id, now, actor)
            return self.get(existing), False
        draft = TicketDraft(
            title=title or alert_title(alert, "zh-CN"),
            category=category or category_for_rule(alert.rule),
            level=level or level_for_severity(alert.severity),
            location=self._locate(alert.device_id),
            discovered_at=now,
            discovered_by=actor,
            rule=alert.rule,
            subject=alert.subject,
            device_id=alert.device_id,
            deadline_ts=deadline_ts,
        )
        return self._create(draft, actor, alert.id), True

    def assign(self, ticket_id: int, responsible_id: str, actor: str, expected_version: int | None) -> Ticket:
        self.people.require(responsible_id)
        return self._mutate(
            ticket_id, expected_version, actor, "assign", lambda t, now: assign(t, responsible_id, now)
        )

    def amend(self, ticket_id: int, amendment: Amendment, actor: str, expected_version: int | None) -> Ticket:
        if amendment.verifier_id is not None:
            self.people.require(amendment.verifier_id)
        return self._mutate(
            ticket_id, expected_version, actor, "update", lambda t, now: amend(t, amendment, now)
        )

    def transition(
        self,
        ticket_id: int,
        target: TicketState,
        actor: str,
        expected_version: int | None,
        verifier_id: str | None = None,
        note: str = "",
    ) -> Ticket:
        if verifier_id is not None:
            self.people.require(verifier_id)

        def move(ticket: Ticket, now: float) -> Ticket:
            uncleared = self.uncleared_alert_ids(ticket) if target is TicketState.CLOSED else []
            return transition(ticket, target, now, verifier_id, uncleared)

        moved = self._mutate(ticket_id, expected_version, actor, f"transition:{target.value}", move)
        if note.strip():
            self.repository.add_comment(ticket_id, self._clock(), actor, note.strip())
        return moved

    def comment(self, ticket_id: int, actor: str, text: str) -> TicketComment:
        self.get(ticket_id)
        return self.repository.add_comment(ticket_id, self._clock(), actor, text)

    def attach_alert(self, ticket_id: int, alert_id: int, actor: str) -> Ticket:
        if self._alert_by_id(alert_id) is None:
            raise UnknownAlert(alert_id)
        ticket = self.get(ticket_id)
        self._attach(ticket.id, alert_id, self._clock(), actor)
        return ticket

    # -- alerts and time ---------------------------------------------------------------------

    def on_alert(self, alert: Alert) -> None:
        """AlertService listener: link new alerts of an open condition, or open a ticket by policy."""
        if alert.state is AlertState.RESOLVED or not alert.condition_active:
            self._active_since.pop(alert.id, None)
            return
        became_active = alert.id not in self._active_since
        if became_active:
            self._active_since[alert.id] = alert.last_seen
            if alert.rule in self._repeat_rules:
                self.repository.record_occurrence(alert.rule, alert.subject, alert.last_seen)
        ticket_id = self._open_by_condition.get((alert.rule, alert.subject))
        if ticket_id is not None:
            if alert.id not in self._linked:
                self._attach(ticket_id, alert.id, self._clock(), SYSTEM)
        elif became_active and alert.rule in self._policy_rules:
            self._apply_policies(alert)

    def sweep(self, open_alerts: Iterable[Alert]) -> list[Ticket]:
        """Periodic: tickets for conditions that have now lasted long enough; escalate overdue majors.

        Returns the tickets created or escalated.
        """
        touched: list[Ticket] = []
        for alert in open_alerts:
            if alert.condition_active and alert.rule in self._policy_rules and alert.id not in self._linked:
                created = self._apply_policies(alert)
                if created is not None:
                    touched.append(created)
        if self._escalator is None:
            return touched
        now = self._clock()
        for ticket in self.repository.tickets(OPEN_STATES, level=HazardLevel.MAJOR):
            if not needs_escalation(ticket, now):
                continue
            try:
                self._escalator.escalate(ticket, escalation_reason(ticket, now))
            except Exception:
                log.exception("escalating ticket %d failed; retrying on the next sweep", ticket.id)
                continue
            try:
                touched.append(self._mutate(ticket.id, ticket.version, SYSTEM, "escalate", _escalated))
            except VersionConflict:
                log.info("ticket %d changed while escalating; the next sweep looks again", ticket.id)
        return touched

    # -- internals ---------------------------------------------------------------------------

    def _apply_policies(self, alert: Alert) -> Ticket | None:
        now = self._clock()
        active_since = self._active_since.get(alert.id, alert.first_seen)
        occurrences: list[float] = []
        if alert.rule in self._repeat_rules:
            window_s = max(p.window_s for p in self.policies.values() if p.rule == alert.rule and p.enabled)
            occurrences = self.repository.occurrences_since(alert.rule, alert.subject, now - window_s)
        name = first_due_policy(self.policies, alert, AlertHistory(active_since, occurrences), now)
        if name is None:
            return None
        draft = draft_from_policy(name, self.policies[name], alert, self._locate(alert.device_id), now)
        return self._create(draft, SYSTEM, alert.id)

    def _create(self, draft: TicketDraft, actor: str, alert_id: int) -> Ticket:
        ticket = self.repository.create(draft, actor, (alert_id,))
        self._remember_open(ticket)
        self._linked.add(alert_id)
        return ticket

    def _attach(self, ticket_id: int, alert_id: int, now: float, actor: str) -> None:
        self.repository.attach_alert(ticket_id, alert_id, now, actor)
        self._linked.add(alert_id)

    def _remember_open(self, ticket: Ticket) -> None:
        if ticket.rule:
            self._open_by_condition[(ticket.rule, ticket.subject)] = ticket.id
        self._linked.update(self.repository.alert_ids(ticket.id))

    def _forget(self, ticket: Ticket) -> None:
        if self._open_by_condition.get((ticket.rule, ticket.subject)) == ticket.id:
            del self._open_by_condition[(ticket.rule, ticket.subject)]
        self._linked.difference_update(self.repository.alert_ids(ticket.id))

    def _mutate(
        self,
        ticket_id: int,
        expected_version: int | None,
        actor: str,
        action: str,
        change: Callable[[Ticket, float], Ticket],
    ) -> Ticket:
        current = self.get(ticket_id)
        if expected_version is not None and expected_version != current.version:
            raise VersionConflict(ticket_id, expected_version, current.version)
        updated = change(current, self._clock())
        saved = self.repository.save(
            updated, current.version, actor, action, changed_fields(current, updated)
        )
        if not saved.is_open:
            self._forget(saved)
        return saved


def _escalated(ticket: Ticket, now: float) -> Ticket:
    return replace(ticket, escalated_at=now, updated_at=now)
