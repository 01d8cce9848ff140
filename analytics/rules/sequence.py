"""dual_control_violation (双人双锁): a chemical cabinet opened without two authorised badges first.

Who may open a cabinet is data: `authorised` maps a cabinet's device id to the person ids
allowed to badge for it (config `rules.dual_control_violation` cannot carry a mapping, so it is
passed to `default_rules`). A cabinet with no list is treated as having no authorised person:
every opening is a violation until someone configures it, rather than silently passing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, Reading, Record
from analytics.rules.base import Rule


@dataclass
class DualControlRule(Rule):
    """Raise when `open_event` comes without `required_persons` distinct authorised badges in the
    `window_s` before it; the alert clears when the door closes (and waits for an operator)."""

    badge_event: str = "badge"
    open_event: str = "door_opened"
    close_event: str = "door_closed"
    open_metric: str = "door_open"  # cabinets that report the door as a value (1 open, 0 closed)
    window_s: float = 60.0
    required_persons: int = 2
    authorised: Mapping[str, frozenset[str]] = field(default_factory=dict)
    _badges: dict[str, deque[tuple[float, str]]] = field(default_factory=dict, repr=False)
    _open: set[str] = field(default_factory=set, repr=False)
    _violated: set[str] = field(default_factory=set, repr=False)

    def restore(self, alert: Alert) -> None:
        self._violated.add(alert.subject)  # the door's state is unknown: the next close clears

    def listens_to(self) -> frozenset[str] | None:
        return frozenset({self.badge_event, self.open_event, self.close_event, self.open_metric})

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is Reading:
            if record.metric != self.open_metric:
                return ()
            opened = record.value >= 0.5
        elif type(record) is DeviceEvent:
            name = record.name
            if name == self.badge_event:
                person = record.attrs.get("person_id")
                if person is not None:
                    badges = self._badges.setdefault(device.id, deque())
                    badges.append((record.ts, str(person)))
                    self._forget(badges, record.ts)
                return ()
            if name != self.open_event and name != self.close_event:
                return ()
            opened = name == self.open_event
        else:
            return ()
        # A cabinet may report both the event and the value: only a change of state counts.
        if opened:
            if device.id in self._open:
                return ()
            self._open.add(device.id)
            return self._opened(device, record.ts)
        self._open.discard(device.id)
        if device.id not in self._violated:
            return ()
        self._violated.discard(device.id)
        return (AlertSignal(self.name, device.id, False, record.ts, self.severity, device.id),)

    def _opened(self, device: DeviceSpec, ts: float) -> Iterable[AlertSignal]:
        badges = self._badges.get(device.id, deque())
        self._forget(badges, ts)
        allowed = self.authorised.get(device.id, frozenset())
        persons = {person for badge_ts, person in badges if badge_ts <= ts}
        authorised = sorted(persons & allowed)
        if len(authorised) >= self.required_persons:
            badges.clear()  # one pair of badges opens the door once
            return ()
        self._violated.add(device.id)
        details = {
            "authorised_badges": authorised,
            "unauthorised_badges": sorted(persons - allowed),
            "required": self.required_persons,
            "window_s": self.window_s,
        }
        return (AlertSignal(self.name, device.id, True, ts, self.severity, device.id, details),)

    def _forget(self, badges: deque[tuple[float, str]], now: float) -> None:
        while badges and badges[0][0] < now - self.window_s:
            badges.popleft()
