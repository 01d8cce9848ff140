"""after_hours_access: a gate granting access outside the school-hours calendar.

`SchoolCalendar` is the configurable calendar, in the campus time zone: opening hours per
weekday, closed dates (holidays) and special school days (调休 make-up days, open days) with
their own hours. It is a pydantic model so the gateway config can embed it as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import DeviceEvent, Record
from analytics.rules.base import Rule, event_details
from analytics.zones import ZoneName

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_SCHOOL_DAY = ("07:00-18:00",)


def _parse_spans(spans: Iterable[str]) -> tuple[tuple[time, time], ...]:
    parsed = []
    for span in spans:
        match = _SPAN.match(span)
        if match is None:
            raise ValueError(f"{span!r} is not a span like '07:30-12:00'")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        end = time.max if (h2, m2) == (24, 0) else time(h2 % 24, m2)
        if h2 == 24 and m2 != 0:
            raise ValueError(f"{span!r}: 24:00 is the latest end")
        if end <= time(h1, m1):
            raise ValueError(f"{span!r}: the end must be after the start")
        parsed.append((time(h1, m1), end))
    return tuple(parsed)


class SchoolCalendar(BaseModel):
    """When the school is open. Spans are 'HH:MM-HH:MM' local time, end exclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: ZoneName = "Asia/Shanghai"
    weekly: dict[Weekday, list[str]] = Field(
        default_factory=lambda: {day: list(_SCHOOL_DAY) for day in ("mon", "tue", "wed", "thu", "fri")}
    )
    closed_dates: list[date] = Field(default_factory=list)
    special_days: dict[date, list[str]] = Field(default_factory=dict)
    _zone: ZoneInfo = PrivateAttr()
    _weekly: dict[int, tuple[tuple[time, time], ...]] = PrivateAttr()
    _special: dict[date, tuple[tuple[time, time], ...]] = PrivateAttr()
    _closed: frozenset[date] = PrivateAttr()

    @field_validator("weekly", "special_days")
    @classmethod
    def _valid_spans(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for spans in value.values():
            _parse_spans(spans)
        return value

    def model_post_init(self, context: object, /) -> None:
        self._zone = ZoneInfo(self.timezone)
        self._weekly = {_WEEKDAYS.index(day): _parse_spans(spans) for day, spans in self.weekly.items()}
        self._special = {day: _parse_spans(spans) for day, spans in self.special_days.items()}
        self._closed = frozenset(self.closed_dates)

    def in_timezone(self, timezone: str) -> SchoolCalendar:
        """The same hours in another zone (the campus's, when the calendar names none itself)."""
        return SchoolCalendar.model_validate({**self.model_dump(), "timezone": timezone})

    def is_open(self, ts: float) -> bool:
        """Whether Unix time `ts` falls in school hours, in the calendar's time zone."""
        local = datetime.fromtimestamp(ts, self._zone)
        day = local.date()
        spans = self._special.get(day)
        if spans is None:
            if day in self._closed:
                return False
            spans = self._weekly.get(local.weekday(), ())
        now = local.time()
        return any(start <= now < end for start, end in spans)


@dataclass
class AfterHoursAccessRule(Rule):
    """Raise on `access_event` outside school hours; the alert clears when school hours begin."""

    access_event: str = "access_granted"
    calendar: SchoolCalendar = field(default_factory=SchoolCalendar)
    _raised: set[str] = field(default_factory=set, repr=False)

    def restore(self, alert: Alert) -> None:
        self._raised.add(alert.subject)

    def listens_to(self) -> frozenset[str] | None:
        return frozenset({self.access_event})

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not DeviceEvent or record.name != self.access_event:
            return ()
        if self.calendar.is_open(record.ts):
            return ()
        self._raised.add(device.id)
        details = event_details(record)
        return (AlertSignal(self.name, device.id, True, record.ts, self.severity, device.id, details),)

    def tick(self, now: float) -> Iterable[AlertSignal]:
        if not self._raised or not self.calendar.is_open(now):
            return ()
        signals = [
            AlertSignal(self.name, subject, False, now, self.severity, subject) for subject in self._raised
        ]
        self._raised.clear()
        return signals
