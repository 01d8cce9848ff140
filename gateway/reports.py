"""Ticket exports and reports from the command line: `campus-gateway report monthly|hazards|responsibilities`.

Reads the gateway's SQLite file (the running gateway may keep writing; WAL lets both work) and
writes the files the school hands to the bureau.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from analytics.tickets import PeopleDirectory
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
from analytics.uptime import HEARTBEAT_S, RunningTime, Span, device_uptime, mean_availability
from gateway.backup_cmd import add_database_options
from gateway.config import ConfigError, GatewayConfig, load_config
from storage.tickets import SqliteTicketRepository
from storage.uptime import read_uptime_history


def device_availability_pct(
    db_path: Path, device_ids: Sequence[str], start_ts: float, end_ts: float, now: float | None = None
) -> float | None:
    """Mean device availability in [start, min(end, now)), in percent, by the maths of
    `GET /api/v1/uptime`; None when nothing is known. The future is not time yet."""
    window = Span(start_ts, min(end_ts, time.time() if now is None else now))
    if window.seconds <= 0:
        return None
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        history = read_uptime_history(
            lambda sql, params: conn.execute(sql, params).fetchall(), window, 3 * HEARTBEAT_S, device_ids
        )
    finally:
        conn.close()
    watched = RunningTime(history.running, window)
    uptimes = [device_uptime(changes, watched, window) for changes in history.transitions.values()]
    availability = mean_availability(uptimes)
    return None if availability is None else 100.0 * availability


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
        tz = ZoneInfo(config.campus.timezone)
        people = PeopleDirectory(config.tickets.people)
        written = _write_report(args, config, tz, people)
    except (ConfigError, ReportError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def _write_report(
    args: argparse.Namespace, config: GatewayConfig, tz: ZoneInfo, people: PeopleDirectory
) -> list[Path]:
    db_path = Path(args.db).resolve() if args.db else config.storage.sqlite_path
    if not db_path.is_file():
        named_by = "--db" if args.db else f"storage.sqlite_path in {args.config}"
        raise ReportError(
            f"{db_path}: no gateway database here ({named_by}); point --config at the gateway's config "
            "(the demo prints its own) or --db at its database"
        )
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    repository = SqliteTicketRepository(db_path)
    try:
        now = time.time()
        stamp = datetime.fromtimestamp(now, tz).strftime("%Y%m%d")
        if args.report == "hazards":
            path = out_dir / f"hazards-{stamp}.csv"
            path.write_bytes(hazard_list_csv(repository.tickets(), repository.alert_ids, people, now, tz))
            return [path]
        if args.report == "responsibilities":
            path = out_dir / f"responsibilities-{stamp}.csv"
            path.write_bytes(responsibility_list_csv(repository.tickets(OPEN_STATES), people, tz))
            return [path]
        bounds = month_bounds(args.month, tz)
        report = monthly_report(
            config.campus.name or config.campus.id,
            bounds,
            repository.tickets(),
            device_availability_pct(
                db_path, [device.id for device in config.devices], bounds.start_ts, bounds.end_ts
            ),
        )
    finally:
        repository.close()
    written: list[Path] = []
    if args.format in ("html", "both"):
        written.append(out_dir / f"report-{args.month}.html")
        written[-1].write_text(monthly_report_html(report), encoding="utf-8")
    if args.format in ("csv", "both"):
        written.append(out_dir / f"report-{args.month}.csv")
        written[-1].write_bytes(monthly_report_csv(report))
    return written


def add_report_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `report monthly|hazards|responsibilities` on the `campus-gateway` parser."""
    report = subparsers.add_parser("report", help="hazard lists (两个清单) and the monthly report")
    kinds = report.add_subparsers(dest="report", required=True)
    monthly = kinds.add_parser("monthly", help="monthly hazard report as HTML and/or CSV")
    monthly.add_argument("--month", required=True, help="YYYY-MM in the campus time zone, e.g. 2026-10")
    monthly.add_argument(
        "--format", choices=("html", "csv", "both"), default="both", help="what to write (default: both)"
    )
    kinds.add_parser("hazards", help="隐患清单: every hazard as CSV (UTF-8 with BOM, opens in Excel)")
    kinds.add_parser("responsibilities", help="责任清单: open hazards and who answers for them, as CSV")
    for parser in kinds.choices.values():
        add_database_options(parser)
        parser.add_argument("--out", default=".", help="folder for the files (default: here)")
        parser.set_defaults(func=_cmd_report)
