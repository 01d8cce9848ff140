"""Response bodies, converted once from domain types."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from analytics.alerts import Alert
from analytics.device_tracker import DeviceStatus
from analytics.devices import DeviceSpec, Inventory
from analytics.incidents import Incident
from analytics.texts import LANGUAGES, alert_message, alert_title
from api.bounds import LongText, NameText
from api.jsonsafe import json_safe


class AlertOut(BaseModel):
    id: int
    rule: str
    subject: str
    device_id: str
    severity: str
    state: str
    count: int
    first_seen: float
    last_seen: float
    acknowledged_at: float | None
    acknowledged_by: str | None
    cleared_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    resolution_note: str | None
    building: str
    location: str
    title: dict[str, str]
    message: dict[str, str]
    details: dict[str, Any]

    @classmethod
    def of(cls, alert: Alert, inventory: Inventory) -> AlertOut:
        device = inventory.get(alert.device_id)
        location = device.location if device else alert.subject
        return cls(
            id=alert.id,
            rule=alert.rule,
            subject=alert.subject,
            device_id=alert.device_id,
            severity=alert.severity.value,
            state=alert.state.value,
            count=alert.count,
            first_seen=alert.first_seen,
            last_seen=alert.last_seen,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by=alert.acknowledged_by,
            cleared_at=alert.cleared_at,
            resolved_at=alert.resolved_at,
            resolved_by=alert.resolved_by,
            resolution_note=alert.resolution_note,
            building=device.building if device else "",
            location=location,
            title={lang: alert_title(alert, lang) for lang in LANGUAGES},
            message={lang: alert_message(alert, location, lang) for lang in LANGUAGES},
            details=json_safe(dict(alert.details)),
        )


class DeviceOut(BaseModel):
    id: str
    kind: str
    name: str
    building: str
    floor: str
    zone: str
    protocol: str
    model: str
    reporting_interval_s: float
    online: bool | None
    last_seen: float | None
    state_changed_at: float | None
    last_values: dict[str, float]

    @classmethod
    def of(cls, device: DeviceSpec, status: DeviceStatus | None) -> DeviceOut:
        return cls(
            id=device.id,
            kind=device.kind.value,
            name=device.name,
            building=device.building,
            floor=device.floor,
            zone=device.zone,
            protocol=device.protocol,
            model=device.model,
            reporting_interval_s=device.reporting_interval_s,
            online=status.online if status else None,
            last_seen=status.last_seen if status else None,
            state_changed_at=status.state_changed_at if status else None,
            last_values=dict(status.last_values) if status else {},
        )


class ResolveBody(BaseModel):
    note: LongText = Field(description="what was done; not blank")


class ErrorOut(BaseModel):
    """Every refusal: a message, or FastAPI's list of invalid fields, or a 409's explanation."""

    detail: str | list[Any] | dict[str, Any]


# Declared on every route, so the schema names each answer a client can get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "the body is not what its Content-Type says"),
        (401, "missing or unknown bearer token"),
        (403, "the token's role may not do this"),
        (404, "no such resource"),
        (409, "the change conflicts with the current state"),
        (413, "request body too large"),
        (415, "unsupported upload type"),
        (422, "invalid input, naming the field"),
        (503, "storage or a service is not available"),
    )
}


class AuditOut(BaseModel):
    ts: float
    actor: str
    action: str
    detail: str


def incident_out(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "building": incident.building,
        "opened_at": incident.opened_at,
        "last_alert_at": incident.last_alert_at,
        "closed_at": incident.closed_at,
        "severity": incident.severity.value,
        "storm": incident.storm,
        "alert_ids": list(incident.alert_ids),
        "open_alert_ids": sorted(incident.open_alert_ids),
        "devices": len(incident.device_ids),
        "rules": sorted(incident.rules),
    }


class ModeBody(BaseModel):
    kind: Literal["drill", "maintenance"]
    target: NameText | None = Field(
        default=None, description="drill: a building (omit for the whole campus); maintenance: a device id"
    )
    duration_s: float = Field(gt=0, le=7 * 86400, description="time box; the mode ends by itself")
    reason: LongText = Field(min_length=1)


def ok_as(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route answering 200 in other types than JSON (its errors stay JSON)."""
    return {200: {"description": "OK", "content": {media_type: {} for media_type in media_types}}}
