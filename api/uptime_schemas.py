"""The response of `GET /api/v1/uptime`, apart from its router so that the district poller can
validate answers without loading FastAPI (it starts through the CLI for every poll)."""

from __future__ import annotations

from pydantic import BaseModel

from analytics.uptime import GroupAvailability


class OutageOut(BaseModel):
    start: float
    end: float | None
    cause: str
    offline_s: float


class DeviceUptimeOut(BaseModel):
    device_id: str
    kind: str
    location: str
    online_now: bool
    last_seen: float | None
    reported_in_window: bool
    availability: float | None  # 0..1 of the known time; None when nothing is known
    online_s: float
    offline_s: float
    unknown_s: float
    outage_count: int
    outages: list[OutageOut]  # the latest api.uptime.OUTAGES_LISTED of them


class GroupOut(BaseModel):
    registered: int
    online_now: int
    reported_in_window: int
    online_rate: float | None  # 在线率: online now / registered
    networked_rate: float | None  # 联网率: reported at least once in the window / registered
    mean_availability: float | None

    @classmethod
    def of(cls, group: GroupAvailability) -> GroupOut:
        return cls(
            registered=group.registered,
            online_now=group.online_now,
            reported_in_window=group.reported,
            online_rate=group.online_rate,
            networked_rate=group.networked_rate,
            mean_availability=group.mean_availability,
        )


class CampusOut(GroupOut):
    id: str
    name: str
    overdue_major_hazards: int | None  # 挂牌督办; None when tickets are not enabled


class UptimeOut(BaseModel):
    window: str
    start: float
    end: float
    campus: CampusOut
    by_kind: dict[str, GroupOut]
    devices: list[DeviceUptimeOut]
