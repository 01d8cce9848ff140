"""The ticket record of SPEC section 7: one hazard, its five implementations and its state."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from analytics.hazards import HazardCategory as HazardCategory  # re-exported: tickets carry them
from analytics.hazards import HazardLevel as HazardLevel


class TicketState(StrEnum):
    REGISTERED = "registered"  # discovered and registered, nobody responsible yet
    ASSIGNED = "assigned"  # a responsible person (责任人) has it
    IN_PROGRESS = "in_progress"  # remediation under way
    PENDING_VERIFICATION = "pending_verification"  # remediated, awaiting a second person's check
    CLOSED = "closed"  # verified and closed (销号)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One hazard and its remediation. `version` rises by one with every stored change.

    `rule` and `subject` name the alert condition the hazard came from (empty when an operator
    found it on an inspection); `device_id` is set when a device raised it, and closing then needs
    every linked alert cleared. Linked alert ids live beside the record, not in it, so attaching
    an alert never conflicts with an operator's edit.
    """

    id: int
    version: int
    title: str
    category: HazardCategory
    level: HazardLevel
    state: TicketState
    location: str
    discovered_at: float
    discovered_by: str
    source: str = "operator"  # "operator" or "policy:<name>"
    rule: str = ""
    subject: str = ""
    device_id: str = ""
    responsible_id: str | None = None
    verifier_id: str | None = None
    measures: str = ""
    funds_cny: float | None = None
    deadline_ts: float | None = None
    contingency_plan: str = ""
    updated_at: float = 0.0
    closed_at: float | None = None
    escalated_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not TicketState.CLOSED


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """What is known when a hazard is registered, before the repository gives it an id."""

    title: str
    category: HazardCategory
    level: HazardLevel
    location: str
    discovered_at: float
    discovered_by: str
    source: str = "operator"
    rule: str = ""
    subject: str = ""
    device_id: str = ""
    deadline_ts: float | None = None

    def register(self, ticket_id: int) -> Ticket:
        return Ticket(
            id=ticket_id,
            version=1,
            title=self.title,
            category=self.category,
            level=self.level,
            state=TicketState.REGISTERED,
            location=self.location,
            discovered_at=self.discovered_at,
            discovered_by=self.discovered_by,
            source=self.source,
            rule=self.rule,
            subject=self.subject,
            device_id=self.device_id,
            deadline_ts=self.deadline_ts,
            updated_at=self.discovered_at,
        )


FieldChanges = dict[str, tuple[Any, Any]]
"""Field name -> (old value, new value), as audited in the ticket's history."""


def changed_fields(old: Ticket, new: Ticket) -> FieldChanges:
    """The fields that differ between two versions of a ticket, ignoring bookkeeping."""
    ignored = {"version", "updated_at"}
    changes: FieldChanges = {}
    for item in fields(Ticket):
        before, after = getattr(old, item.name), getattr(new, item.name)
        if item.name not in ignored and before != after:
            changes[item.name] = (before, after)
    return changes


@dataclass(frozen=True, slots=True)
class TicketComment:
    id: int
    ticket_id: int
    ts: float
    actor: str
    text: str


@dataclass(frozen=True, slots=True)
class TicketPhoto:
    """A photo's record; the bytes live in the photo folder under `stored_name`."""

    id: int
    ticket_id: int
    ts: float
    actor: str
    filename: str
    content_type: str
    size_bytes: int
    stored_name: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One audited change: who, when, what, and each field's old and new value."""

    ticket_id: int
    ts: float
    actor: str
    action: str
    changes: FieldChanges
