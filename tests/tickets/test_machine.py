"""The state machine of SPEC section 7, every transition, and the two close rules."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from analytics.tickets import (
    ALLOWED_TRANSITIONS,
    Amendment,
    CloseBlocked,
    CloseBlocker,
    HazardCategory,
    HazardLevel,
    IllegalTransition,
    MissingResponsible,
    Ticket,
    TicketClosed,
    TicketState,
    amend,
    assign,
    close_blockers,
    transition,
)
from tests.tickets.support import T0

S = TicketState
LEGAL = {
    (S.REGISTERED, S.ASSIGNED),
    (S.ASSIGNED, S.IN_PROGRESS),
    (S.IN_PROGRESS, S.PENDING_VERIFICATION),
    (S.PENDING_VERIFICATION, S.CLOSED),
    (S.PENDING_VERIFICATION, S.IN_PROGRESS),
}
ALL_PAIRS = list(itertools.product(TicketState, TicketState))


def ticket(state: TicketState = S.REGISTERED, **overrides: object) -> Ticket:
    base = Ticket(
        id=1,
        version=1,
        title="配电间漏电",
        category=HazardCategory.ELECTRICAL,
        level=HazardLevel.MAJOR,
        state=state,
        location="B1 配电间",
        discovered_at=T0,
        discovered_by="op",
        responsible_id="wang",
        verifier_id="li",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_the_table_is_the_spec() -> None:
    table = {(src, dst) for src, targets in ALLOWED_TRANSITIONS.items() for dst in targets}
    assert table == LEGAL
    assert set(ALLOWED_TRANSITIONS) == set(TicketState)


@pytest.mark.parametrize(("source", "target"), sorted(LEGAL))
def test_every_legal_transition_is_taken(source: TicketState, target: TicketState) -> None:
    moved = transition(ticket(source), target, T0 + 60)
    assert moved.state is target
    assert moved.updated_at == T0 + 60
    assert (moved.closed_at == T0 + 60) is (target is S.CLOSED)


@pytest.mark.parametrize(("source", "target"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_every_illegal_transition_is_refused_naming_the_allowed_ones(
    source: TicketState, target: TicketState
) -> None:
    with pytest.raises(IllegalTransition) as refused:
        transition(ticket(source), target, T0)
    allowed = sorted(state.value for state in ALLOWED_TRANSITIONS[source])
    assert refused.value.allowed == tuple(allowed)
    message = str(refused.value)
    assert f"from {source.value} to {target.value}" in message
    for name in allowed:
        assert name in message
    if not allowed:
        assert "final" in message


def test_assigning_needs_a_responsible_person() -> None:
    with pytest.raises(MissingResponsible):
        transition(ticket(responsible_id=None), S.ASSIGNED, T0)


def test_assign_moves_a_registered_ticket_and_reassigns_later_ones() -> None:
    assert assign(ticket(responsible_id=None), "zhao", T0).state is S.ASSIGNED
    reassigned = assign(ticket(S.IN_PROGRESS), "zhao", T0)
    assert (reassigned.state, reassigned.responsible_id) == (S.IN_PROGRESS, "zhao")
    with pytest.raises(TicketClosed):
        assign(ticket(S.CLOSED), "zhao", T0)


class TestTwoPersonClose:
    def test_closing_without_a_verifier_is_blocked(self) -> None:
        with pytest.raises(CloseBlocked) as blocked:
            transition(ticket(S.PENDING_VERIFICATION, verifier_id=None), S.CLOSED, T0)
        assert blocked.value.blockers == (CloseBlocker.NO_VERIFIER,)

    def test_the_responsible_person_cannot_verify_their_own_work(self) -> None:
        with pytest.raises(CloseBlocked) as blocked:
            transition(ticket(S.PENDING_VERIFICATION), S.CLOSED, T0, verifier_id="wang")
        assert blocked.value.blockers == (CloseBlocker.VERIFIER_IS_RESPONSIBLE,)
        assert "other than the responsible person" in str(blocked.value)

    def test_a_second_person_closes(self) -> None:
        closed = transition(ticket(S.PENDING_VERIFICATION, verifier_id=None), S.CLOSED, T0, verifier_id="li")
        assert (closed.state, closed.verifier_id, closed.closed_at) == (S.CLOSED, "li", T0)


class TestDeviceNormalClose:
    def test_a_device_hazard_with_an_active_alert_stays_open(self) -> None:
        pending = ticket(S.PENDING_VERIFICATION, device_id="efm-1")
        with pytest.raises(CloseBlocked) as blocked:
            transition(pending, S.CLOSED, T0, uncleared_alert_ids=[7])
        assert blocked.value.blockers == (CloseBlocker.DEVICE_NOT_NORMAL,)
        assert blocked.value.uncleared_alert_ids == (7,)
        assert "active alerts: 7" in str(blocked.value)

    def test_a_device_hazard_closes_once_its_alerts_cleared(self) -> None:
        pending = ticket(S.PENDING_VERIFICATION, device_id="efm-1")
        assert transition(pending, S.CLOSED, T0, uncleared_alert_ids=[]).state is S.CLOSED

    def test_an_inspection_hazard_has_no_device_to_wait_for(self) -> None:
        assert close_blockers(ticket(S.PENDING_VERIFICATION), "li", [7]) == []

    def test_both_rules_are_reported_together(self) -> None:
        pending = ticket(S.PENDING_VERIFICATION, device_id="efm-1")
        assert close_blockers(pending, "wang", [7]) == [
            CloseBlocker.VERIFIER_IS_RESPONSIBLE,
            CloseBlocker.DEVICE_NOT_NORMAL,
        ]


def test_amend_sets_the_five_fields_and_a_new_deadline_rearms_escalation() -> None:
    escalated = ticket(S.IN_PROGRESS, deadline_ts=T0, escalated_at=T0 + 1)
    amended = amend(
        escalated,
        Amendment(measures="更换漏保", funds_cny=1200.0, contingency_plan="断电挂牌", deadline_ts=T0 + 86400),
        T0 + 2,
    )
    assert (amended.measures, amended.funds_cny, amended.contingency_plan) == ("更换漏保", 1200.0, "断电挂牌")
    assert (amended.deadline_ts, amended.escalated_at) == (T0 + 86400, None)
    assert amend(escalated, Amendment(measures="x"), T0).escalated_at == T0 + 1
    with pytest.raises(TicketClosed):
        amend(ticket(S.CLOSED), Amendment(measures="x"), T0)
