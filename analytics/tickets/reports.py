"""The two lists (两个清单) and the monthly report: pure functions from tickets to CSV and HTML.

CSV is UTF-8 with a byte-order mark, which is what makes Excel open Chinese text correctly.
Times are shown in the campus time zone; months are calendar months there.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean
from zoneinfo import ZoneInfo

from analytics.tickets.model import HazardCategory, HazardLevel, Ticket, TicketState
from analytics.tickets.overdue import is_overdue
from analytics.tickets.people import PeopleDirectory, PersonConfig

CATEGORY_LABELS: Mapping[HazardCategory, str] = {
    HazardCategory.FIRE: "消防",
    HazardCategory.ELECTRICAL: "电气",
    HazardCategory.CHEMICAL: "危化品",
    HazardCategory.ACCESS: "出入口",
    HazardCategory.VIDEO: "视频",
    HazardCategory.DEVICE: "设备",
}
LEVEL_LABELS: Mapping[HazardLevel, str] = {HazardLevel.GENERAL: "一般", HazardLevel.MAJOR: "重大"}
STATE_LABELS: Mapping[TicketState, str] = {
    TicketState.REGISTERED: "已登记",
    TicketState.ASSIGNED: "已分派",
    TicketState.IN_PROGRESS: "整改中",
    TicketState.PENDING_VERIFICATION: "待验收",
    TicketState.CLOSED: "已销号",
}
HAZARD_LIST_HEADER = (
    "编号 id", "隐患名称 title", "类别 category", "等级 level", "位置 location", "发现时间 discovered_at",
    "发现人 discovered_by", "来源 source", "状态 state", "整改措施 measures", "资金(元) funds_cny",
    "整改时限 deadline", "应急预案 contingency_plan", "责任人 responsible", "验收人 verifier",
    "逾期 overdue", "关联告警 alert_ids", "销号时间 closed_at",
)  # fmt: skip
RESPONSIBILITY_LIST_HEADER = (
    "编号 id", "隐患名称 title", "等级 level", "位置 location", "责任人 responsible", "职务 role",
    "电话 phone", "整改措施 measures", "资金(元) funds_cny", "整改时限 deadline",
    "应急预案 contingency_plan", "状态 state", "验收人 verifier",
)  # fmt: skip
_MONTH = re.compile(r"^(19[7-9]\d|20\d\d)-(0[1-9]|1[0-2])$")  # years a timestamp holds: 1970..2099


class ReportError(ValueError):
    pass


# A cell starting with one of these is a formula to Excel and WPS (CSV injection): "=HYPERLINK(...)".
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """Text that a spreadsheet would run as a formula is prefixed with ' and so shown as text."""
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def format_ts(ts: float | None, tz: ZoneInfo) -> str:
    """Local minutes; a stored time no calendar can show (written before inputs were bounded) as is."""
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return f"{ts!r} (invalid time)"


def _person(person: PersonConfig | None, fallback: str | None) -> str:
    return person.name if person else (fallback or "")


def _funds(ticket: Ticket) -> str:
    return "" if ticket.funds_cny is None else f"{ticket.funds_cny:.2f}"


def hazard_list_csv(
    tickets: Iterable[Ticket],
    alert_ids: Callable[[int], Sequence[int]],
    people: PeopleDirectory,
    now: float,
    tz: ZoneInfo,
) -> bytes:
    """隐患清单: every hazard with its five implementations and its state."""

    def row(t: Ticket) -> tuple[object, ...]:
        return (
            t.id, t.title, CATEGORY_LABELS[t.category], LEVEL_LABELS[t.level], t.location,
            format_ts(t.discovered_at, tz), t.discovered_by, t.source, STATE_LABELS[t.state], t.measures,
            _funds(t), format_ts(t.deadline_ts, tz), t.contingency_plan,
            _person(people.get(t.responsible_id), t.responsible_id),
            _person(people.get(t.verifier_id), t.verifier_id), "是" if is_overdue(t, now) else "否",
            " ".join(str(i) for i in alert_ids(t.id)), format_ts(t.closed_at, tz),
        )  # fmt: skip

    return csv_bytes(HAZARD_LIST_HEADER, [row(t) for t in tickets])


def responsibility_list_csv(tickets: Iterable[Ticket], people: PeopleDirectory, tz: ZoneInfo) -> bytes:
    """责任清单: who answers for each hazard, how to reach them, what they must do by when."""

    def row(t: Ticket) -> tuple[object, ...]:
        person = people.get(t.responsible_id)
        return (
            t.id, t.title, LEVEL_LABELS[t.level], t.location, _person(person, t.responsible_id),
            person.role if person else "", person.phone if person else "", t.measures, _funds(t),
            format_ts(t.deadline_ts, tz), t.contingency_plan, STATE_LABELS[t.state],
            _person(people.get(t.verifier_id), t.verifier_id),
        )  # fmt: skip

    return csv_bytes(RESPONSIBILITY_LIST_HEADER, [row(t) for t in tickets])


@dataclass(frozen=True, slots=True)
class MonthBounds:
    label: str  # "2026-10"
    start_ts: float
    end_ts: float  # exclusive


def month_bounds(month: str, tz: ZoneInfo) -> MonthBounds:
    """A calendar month "YYYY-MM" in the campus time zone."""
    match = _MONTH.match(month)
    if match is None:
        raise ReportError(f"month: expected YYYY-MM from 1970-01 to 2099-12, such as 2026-10; got {month!r}")
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return MonthBounds(month, start.timestamp(), end.timestamp())


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    campus: str
    month: str
    opened_by_category_level: Mapping[tuple[HazardCategory, HazardLevel], int]
    opened: int
    closed: int
    closed_on_time: int
    overdue_at_month_end: int
    overdue_major_at_month_end: int
    open_at_month_end: int
    mean_time_to_close_h: float | None
    device_availability_pct: float | None


def monthly_report(
    campus: str, bounds: MonthBounds, tickets: Iterable[Ticket], device_availability_pct: float | None
) -> MonthlyReport:
    """Counts for tickets found in the month, closings in the month, and what was open at its end."""
    all_tickets = list(tickets)
    opened = [t for t in all_tickets if bounds.start_ts <= t.discovered_at < bounds.end_ts]
    closed = [
        t for t in all_tickets if t.closed_at is not None and bounds.start_ts <= t.closed_at < bounds.end_ts
    ]
    open_at_end = [
        t
        for t in all_tickets
        if t.discovered_at < bounds.end_ts and (t.closed_at is None or t.closed_at >= bounds.end_ts)
    ]
    overdue = [t for t in open_at_end if t.deadline_ts is not None and t.deadline_ts < bounds.end_ts]
    by_category_level: dict[tuple[HazardCategory, HazardLevel], int] = {
        (category, level): 0 for category in HazardCategory for level in HazardLevel
    }
    for t in opened:
        by_category_level[(t.category, t.level)] += 1
    durations_h = [(t.closed_at - t.discovered_at) / 3600 for t in closed if t.closed_at is not None]
    return MonthlyReport(
        campus=campus,
        month=bounds.label,
        opened_by_category_level=by_category_level,
        opened=len(opened),
        closed=len(closed),
        closed_on_time=sum(
            1 for t in closed if t.deadline_ts is None or (t.closed_at or 0.0) <= t.deadline_ts
        ),
        overdue_at_month_end=len(overdue),
        overdue_major_at_month_end=sum(1 for t in overdue if t.level is HazardLevel.MAJOR),
        open_at_month_end=len(open_at_end),
        mean_time_to_close_h=fmean(durations_h) if durations_h else None,
        device_availability_pct=device_availability_pct,
    )


def _summary_rows(report: MonthlyReport) -> list[tuple[str, str]]:
    def number(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    return [
        ("新增隐患 opened", str(report.opened)),
        ("销号 closed", str(report.closed)),
        ("按期销号 closed on time", str(report.closed_on_time)),
        ("月末逾期 overdue at month end", str(report.overdue_at_month_end)),
        ("月末逾期重大隐患 overdue major at month end", str(report.overdue_major_at_month_end)),
        ("月末未销号 open at month end", str(report.open_at_month_end)),
        ("平均销号用时(小时) mean time to close (h)", number(report.mean_time_to_close_h, 1)),
        ("设备在线率(%) device availability (%)", number(report.device_availability_pct, 2)),
    ]


def monthly_report_csv(report: MonthlyReport) -> bytes:
    rows: list[tuple[str, str, str]] = [("summary", name, value) for name, value in _summary_rows(report)]
    rows += [
        (
            "opened_by_category_level",
            f"{CATEGORY_LABELS[c]} {c.value} / {LEVEL_LABELS[lv]} {lv.value}",
            str(n),
        )
        for (c, lv), n in report.opened_by_category_level.items()
    ]
    return csv_bytes(("部分 section", "项目 item", "数值 value"), rows)


def monthly_report_html(report: MonthlyReport) -> str:
    esc = html.escape
    summary = "".join(
        f"<tr><th>{esc(name)}</th><td>{esc(value)}</td></tr>" for name, value in _summary_rows(report)
    )
    levels = list(HazardLevel)
    head = "".join(f"<th>{LEVEL_LABELS[lv]} {lv.value}</th>" for lv in levels)
    body = "".join(
        f"<tr><th>{CATEGORY_LABELS[c]} {c.value}</th>"
        + "".join(f"<td>{report.opened_by_category_level[(c, lv)]}</td>" for lv in levels)
        + "</tr>"
        for c in HazardCategory
    )
    title = f"{esc(report.campus)} 隐患排查治理月报 {esc(report.month)}"
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #999;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>{title}</h1><h2>汇总 Summary</h2><table>{summary}</table>"
        f"<h2>新增隐患（按类别、等级） Opened by category and level</h2>"
        f"<table><tr><th></th>{head}</tr>{body}</table></body></html>\n"
    )


StatusChangeRow = tuple[str, bool, float]  # device_id, online, ts


def fleet_availability_pct(
    changes: Iterable[StatusChangeRow], start_ts: float, end_ts: float
) -> float | None:
    """Online time over known time, in percent, across devices in [start, end).

    A device's state before its first known change is unknown and counts neither way; None
    when no device state is known in the window.
    """
    by_device: dict[str, list[tuple[float, bool]]] = {}
    for device_id, online, ts in changes:
        by_device.setdefault(device_id, []).append((ts, online))
    online_s = known_s = 0.0
    for timeline in by_device.values():
        timeline.sort()
        for index, (ts, online) in enumerate(timeline):
            until = timeline[index + 1][0] if index + 1 < len(timeline) else end_ts
            span_s = max(0.0, min(until, end_ts) - max(ts, start_ts))
            known_s += span_s
            online_s += span_s if online else 0.0
    return None if known_s == 0 else 100.0 * online_s / known_s
