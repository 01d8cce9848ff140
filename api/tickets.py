"""Remediation tickets over HTTP (SPEC sections 7 and 9): `/api/v1/tickets` and its transitions.

Operators (and admins) do everything; the bureau role reads overdue major hazards and the
monthly report. Handlers are plain `def`s: FastAPI runs them on its thread pool, so the
repository's synchronous SQLite writes never block the event loop. Refusals from the domain
become 404 (unknown), 409 (illegal now, with what is allowed or what blocks) or 422 (bad input).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field

from analytics.tickets import (
    Amendment,
    CloseBlocked,
    HazardCategory,
    HazardLevel,
    IllegalTransition,
    PersonConfig,
    Ticket,
    TicketDraft,
    TicketError,
    TicketNotFound,
    TicketService,
    TicketState,
    UnknownAlert,
    UnknownPerson,
    VersionConflict,
    allowed_targets,
    is_overdue,
)
from analytics.tickets.reports import (
    ReportError,
    hazard_list_csv,
    month_bounds,
    monthly_report,
    monthly_report_csv,
    monthly_report_html,
    responsibility_list_csv,
)
from analytics.tickets.service import OPEN_STATES
from api.auth import AnyRole, Principal, SecurityRoom
from api.bounds import (
    DeadlineTs,
    Funds,
    LocationText,
    LongText,
    NameText,
    RowId,
    RowIdPath,
    TitleText,
    Version,
)
from api.schemas import ok_as

# The photo types a phone camera produces, with the bytes each file must start with.
PHOTO_TYPES: dict[str, tuple[str, bytes]] = {
    "image/jpeg": ("jpg", b"\xff\xd8\xff"),
    "image/png": ("png", b"\x89PNG\r\n\x1a\n"),
    "image/webp": ("webp", b"RIFF"),
}
_CHUNK_BYTES = 64 * 1024
# The one route whose body may be larger than JSON's limit (by the configured photo size).
PHOTO_UPLOAD_PATH = re.compile(r"^/api/v1/tickets/[^/]+/photos$")
# The report is a document with its own inline style and no script at all.
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@dataclass(frozen=True)
class TicketApiContext:
    """What the ticket endpoints need, injected by the gateway.

    Args:
        availability_pct: device availability over [start, end) in percent, None when unknown.
        desk: runs a call on the one thread that changes tickets (the service is not thread-safe);
            by default, here and now.
    """

    service: TicketService
    clock: Callable[[], float]
    photo_dir: Path
    timezone: ZoneInfo
    campus_name: str = ""
    photo_max_bytes: int = 5 * 1024 * 1024
    availability_pct: Callable[[float, float], float | None] = lambda start, end: None
    desk: Callable[[Callable[[], Any]], Any] = lambda call: call()


class PersonOut(BaseModel):
    id: str
    name: str
    role: str
    phone: str

    @classmethod
    def of(cls, person: PersonConfig | None) -> PersonOut | None:
        return None if person is None else cls(**person.model_dump())


class TicketOut(BaseModel):
    id: int
    version: int
    title: str
    category: HazardCategory
    level: HazardLevel
    state: TicketState
    location: str
    discovered_at: float
    discovered_by: str
    source: str
    rule: str
    subject: str
    device_id: str
    responsible_id: str | None
    responsible: PersonOut | None
    verifier_id: str | None
    verifier: PersonOut | None
    measures: str
    funds_cny: float | None
    deadline_ts: float | None
    contingency_plan: str
    updated_at: float
    closed_at: float | None
    escalated_at: float | None
    overdue: bool
    allowed_transitions: list[TicketState]
    alert_ids: list[int]


class BlockerOut(BaseModel):
    code: str
    message: str


class CommentOut(BaseModel):
    id: int
    ts: float
    actor: str
    text: str


class PhotoOut(BaseModel):
    id: int
    ts: float
    actor: str
    filename: str
    content_type: str
    size_bytes: int
    url: str


class HistoryOut(BaseModel):
    ts: float
    actor: str
    action: str
    changes: dict[str, tuple[Any, Any]]


class TicketDetailOut(BaseModel):
    ticket: TicketOut
    close_blockers: list[BlockerOut] = Field(description="what keeps the ticket from closing now")
    uncleared_alert_ids: list[int]
    comments: list[CommentOut]
    photos: list[PhotoOut]
    history: list[HistoryOut]


class CreateTicketBody(BaseModel):
    """From an alert (`alert_id`), or a hazard found on inspection (title, category, level, location)."""

    alert_id: RowId | None = None
    title: TitleText | None = None
    category: HazardCategory | None = None
    level: HazardLevel | None = None
    location: LocationText | None = None
    deadline_ts: DeadlineTs | None = None


class AssignBody(BaseModel):
    version: Version
    responsible_id: NameText


class UpdateBody(BaseModel):
    """The five implementations (措施, 责任人 via assign, 资金, 时限, 预案) and the description."""

    version: Version
    title: TitleText | None = None
    category: HazardCategory | None = None
    level: HazardLevel | None = None
    location: LocationText | None = None
    measures: LongText | None = None
    funds_cny: Funds | None = None
    deadline_ts: DeadlineTs | None = None
    contingency_plan: LongText | None = None
    verifier_id: NameText | None = None


class TransitionBody(BaseModel):
    version: Version
    to: TicketState
    verifier_id: NameText | None = Field(
        default=None, description="who verifies a close (not the responsible person)"
    )
    note: LongText = ""


class CommentBody(BaseModel):
    text: LongText = Field(min_length=1)


class AttachAlertBody(BaseModel):
    alert_id: RowId


def refusal(exc: TicketError) -> HTTPException:
    """The HTTP answer for a domain refusal; 409 bodies say what is allowed or what blocks."""
    if isinstance(exc, TicketNotFound | UnknownAlert):
        return HTTPException(404, str(exc))
    if isinstance(exc, UnknownPerson):
        return HTTPException(422, str(exc))
    detail: dict[str, Any] = {"message": str(exc), "code": type(exc).__name__}
    if isinstance(exc, IllegalTransition):
        detail["allowed"] = list(exc.allowed)
    elif isinstance(exc, CloseBlocked):
        detail["blockers"] = [{"code": b.value, "message": b.message} for b in exc.blockers]
        detail["uncleared_alert_ids"] = list(exc.uncleared_alert_ids)
    elif isinstance(exc, VersionConflict):
        detail["current_version"] = exc.current
    return HTTPException(409, detail)


def tickets_router(ctx: TicketApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["tickets"])
    service = ctx.service
    people = service.people

    def out(ticket: Ticket) -> TicketOut:
        return TicketOut(
            **{name: getattr(ticket, name) for name in TicketOut.model_fields if hasattr(ticket, name)},
            responsible=PersonOut.of(people.get(ticket.responsible_id)),
            verifier=PersonOut.of(people.get(ticket.verifier_id)),
            overdue=is_overdue(ticket, ctx.clock()),
            allowed_transitions=sorted(allowed_targets(ticket.state)),
            alert_ids=service.repository.alert_ids(ticket.id),
        )

    def load(ticket_id: int) -> Ticket:
        try:
            return service.get(ticket_id)
        except TicketNotFound as exc:
            raise refusal(exc) from None

    def attachment(content: bytes, filename: str) -> Response:
        return Response(
            content,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    def today() -> str:
        return datetime.fromtimestamp(ctx.clock(), ctx.timezone).strftime("%Y%m%d")

    @router.get(
        "/tickets/export/hazards.csv",
        summary="隐患清单: the hazard list as CSV (UTF-8 with BOM)",
        responses=ok_as("text/csv"),
    )
    def export_hazards(_: SecurityRoom) -> Response:
        content = hazard_list_csv(
            service.repository.tickets(), service.repository.alert_ids, people, ctx.clock(), ctx.timezone
        )
        return attachment(content, f"hazards-{today()}.csv")

    @router.get(
        "/tickets/export/responsibilities.csv",
        summary="责任清单: the responsibility list of open hazards as CSV (UTF-8 with BOM)",
        responses=ok_as("text/csv"),
    )
    def export_responsibilities(_: SecurityRoom) -> Response:
        content = responsibility_list_csv(service.repository.tickets(OPEN_STATES), people, ctx.timezone)
        return attachment(content, f"responsibilities-{today()}.csv")

    @router.get(
        "/tickets/reports/monthly",
        summary="Monthly hazard report as HTML or CSV",
        responses=ok_as("text/html", "text/csv"),
    )
    def report_monthly(
        _: AnyRole,
        month: Annotated[
            str,
            Query(max_length=7, description="YYYY-MM in the campus time zone", examples=["2026-10"]),
        ],
        format: Literal["html", "csv"] = "html",
    ) -> Response:
        try:
            bounds = month_bounds(month, ctx.timezone)
        except ReportError as exc:
            raise HTTPException(422, str(exc)) from None
        report = monthly_report(
            ctx.campus_name,
            bounds,
            service.repository.tickets(),
            ctx.availability_pct(bounds.start_ts, bounds.end_ts),
        )
        if format == "csv":
            return attachment(monthly_report_csv(report), f"report-{month}.csv")
        return HTMLResponse(monthly_report_html(report), headers={"Content-Security-Policy": REPORT_POLICY})

    @router.get("/tickets", response_model=list[TicketOut])
    def list_tickets(
        who: AnyRole,
        state: Annotated[list[TicketState] | None, Query()] = None,
        level: HazardLevel | None = None,
        category: HazardCategory | None = None,
        overdue: bool | None = None,
    ) -> list[TicketOut]:
        if who.role == "bureau" and not (overdue and level is HazardLevel.MAJOR):
            raise HTTPException(
                403,
                "the bureau role reads overdue major hazards only: GET /api/v1/tickets?overdue=true&level=major",
            )
        now = ctx.clock()
        found = service.repository.tickets(state or (), level, category)
        return [out(t) for t in found if overdue is None or is_overdue(t, now) is overdue]

    @router.post("/tickets", status_code=201, response_model=TicketOut)
    def create_ticket(body: CreateTicketBody, who: SecurityRoom, response: Response) -> TicketOut:
        try:
            if body.alert_id is not None:
                alert_id = body.alert_id
                ticket, created = ctx.desk(
                    lambda: service.open_from_alert(
                        alert_id, who.name, body.title, body.category, body.level, body.deadline_ts
                    )
                )
                if not created:
                    response.status_code = 200  # attached to the condition's open ticket
                return out(ticket)
            if body.title is None or body.category is None or body.level is None or not body.location:
                raise HTTPException(
                    422, "a ticket without alert_id needs title, category, level and location"
                )
            draft = TicketDraft(
                title=body.title,
                category=body.category,
                level=body.level,
                location=body.location,
                discovered_at=ctx.clock(),
                discovered_by=who.name,
                deadline_ts=body.deadline_ts,
            )
            return out(ctx.desk(lambda: service.register(draft, who.name)))
        except TicketError as exc:
            raise refusal(exc) from None

    @router.get("/tickets/{ticket_id}", response_model=TicketDetailOut)
    def ticket_detail(ticket_id: RowIdPath, who: AnyRole) -> TicketDetailOut:
        ticket = load(ticket_id)
        if who.role == "bureau" and not (
            ticket.level is HazardLevel.MAJOR and is_overdue(ticket, ctx.clock())
        ):
            raise HTTPException(403, "the bureau role reads overdue major hazards only")
        uncleared = service.uncleared_alert_ids(ticket)
        return TicketDetailOut(
            ticket=out(ticket),
            close_blockers=[
                BlockerOut(code=b.value, message=b.message) for b in service.close_blockers(ticket)
            ],
            uncleared_alert_ids=uncleared,
            comments=[
                CommentOut(id=c.id, ts=c.ts, actor=c.actor, text=c.text)
                for c in service.repository.comments(ticket_id)
            ],
            photos=[
                PhotoOut(
                    id=p.id,
                    ts=p.ts,
                    actor=p.actor,
                    filename=p.filename,
                    content_type=p.content_type,
                    size_bytes=p.size_bytes,
                    url=f"/api/v1/tickets/{ticket_id}/photos/{p.id}",
                )
                for p in service.repository.photos(ticket_id)
            ],
            history=[
                HistoryOut(ts=h.ts, actor=h.actor, action=h.action, changes=h.changes)
                for h in service.repository.history(ticket_id)
            ],
        )

    def act(change: Callable[[], Ticket]) -> TicketOut:
        try:
            return out(ctx.desk(change))
        except TicketError as exc:
            raise refusal(exc) from None

    @router.post("/tickets/{ticket_id}/assign", response_model=TicketOut)
    def assign_ticket(ticket_id: RowIdPath, body: AssignBody, who: SecurityRoom) -> TicketOut:
        return act(lambda: service.assign(ticket_id, body.responsible_id, who.name, body.version))

    @router.patch("/tickets/{ticket_id}", response_model=TicketOut)
    def update_ticket(ticket_id: RowIdPath, body: UpdateBody, who: SecurityRoom) -> TicketOut:
        amendment = Amendment(**body.model_dump(exclude={"version"}))
        return act(lambda: service.amend(ticket_id, amendment, who.name, body.version))

    @router.post("/tickets/{ticket_id}/transition", response_model=TicketOut)
    def transition_ticket(ticket_id: RowIdPath, body: TransitionBody, who: SecurityRoom) -> TicketOut:
        return act(
            lambda: service.transition(
                ticket_id, body.to, who.name, body.version, body.verifier_id, body.note
            )
        )

    @router.post("/tickets/{ticket_id}/alerts", response_model=TicketOut)
    def attach_alert(ticket_id: RowIdPath, body: AttachAlertBody, who: SecurityRoom) -> TicketOut:
        return act(lambda: service.attach_alert(ticket_id, body.alert_id, who.name))

    @router.post("/tickets/{ticket_id}/comments", status_code=201, response_model=CommentOut)
    def add_comment(ticket_id: RowIdPath, body: CommentBody, who: SecurityRoom) -> CommentOut:
        try:
            comment = ctx.desk(lambda: service.comment(ticket_id, who.name, body.text))
        except TicketError as exc:
            raise refusal(exc) from None
        return CommentOut(id=comment.id, ts=comment.ts, actor=comment.actor, text=comment.text)

    @router.post("/tickets/{ticket_id}/photos", status_code=201, response_model=PhotoOut)
    def add_photo(ticket_id: RowIdPath, who: SecurityRoom, file: Annotated[UploadFile, File()]) -> PhotoOut:
        load(ticket_id)
        return _store_photo(ctx, ticket_id, who, file)

    @router.get("/tickets/{ticket_id}/photos/{photo_id}", responses=ok_as(*PHOTO_TYPES))
    def get_photo(ticket_id: RowIdPath, photo_id: RowIdPath, _: SecurityRoom) -> FileResponse:
        for photo in service.repository.photos(ticket_id):
            path = ctx.photo_dir / photo.stored_name
            if photo.id == photo_id and path.is_file():
                return FileResponse(path, media_type=photo.content_type)
        raise HTTPException(404, f"ticket {ticket_id} has no photo {photo_id}")

    @router.get("/alerts/{alert_id}/ticket", response_model=TicketOut)
    def ticket_of_alert(alert_id: RowIdPath, _: SecurityRoom) -> TicketOut:
        ticket_id = service.repository.ticket_id_for_alert(alert_id)
        if ticket_id is None:
            raise HTTPException(404, f"alert {alert_id} has no ticket")
        return out(load(ticket_id))

    return router


def _store_photo(ctx: TicketApiContext, ticket_id: int, who: Principal, file: UploadFile) -> PhotoOut:
    """Check type (declared and by content) and size, then keep the file under the photo folder."""
    declared = (file.content_type or "").split(";")[0].strip().lower()
    if declared not in PHOTO_TYPES:
        raise HTTPException(
            415, f"photo type {declared or 'unknown'!r} refused; send one of {', '.join(PHOTO_TYPES)}"
        )
    extension, magic = PHOTO_TYPES[declared]
    content = bytearray()
    while chunk := file.file.read(_CHUNK_BYTES):
        content += chunk
        if len(content) > ctx.photo_max_bytes:
            raise HTTPException(413, f"photo larger than the {ctx.photo_max_bytes} bytes allowed")
    if not content:
        raise HTTPException(422, "photo: the file is empty")
    if not bytes(content).startswith(magic) or (declared == "image/webp" and content[8:12] != b"WEBP"):
        raise HTTPException(415, f"photo content is not a {declared} image")
    stored_name = f"ticket-{ticket_id}/{uuid.uuid4().hex}.{extension}"
    path = ctx.photo_dir / stored_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    filename = Path(file.filename or f"photo.{extension}").name[:200]
    photo = ctx.service.repository.add_photo(
        ticket_id, ctx.clock(), who.name, filename, declared, len(content), stored_name
    )
    return PhotoOut(
        id=photo.id,
        ts=photo.ts,
        actor=photo.actor,
        filename=photo.filename,
        content_type=photo.content_type,
        size_bytes=photo.size_bytes,
        url=f"/api/v1/tickets/{ticket_id}/photos/{photo.id}",
    )
