"""The ticket state machine (SPEC section 7): the allowed transitions and the close rules.

Pure functions from a ticket and a moment to the next ticket; refusals are raised as types
that name what is allowed or what blocks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum

from analytics.tickets.errors import IllegalTransition, MissingResponsible, TicketClosed, TicketError
from analytics.tickets.model import HazardCategory, HazardLevel, Ticket, TicketState

S = TicketState
ALLOWED_TRANSITIONS: Mapping[TicketState, frozenset[TicketState]] = {
    S.REGISTERED: frozenset({S.ASSIGNED}),
    S.ASSIGNED: frozenset({S.IN_PROGRESS}),
    S.IN_PROGRESS: frozenset({S.PENDING_VERIFICATION}),
    # A failed verification sends the work back; it is not a new ticket.
    S.PENDING_VERIFICATION: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset(),
}


class CloseBlocker(StrEnum):
    """A condition that keeps a ticket pending verification from being closed."""

    NO_VERIFIER = "no_verifier"
    VERIFIER_IS_RESPONSIBLE = "verifier_is_responsible"
    DEVICE_NOT_NORMAL = "device_not_normal"

    @property
    def message(self) -> str:
        return _BLOCKER_MESSAGES[self]


_BLOCKER_MESSAGES = {
    CloseBlocker.NO_VERIFIER: "closing needs a verifier (验收人)",
    CloseBlocker.VERIFIER_IS_RESPONSIBLE: "the verifier must be someone other than the responsible person",
    CloseBlocker.DEVICE_NOT_NORMAL: "the device that raised this hazard has not returned to normal "
    "(a linked alert is still active)",
}


class CloseBlocked(TicketError):
    def __init__(self, blockers: Collection[CloseBlocker], uncleared_alert_ids: Collection[int]) -> None:
        reasons = [blocker.message for blocker in blockers]
        if uncleared_alert_ids:
            reasons.append(f"active alerts: {', '.join(str(i) for i in sorted(uncleared_alert_ids))}")
        super().__init__("cannot close: " + "; ".join(reasons))
        self.blockers = tuple(blockers)
        self.uncleared_alert_ids = tuple(sorted(uncleared_alert_ids))


def allowed_targets(state: TicketState) -> frozenset[TicketState]:
    return ALLOWED_TRANSITIONS[state]


def close_blockers(
    ticket: Ticket, verifier_id: str | None, uncleared_alert_ids: Collection[int]
) -> list[CloseBlocker]:
    """Why this ticket could not be closed now by `verifier_id`; empty when it can."""
    blockers: list[CloseBlocker] = []
    if verifier_id is None:
        blockers.append(CloseBlocker.NO_VERIFIER)
    elif verifier_id == ticket.responsible_id:
        blockers.append(CloseBlocker.VERIFIER_IS_RESPONSIBLE)
    if ticket.device_id and uncleared_alert_ids:
        blockers.append(CloseBlocker.DEVICE_NOT_NORMAL)
    return blockers


def transition(
    ticket: Ticket,
    target: TicketState,
    now: float,
    verifier_id: str | None = None,
    uncleared_alert_ids: Collection[int] = (),
) -> Ticket:
    """The ticket moved to `target` at `now`, or a refusal naming what is allowed or what blocks.

    Args:
        verifier_id: who verifies a close; defaults to the verifier already on the ticket.
        uncleared_alert_ids: linked alerts whose condition is still active.
    """
    allowed = ALLOWED_TRANSITIONS[ticket.state]
    if target not in allowed:
        raise IllegalTransition(ticket.state, target, allowed)
    if target is S.ASSIGNED and ticket.responsible_id is None:
        raise MissingResponsible()
    if target is S.CLOSED:
        verifier = verifier_id if verifier_id is not None else ticket.verifier_id
        blockers = close_blockers(ticket, verifier, uncleared_alert_ids)
        if blockers:
            shown = uncleared_alert_ids if CloseBlocker.DEVICE_NOT_NORMAL in blockers else ()
            raise CloseBlocked(blockers, shown)
        return replace(ticket, state=target, verifier_id=verifier, closed_at=now, updated_at=now)
    return replace(ticket, state=target, updated_at=now)


def assign(ticket: Ticket, responsible_id: str, now: float) -> Ticket:
    """Give the ticket a responsible person; a registered ticket becomes assigned."""
    if not ticket.is_open:
        raise TicketClosed(ticket.id)
    assigned = replace(ticket, responsible_id=responsible_id, updated_at=now)
    if ticket.state is S.REGISTERED:
        return transition(assigned, S.ASSIGNED, now)
    return assigned


@dataclass(frozen=True, slots=True)
class Amendment:
    """Edits to a ticket's description and its five implementations; None leaves a field as it is."""

    title: str | None = None
    category: HazardCategory | None = None
    level: HazardLevel | None = None
    location: str | None = None
    measures: str | None = None
    funds_cny: float | None = None
    deadline_ts: float | None = None
    contingency_plan: str | None = None
    verifier_id: str | None = None


def amend(ticket: Ticket, amendment: Amendment, now: float) -> Ticket:
    """The ticket with the given fields changed; a new deadline re-arms escalation."""
    if not ticket.is_open:
        raise TicketClosed(ticket.id)
    values = {
        item.name: getattr(amendment, item.name)
        for item in fields(Amendment)
        if getattr(amendment, item.name) is not None
    }
    amended = replace(ticket, **values, updated_at=now)
    if amended.deadline_ts != ticket.deadline_ts:
        amended = replace(amended, escalated_at=None)
    return amended
