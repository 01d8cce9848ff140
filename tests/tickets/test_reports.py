"""The two lists and the monthly report: maths, CSV read back, and the `report` command."""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from analytics.tickets import HazardCategory, HazardLevel, PeopleDirectory, Ticket, TicketState
from analytics.tickets.reports import (
    ReportError,
    fleet_availability_pct,
    hazard_list_csv,
    month_bounds,
    monthly_report,
)
from gateway.reports import add_report_commands
from storage.tickets import SqliteTicketRepository
from tests.tickets.support import DAY_S, DRAFT, HOUR_S, PEOPLE

TZ = ZoneInfo("Asia/Shanghai")
OCTOBER = month_bounds("2026-10", TZ)


def at(day: int, hour: int = 9) -> float:
    return datetime(2026, 10, day, hour, tzinfo=TZ).timestamp()


def ticket(ticket_id: int, **fields: object) -> Ticket:
    base = DRAFT.register(ticket_id)
    return replace(base, **fields)  # type: ignore[arg-type]


def test_month_bounds_are_campus_calendar_months() -> None:
    assert OCTOBER.start_ts == datetime(2026, 10, 1, tzinfo=TZ).timestamp()
    assert OCTOBER.end_ts == datetime(2026, 11, 1, tzinfo=TZ).timestamp()
    assert month_bounds("2026-12", TZ).end_ts == datetime(2027, 1, 1, tzinfo=TZ).timestamp()


def test_monthly_counts() -> None:
    tickets = [
        # found and closed on time in October, 48 h to close
        ticket(1, discovered_at=at(2), closed_at=at(4), deadline_ts=at(5), state=TicketState.CLOSED),
        # found in October, closed late in October, 24 h to close
        ticket(2, discovered_at=at(10), closed_at=at(11), deadline_ts=at(10, 12), state=TicketState.CLOSED),
        # found in October, still open and overdue at month end (major)
        ticket(3, discovered_at=at(20), deadline_ts=at(25)),
        # found in September, open at the end of October, not overdue
        ticket(4, discovered_at=at(1) - 5 * DAY_S, deadline_ts=at(31) + DAY_S, level=HazardLevel.GENERAL),
        # found in November: not part of October
        ticket(5, discovered_at=OCTOBER.end_ts + HOUR_S),
    ]
    report = monthly_report("实验中学", OCTOBER, tickets, 97.5)
    assert (report.opened, report.closed, report.closed_on_time) == (3, 2, 1)
    assert (report.open_at_month_end, report.overdue_at_month_end, report.overdue_major_at_month_end) == (
        2,
        1,
        1,
    )
    assert report.mean_time_to_close_h == pytest.approx(36.0)
    assert report.opened_by_category_level[(HazardCategory.CHEMICAL, HazardLevel.MAJOR)] == 3
    assert sum(report.opened_by_category_level.values()) == 3


def test_availability_counts_only_known_time() -> None:
    start, end = 0.0, 100.0
    changes = [
        ("a", True, -50.0),  # online from before the window ...
        ("a", False, 50.0),  # ... offline for the second half
        ("b", True, 80.0),  # unknown until 80, then online
    ]
    assert fleet_availability_pct(changes, start, end) == pytest.approx(100 * (50 + 20) / (100 + 20))
    assert fleet_availability_pct([], start, end) is None


def test_the_hazard_list_escapes_commas_quotes_and_newlines() -> None:
    tricky = ticket(1, measures='断电, 更换"漏保"\n复测', responsible_id="wang")
    content = hazard_list_csv([tricky], lambda _: [3, 4], PeopleDirectory(PEOPLE), at(1), TZ)
    header, row = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    record = dict(zip(header, row, strict=True))
    assert record["整改措施 measures"] == '断电, 更换"漏保"\n复测'
    assert (record["关联告警 alert_ids"], record["责任人 responsible"]) == ("3 4", "王建国")


def run_report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="campus-gateway")
    add_report_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_report_monthly_command_writes_html_and_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "gateway.db"
    config = tmp_path / "gateway.yaml"
    config.write_text(f"campus: {{id: school-1, name: 实验中学}}\nstorage: {{sqlite_path: {db_path}}}\n")
    repository = SqliteTicketRepository(db_path)
    repository.create(replace(DRAFT, discovered_at=at(3)), "op", [])
    repository.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO status_changes (device_id, online, ts, reason) VALUES ('efm-1', 1, ?, '')",
            (at(1, 0),),
        )
    conn.close()
    out = tmp_path / "out"
    assert (
        run_report(["report", "monthly", "--month", "2026-10", "--config", str(config), "--out", str(out)])
        == 0
    )
    html = (out / "report-2026-10.html").read_text(encoding="utf-8")
    assert "实验中学 隐患排查治理月报 2026-10" in html and "100.00" in html
    rows = list(csv.reader(io.StringIO((out / "report-2026-10.csv").read_bytes().decode("utf-8-sig"))))
    assert ["summary", "新增隐患 opened", "1"] in rows
    assert capsys.readouterr().out.split() == [
        str(out / "report-2026-10.html"),
        str(out / "report-2026-10.csv"),
    ]
    assert run_report(["report", "hazards", "--config", str(config), "--out", str(out)]) == 0
    assert run_report(["report", "monthly", "--month", "10/2026", "--config", str(config)]) == 2
    assert "expected YYYY-MM" in capsys.readouterr().err


def test_a_stored_time_no_calendar_can_show_leaves_the_lists_readable() -> None:
    # Written before the API bounded deadlines: 1e17 s is past year 9999, which made both CSV
    # exports answer 500 for as long as the ticket existed.
    broken = ticket(1, deadline_ts=1e17)
    rows = list(
        csv.reader(
            io.StringIO(
                hazard_list_csv([broken], lambda _: [], PeopleDirectory(PEOPLE), at(2), TZ).decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert "1e+17 (invalid time)" in rows[1]


@pytest.mark.parametrize("formula", ['=HYPERLINK("http://x")', "+1+2", "-1+2", "@SUM(A1)", "\tx"])
def test_text_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(formula: str) -> None:
    rows = list(
        csv.reader(
            io.StringIO(
                hazard_list_csv(
                    [ticket(1, title=formula)], lambda _: [], PeopleDirectory(PEOPLE), at(2), TZ
                ).decode("utf-8-sig")
            )
        )
    )
    assert rows[1][1] == f"'{formula}"


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "1969-12", "2026-13"])
def test_a_month_no_timestamp_holds_is_refused_by_name(month: str) -> None:
    with pytest.raises(ReportError, match="month: expected YYYY-MM from 1970-01 to 2099-12"):
        month_bounds(month, TZ)
