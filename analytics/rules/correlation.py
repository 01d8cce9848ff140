"""fire_confirmed: a smoke alarm plus a second, independent signal in the same room or zone.

Fed by other rules' signals (`followed_rules`), not by records: another detector's alarm, or a
heat or rate-of-rise alert from any device of the zone, within `window_s` of the smoke alarm,
in either order. One alert per zone; it clears when no smoke alarm of the zone is active.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.rules.base import Rule


def zone_key(device: DeviceSpec) -> str:
    """The room or zone a device watches; a device without a zone stands alone."""
    if not device.zone:
        return f"device:{device.id}"
    return f"zone:{device.building}/{device.zone}" if device.building else f"zone:{device.zone}"


class _Member:
    __slots__ = ("active", "last_ts")

    def __init__(self, ts: float) -> None:
        self.active = True
        self.last_ts = ts


@dataclass
class ZoneCorrelationRule(Rule):
    """Raise for a zone when an `alarm_rules` signal and a second member signal meet in `window_s`."""

    alarm_rules: frozenset[str] = field(default_factory=frozenset)
    support_rules: frozenset[str] = field(default_factory=frozenset)
    window_s: float = 120.0
    _zones: dict[str, dict[tuple[str, str], _Member]] = field(default_factory=dict, repr=False)
    _zone_of: dict[str, str] = field(default_factory=dict, repr=False)
    _confirmed: set[str] = field(default_factory=set, repr=False)

    def restore(self, alert: Alert) -> None:
        # The members are not known any more: the zone clears with the next alarm that clears.
        self._confirmed.add(alert.subject)

    def followed_rules(self) -> frozenset[str]:
        return self.alarm_rules | self.support_rules

    def on_signal(self, signal: AlertSignal, device: DeviceSpec | None) -> Iterable[AlertSignal]:
        device_id = signal.device_id or signal.subject
        if device is not None:
            zone = self._zone_of.get(device_id)
            if zone is None:
                zone = self._zone_of[device_id] = zone_key(device)
        else:
            found = self._zone_of.get(device_id)
            if found is None:
                return ()
            zone = found
        members = self._zones.setdefault(zone, {})
        key = (signal.rule, device_id)
        member = members.get(key)
        if signal.raised:
            if member is None:
                member = members[key] = _Member(signal.ts)
            member.active, member.last_ts = True, max(member.last_ts, signal.ts)
            return self._check(zone, members, signal.ts)
        if member is not None:
            member.active, member.last_ts = False, max(member.last_ts, signal.ts)
        if zone in self._confirmed and not any(
            m.active for (rule, _), m in members.items() if rule in self.alarm_rules
        ):
            self._confirmed.discard(zone)
            return (AlertSignal(self.name, zone, False, signal.ts, self.severity),)
        return ()

    def _check(self, zone: str, members: dict[tuple[str, str], _Member], now: float) -> Iterable[AlertSignal]:
        horizon = now - self.window_s
        for key in [k for k, m in members.items() if not m.active and m.last_ts < horizon]:
            del members[key]
        if zone in self._confirmed:
            return ()
        # Strictly within the window, even for a member still active: a detector latched in
        # alarm for an hour does not confirm a second alarm now (two-detector dependency).
        recent = [k for k, m in members.items() if m.last_ts >= horizon]
        alarms = [device_id for rule, device_id in recent if rule in self.alarm_rules]
        if not alarms:
            return ()
        # A second signal: another detector's alarm, or any supporting rule from any device.
        seconds = [k for k in recent if k[0] in self.support_rules or k[1] != alarms[0]]
        if not seconds:
            return ()
        self._confirmed.add(zone)
        details = {
            "zone": zone,
            "signals": [f"{rule}:{device_id}" for rule, device_id in sorted(recent)],
            "escalate": "immediate",
        }
        return (AlertSignal(self.name, zone, True, now, self.severity, alarms[0], details),)
