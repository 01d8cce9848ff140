"""Deadlines (时限): when a ticket is overdue, and when an overdue major hazard goes to the bureau."""

from __future__ import annotations

from typing import Protocol

from analytics.tickets.model import HazardLevel, Ticket


class Escalator(Protocol):
    """Delivers an overdue major hazard to the bureau (挂牌督办) through the notification channels."""

    def escalate(self, ticket: Ticket, reason: str) -> None: ...


def is_overdue(ticket: Ticket, now: float) -> bool:
    return ticket.is_open and ticket.deadline_ts is not None and now > ticket.deadline_ts


def needs_escalation(ticket: Ticket, now: float) -> bool:
    """Overdue, major and not yet escalated since its deadline was last set."""
    return is_overdue(ticket, now) and ticket.level is HazardLevel.MAJOR and ticket.escalated_at is None


def escalation_reason(ticket: Ticket, now: float) -> str:
    assert ticket.deadline_ts is not None
    hours = (now - ticket.deadline_ts) / 3600
    return (
        f"重大隐患逾期 {hours:.1f} 小时未销号（挂牌督办）: {ticket.title} @ {ticket.location} / "
        f"major hazard overdue by {hours:.1f} h"
    )
