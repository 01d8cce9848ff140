"""What can go wrong with a ticket, each with a message an operator can act on."""

from __future__ import annotations

from collections.abc import Iterable

from analytics.tickets.model import TicketState


class TicketError(Exception):
    """Base of every refusal the ticket domain gives."""


class TicketNotFound(TicketError, LookupError):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} does not exist")
        self.ticket_id = ticket_id


class VersionConflict(TicketError):
    """Someone else changed the ticket since the caller read it (optimistic versioning)."""

    def __init__(self, ticket_id: int, expected: int, current: int) -> None:
        super().__init__(
            f"ticket {ticket_id} is at version {current}, not {expected}: someone else changed it; "
            "reload and apply your change again"
        )
        self.ticket_id = ticket_id
        self.expected = expected
        self.current = current


class IllegalTransition(TicketError):
    def __init__(self, current: TicketState, target: TicketState, allowed: Iterable[TicketState]) -> None:
        names = sorted(state.value for state in allowed)
        allowed_text = ", ".join(names) if names else f"none, {current.value} is final"
        super().__init__(
            f"a ticket cannot go from {current.value} to {target.value}; allowed from {current.value}: "
            f"{allowed_text}"
        )
        self.current = current
        self.target = target
        self.allowed = tuple(names)


class TicketClosed(TicketError):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} is closed (销号) and can no longer change")


class MissingResponsible(TicketError):
    def __init__(self) -> None:
        super().__init__("assign a responsible person (责任人) before the ticket can be assigned")


class UnknownPerson(TicketError, LookupError):
    def __init__(self, person_id: str, known: Iterable[str]) -> None:
        super().__init__(f"no person {person_id!r} in the people config (known: {', '.join(sorted(known))})")
        self.person_id = person_id


class UnknownAlert(TicketError, LookupError):
    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} does not exist")
        self.alert_id = alert_id
