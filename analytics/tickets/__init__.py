"""Remediation tickets (SPEC section 7, 隐患闭环): pure domain, no I/O.

- `Ticket`, `TicketState`, `HazardCategory`, `HazardLevel`: the record and its closed sets.
- `transition`, `assign`, `amend`, `ALLOWED_TRANSITIONS`, `close_blockers`: the state machine.
- `TicketPolicy`, `configure_policies`, `first_due_policy`: automatic tickets by policy.
- `is_overdue`, `needs_escalation`, `Escalator`: deadlines and escalation to the bureau.
- `PersonConfig`, `PeopleDirectory`: responsible persons and verifiers from config.
- `TicketService`, `TicketRepository`: the service over a repository port.
- `reports`: the two lists (两个清单) as CSV and the monthly report; `config.TicketsConfig`:
  the `tickets` config section.
"""

from analytics.tickets.errors import (
    IllegalTransition,
    MissingResponsible,
    TicketClosed,
    TicketError,
    TicketNotFound,
    UnknownAlert,
    UnknownPerson,
    VersionConflict,
)
from analytics.tickets.machine import (
    ALLOWED_TRANSITIONS,
    Amendment,
    CloseBlocked,
    CloseBlocker,
    allowed_targets,
    amend,
    assign,
    close_blockers,
    transition,
)
from analytics.tickets.model import (
    HazardCategory,
    HazardLevel,
    HistoryEntry,
    Ticket,
    TicketComment,
    TicketDraft,
    TicketPhoto,
    TicketState,
)
from analytics.tickets.overdue import Escalator, escalation_reason, is_overdue, needs_escalation
from analytics.tickets.people import PeopleDirectory, PersonConfig
from analytics.tickets.policies import (
    PolicyConfigError,
    PolicyTrigger,
    TicketPolicy,
    configure_policies,
    default_policies,
    first_due_policy,
)
from analytics.tickets.service import TicketRepository, TicketService

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Amendment",
    "CloseBlocked",
    "CloseBlocker",
    "Escalator",
    "HazardCategory",
    "HazardLevel",
    "HistoryEntry",
    "IllegalTransition",
    "MissingResponsible",
    "PeopleDirectory",
    "PersonConfig",
    "PolicyConfigError",
    "PolicyTrigger",
    "Ticket",
    "TicketClosed",
    "TicketComment",
    "TicketDraft",
    "TicketError",
    "TicketNotFound",
    "TicketPhoto",
    "TicketPolicy",
    "TicketRepository",
    "TicketService",
    "TicketState",
    "UnknownAlert",
    "UnknownPerson",
    "VersionConflict",
    "allowed_targets",
    "amend",
    "assign",
    "close_blockers",
    "configure_policies",
    "default_policies",
    "escalation_reason",
    "first_due_policy",
    "is_overdue",
    "needs_escalation",
    "transition",
]
