"""Incidents (SPEC section 6): alerts of one building close in time form one incident, so 40
detectors in one fire are one line on the operator's screen, with their alerts inside.

Pure and synchronous, like `AlertService`: subscribe `IncidentTracker.observe` to the alert
service; it reports changed incidents to its listeners (the store, the live stream, notify).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from analytics.alerts import Alert, AlertState, Severity
from analytics.bus import MessageBus

_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True, slots=True)
class Incident:
    """Alerts of one building that started within `window_s` of the one before."""

    id: int
    building: str
    opened_at: float
    last_alert_at: float
    severity: Severity
    alert_ids: tuple[int, ...]
    device_ids: frozenset[str]
    rules: frozenset[str]
    open_alert_ids: frozenset[int]  # alerts not yet resolved
    storm: bool = False  # `storm_devices` or more devices: notify once for the lot
    closed_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


IncidentListener = Callable[[Incident], None]


@dataclass(frozen=True, slots=True)
class IncidentChanged:
    """Published on the bus after an incident opens, grows, changes severity or closes."""

    incident: Incident


class IncidentTracker:
    """Groups alerts into incidents by building and time; an incident closes when its last alert
    is resolved.

    Args:
        building_of: the building of a device id ("" if unknown; such alerts group campus-wide).
        window_s: a new alert joins its building's open incident if it starts within this many
            seconds of that incident's latest alert.
        storm_devices: this many distinct devices in one incident make it an alarm storm.
    """

    def __init__(
        self,
        building_of: Callable[[str], str],
        window_s: float = 300.0,
        storm_devices: int = 10,
        next_id: int = 1,
        open_incidents: Iterable[Incident] = (),
        bus: MessageBus | None = None,
    ) -> None:
        self._building_of = building_of
        self.window_s = window_s
        self.storm_devices = storm_devices
        self._next_id = next_id
        self._open: dict[int, Incident] = {}
        self._by_building: dict[str, int] = {}  # building -> its latest open incident
        self._by_alert: dict[int, int] = {}
        self.bus = bus or MessageBus()
        for incident in open_incidents:
            self._remember(incident)
            self._next_id = max(self._next_id, incident.id + 1)

    def subscribe(self, listener: IncidentListener) -> None:
        """Hear every change (a handler of `IncidentChanged` on the bus)."""
        self.bus.subscribe(IncidentChanged, lambda message: listener(message.incident))

    def open_incidents(self) -> list[Incident]:
        return sorted(self._open.values(), key=lambda incident: incident.id)

    def incident_of(self, alert_id: int) -> Incident | None:
        incident_id = self._by_alert.get(alert_id)
        return None if incident_id is None else self._open.get(incident_id)

    def observe(self, alert: Alert) -> None:
        """Take an alert change (an `AlertService` listener); listeners hear what it changed."""
        incident_id = self._by_alert.get(alert.id)
        if incident_id is not None:
            self._update(self._open[incident_id], alert)
            return
        if alert.state is AlertState.RESOLVED:
            return  # an alert from before this tracker existed, now closed: nothing to group
        building = self._building_of(alert.device_id)
        current_id = self._by_building.get(building)
        current = None if current_id is None else self._open.get(current_id)
        if current is not None and alert.first_seen - current.last_alert_at <= self.window_s:
            self._join(current, alert)
            return
        incident = Incident(
            id=self._next_id,
            building=building,
            opened_at=alert.first_seen,
            last_alert_at=alert.first_seen,
            severity=alert.severity,
            alert_ids=(alert.id,),
            device_ids=frozenset({alert.device_id}),
            rules=frozenset({alert.rule}),
            open_alert_ids=frozenset({alert.id}),
        )
        self._next_id += 1
        self._commit(incident)

    def _join(self, incident: Incident, alert: Alert) -> Incident:
        devices = incident.device_ids | {alert.device_id}
        return self._commit(
            replace(
                incident,
                last_alert_at=max(incident.last_alert_at, alert.first_seen),
                severity=max(incident.severity, alert.severity, key=_ORDER.__getitem__),
                alert_ids=(*incident.alert_ids, alert.id),
                device_ids=devices,
                rules=incident.rules | {alert.rule},
                open_alert_ids=incident.open_alert_ids | {alert.id},
                storm=len(devices) >= self.storm_devices,
            )
        )

    def _update(self, incident: Incident, alert: Alert) -> Incident | None:
        if alert.state is AlertState.RESOLVED:
            still_open = incident.open_alert_ids - {alert.id}
            closed_at = alert.resolved_at if not still_open else None
            return self._commit(replace(incident, open_alert_ids=still_open, closed_at=closed_at))
        if _ORDER[alert.severity] > _ORDER[incident.severity]:
            return self._commit(replace(incident, severity=alert.severity))
        return None

    def _commit(self, incident: Incident) -> Incident:
        if incident.is_open:
            self._remember(incident)
        else:
            self._open.pop(incident.id, None)
            if self._by_building.get(incident.building) == incident.id:
                del self._by_building[incident.building]
            for alert_id in incident.alert_ids:
                self._by_alert.pop(alert_id, None)
        self.bus.publish(IncidentChanged(incident))
        return incident

    def _remember(self, incident: Incident) -> None:
        self._open[incident.id] = incident
        self._by_building[incident.building] = incident.id
        for alert_id in incident.alert_ids:
            self._by_alert[alert_id] = incident.id
