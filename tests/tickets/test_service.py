"""The service: links both ways, one open ticket per condition, auto tickets, escalation."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from analytics.alerts import Alert, AlertService, AlertSignal, Severity
from analytics.tickets import (
    Amendment,
    CloseBlocked,
    CloseBlocker,
    HazardLevel,
    PeopleDirectory,
    TicketService,
    TicketState,
    UnknownPerson,
    VersionConflict,
)
from storage.tickets import SqliteTicketRepository
from tests.tickets.support import DAY_S, HOUR_S, PEOPLE, FakeClock, TicketWorld

S = TicketState


@dataclass
class MemoryJournal:
    saved: dict[int, Alert] = field(default_factory=dict)

    def save_alert(self, alert: Alert) -> None:
        self.saved[alert.id] = alert

    def audit(self, ts: float, actor: str, entity: str, entity_id: str, action: str, detail: str) -> None:
        pass


def walk_to_pending(world: TicketWorld, ticket_id: int) -> None:
    service = world.service
    service.assign(ticket_id, "wang", "op", None)
    service.transition(ticket_id, S.IN_PROGRESS, "op", None)
    service.transition(ticket_id, S.PENDING_VERIFICATION, "op", None)


def test_an_operator_opens_a_ticket_from_an_alert_and_links_go_both_ways(world: TicketWorld) -> None:
    alert = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.now)
    ticket, created = world.service.open_from_alert(alert.id, "op")
    assert created
    assert (ticket.rule, ticket.device_id, ticket.location) == ("cable_overtemp", "efm-1", "教学楼 efm-1")
    assert ticket.level is HazardLevel.MAJOR
    assert world.repository.alert_ids(ticket.id) == [alert.id]
    assert world.repository.ticket_id_for_alert(alert.id) == ticket.id


def test_new_alerts_of_the_same_condition_attach_to_the_open_ticket(world: TicketWorld) -> None:
    first = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.now)
    ticket, _ = world.service.open_from_alert(first.id, "op")
    world.alerts.resolve(first.id, world.clock.advance(60))
    world.service.on_alert(world.alerts.alerts[first.id])
    second = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.advance(60))
    world.service.on_alert(second)
    again, created = world.service.open_from_alert(second.id, "op")
    other_device = world.alerts.raise_alert("cable_overtemp", "efm-2", world.clock.now)
    world.service.on_alert(other_device)
    assert (again.id, created) == (ticket.id, False)
    assert world.repository.alert_ids(ticket.id) == [first.id, second.id]
    assert world.repository.ticket_id_for_alert(other_device.id) is None


@pytest.mark.parametrize("opened_by", ["operator", "policy"])
def test_on_alert_links_a_new_alert_of_the_condition_to_its_open_ticket(
    world: TicketWorld, opened_by: str
) -> None:
    """Finding 11b: only `on_alert` links here (no operator opens the second alert), so a service
    whose `on_alert` never attaches fails; the earlier test's `open_from_alert` linked it anyway."""
    rule = "cable_overtemp" if opened_by == "operator" else "electrical_leakage"
    first = world.alerts.raise_alert(rule, "efm-1", world.clock.now)
    world.service.on_alert(first)
    if opened_by == "operator":
        world.service.open_from_alert(first.id, "op")
    (ticket,) = world.repository.tickets()
    world.service.on_alert(world.alerts.clear(first.id, world.clock.advance(60)))
    world.service.on_alert(world.alerts.resolve(first.id, world.clock.advance(60)))
    second = world.alerts.raise_alert(rule, "efm-1", world.clock.advance(3600))
    world.service.on_alert(second)
    world.service.on_alert(replace(second, count=2, last_seen=world.clock.advance(5)))  # a repeat
    assert world.repository.alert_ids(ticket.id) == [first.id, second.id]
    assert world.repository.ticket_id_for_alert(second.id) == ticket.id
    assert [t.id for t in world.repository.tickets()] == [ticket.id], "no second ticket for the condition"


def test_a_closed_ticket_no_longer_collects_alerts(world: TicketWorld) -> None:
    alert = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.now)
    ticket, _ = world.service.open_from_alert(alert.id, "op")
    walk_to_pending(world, ticket.id)
    world.alerts.clear(alert.id, world.clock.advance(60))
    world.service.transition(ticket.id, S.CLOSED, "op", None, verifier_id="li")
    later = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.advance(60))
    _, created = world.service.open_from_alert(later.id, "op")
    assert created


def test_closing_names_the_blocking_condition(world: TicketWorld) -> None:
    alert = world.alerts.raise_alert("electrical_leakage", "efm-1", world.clock.now)
    ticket, _ = world.service.open_from_alert(alert.id, "op")
    walk_to_pending(world, ticket.id)
    with pytest.raises(CloseBlocked) as blocked:
        world.service.transition(ticket.id, S.CLOSED, "op", None, verifier_id="wang")
    assert blocked.value.blockers == (CloseBlocker.VERIFIER_IS_RESPONSIBLE, CloseBlocker.DEVICE_NOT_NORMAL)
    with pytest.raises(CloseBlocked) as blocked:
        world.service.transition(ticket.id, S.CLOSED, "op", None, verifier_id="li")
    assert blocked.value.blockers == (CloseBlocker.DEVICE_NOT_NORMAL,)
    world.alerts.clear(alert.id, world.clock.advance(60))
    closed = world.service.transition(ticket.id, S.CLOSED, "op", None, verifier_id="li")
    assert (closed.state, closed.closed_at) == (S.CLOSED, world.clock.now)


def test_failed_verification_returns_to_in_progress_with_the_reason(world: TicketWorld) -> None:
    alert = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.now)
    ticket, _ = world.service.open_from_alert(alert.id, "op")
    walk_to_pending(world, ticket.id)
    back = world.service.transition(ticket.id, S.IN_PROGRESS, "li", None, note="接头仍发热")
    assert back.state is S.IN_PROGRESS
    assert [c.text for c in world.repository.comments(ticket.id)] == ["接头仍发热"]


def test_people_are_checked_against_config(world: TicketWorld) -> None:
    alert = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.now)
    ticket, _ = world.service.open_from_alert(alert.id, "op")
    with pytest.raises(UnknownPerson, match="known: li, wang, zhao"):
        world.service.assign(ticket.id, "nobody", "op", None)
    with pytest.raises(UnknownPerson):
        world.service.amend(ticket.id, Amendment(verifier_id="nobody"), "op", None)


def test_a_stale_client_version_is_a_conflict(world: TicketWorld) -> None:
    alert = world.alerts.raise_alert("cable_overtemp", "efm-1", world.clock.now)
    ticket, _ = world.service.open_from_alert(alert.id, "op")
    world.service.amend(ticket.id, Amendment(measures="a"), "op-a", ticket.version)
    with pytest.raises(VersionConflict):
        world.service.amend(ticket.id, Amendment(measures="b"), "op-b", ticket.version)
    assert world.service.get(ticket.id).measures == "a"


class TestAutomaticTickets:
    def test_electrical_leakage_opens_a_major_ticket_at_once(self, world: TicketWorld) -> None:
        alert = world.alerts.raise_alert("electrical_leakage", "efm-1", world.clock.now)
        world.service.on_alert(alert)
        ticket_id = world.repository.ticket_id_for_alert(alert.id)
        assert ticket_id is not None
        ticket = world.service.get(ticket_id)
        assert (ticket.source, ticket.level, ticket.discovered_by) == (
            "policy:electrical_leakage",
            "major",
            "system",
        )
        assert ticket.deadline_ts == world.clock.now + 7 * DAY_S
        world.service.on_alert(alert)  # a repeat of the same alert
        assert len(world.repository.tickets()) == 1

    def test_device_offline_opens_after_24_hours_on_a_sweep(self, world: TicketWorld) -> None:
        alert = world.alerts.raise_alert("device_offline", "cam-3", world.clock.now)
        world.service.on_alert(alert)
        world.clock.advance(23 * HOUR_S)
        assert world.service.sweep([alert]) == []
        world.clock.advance(HOUR_S)
        (ticket,) = world.service.sweep([alert])
        assert ticket.source == "policy:device_offline"
        assert world.service.sweep([alert]) == []

    def test_a_fault_cleared_within_24_hours_opens_nothing(self, world: TicketWorld) -> None:
        alert = world.alerts.raise_alert("device_fault", "smoke-1", world.clock.now)
        world.service.on_alert(alert)
        world.clock.advance(2 * HOUR_S)
        world.service.on_alert(world.alerts.clear(alert.id, world.clock.now))
        world.clock.advance(DAY_S)
        assert world.service.sweep([world.alerts.alerts[alert.id]]) == []

    def test_the_same_fire_lane_blocked_three_times_in_a_week(self, world: TicketWorld) -> None:
        for day in range(3):
            alert = world.alerts.raise_alert("fire_lane_blocked", "lane-east", world.clock.now)
            world.service.on_alert(alert)
            if day < 2:
                assert world.repository.tickets() == []
                world.service.on_alert(world.alerts.resolve(alert.id, world.clock.advance(HOUR_S)))
                world.clock.advance(2 * DAY_S)
        (ticket,) = world.repository.tickets()
        assert (ticket.source, ticket.subject) == ("policy:fire_lane_blocked", "lane-east")

    def test_blockings_spread_over_more_than_a_week_open_nothing(self, world: TicketWorld) -> None:
        for _ in range(3):
            alert = world.alerts.raise_alert("fire_lane_blocked", "lane-east", world.clock.now)
            world.service.on_alert(alert)
            world.service.on_alert(world.alerts.resolve(alert.id, world.clock.advance(HOUR_S)))
            world.clock.advance(4 * DAY_S)
        assert world.repository.tickets() == []


class TestEscalation:
    def open_major(self, world: TicketWorld) -> int:
        alert = world.alerts.raise_alert("electrical_leakage", "efm-1", world.clock.now)
        world.service.on_alert(alert)
        ticket_id = world.repository.ticket_id_for_alert(alert.id)
        assert ticket_id is not None
        return ticket_id

    def test_an_overdue_major_hazard_is_escalated_once(self, world: TicketWorld) -> None:
        ticket_id = self.open_major(world)
        world.clock.advance(7 * DAY_S)
        world.service.sweep([])
        assert world.escalator.escalated == []
        assert world.service.overdue() == []
        world.clock.advance(1)
        world.service.sweep([])
        world.service.sweep([])
        ((escalated_id, reason),) = world.escalator.escalated
        assert escalated_id == ticket_id and "挂牌督办" in reason
        assert world.service.get(ticket_id).escalated_at == world.clock.now
        assert [t.id for t in world.service.overdue(HazardLevel.MAJOR)] == [ticket_id]

    def test_a_new_deadline_rearms_escalation(self, world: TicketWorld) -> None:
        ticket_id = self.open_major(world)
        world.clock.advance(8 * DAY_S)
        world.service.sweep([])
        world.service.amend(ticket_id, Amendment(deadline_ts=world.clock.now + DAY_S), "op", None)
        world.clock.advance(DAY_S + 1)
        world.service.sweep([])
        assert len(world.escalator.escalated) == 2

    def test_general_hazards_are_flagged_but_not_escalated(self, world: TicketWorld) -> None:
        alert = world.alerts.raise_alert("gate_held_open", "gate-1", world.clock.now)
        ticket, _ = world.service.open_from_alert(
            alert.id, "op", level=HazardLevel.GENERAL, deadline_ts=world.clock.now + DAY_S
        )
        world.clock.advance(2 * DAY_S)
        world.service.sweep([])
        assert world.escalator.escalated == []
        assert [t.id for t in world.service.overdue()] == [ticket.id]

    def test_a_failed_escalation_is_retried_on_the_next_sweep(self, world: TicketWorld) -> None:
        ticket_id = self.open_major(world)
        world.clock.advance(8 * DAY_S)
        world.escalator.fail = True
        world.service.sweep([])
        assert world.service.get(ticket_id).escalated_at is None
        world.escalator.fail = False
        world.service.sweep([])
        assert [i for i, _ in world.escalator.escalated] == [ticket_id]


def test_wired_to_the_real_alert_service(tmp_path: Path) -> None:
    """AlertService -> on_alert listener -> ticket; the cleared alert then lets the ticket close."""
    clock = FakeClock()
    journal = MemoryJournal()
    alerts = AlertService(journal, clock)
    repository = SqliteTicketRepository(tmp_path / "gateway.db")
    service = TicketService(
        repository,
        PeopleDirectory(PEOPLE),
        lambda i: alerts.get_open(i) or journal.saved.get(i),
        clock,
        known_alerts=alerts.open_alerts(),
    )
    alerts.subscribe(service.on_alert)
    leak = AlertSignal("electrical_leakage", "efm-1", True, clock.now, Severity.MAJOR)
    alert = alerts.apply(leak)
    alerts.apply(replace(leak, ts=clock.advance(5)))  # a repeat: still one ticket, one link
    assert alert is not None
    (ticket,) = repository.tickets()
    assert repository.alert_ids(ticket.id) == [alert.id]
    service.assign(ticket.id, "wang", "op", None)
    service.transition(ticket.id, S.IN_PROGRESS, "op", None)
    service.transition(ticket.id, S.PENDING_VERIFICATION, "op", None)
    assert service.close_blockers(ticket, "li") == [CloseBlocker.DEVICE_NOT_NORMAL]
    alerts.apply(replace(leak, raised=False, ts=clock.advance(60)))
    assert service.transition(ticket.id, S.CLOSED, "op", None, verifier_id="li").state is S.CLOSED
    repository.close()
