"""The monthly report's 设备在线率 on the uptime maths, from rows the store's writer wrote."""

from __future__ import annotations

import argparse
import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from analytics.tickets.reports import month_bounds
from gateway.reports import add_report_commands, device_availability_pct
from storage.sqlite import SqliteStore

TZ = ZoneInfo("Asia/Shanghai")
OCTOBER = month_bounds("2026-10", TZ)
DEVICES = ["a", "b"]


def day(number: int) -> float:
    """Midnight starting day `number` of October 2026, campus time (32 is 1 November)."""
    return datetime(2026, 10, 1, tzinfo=TZ).timestamp() + (number - 1) * 86400


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A gateway killed on the 20th and restarted on the 21st; `a` off a day, `b` off from the 25th."""
    path = tmp_path / "gw.db"
    store = SqliteStore(path)
    store.open()
    for started_at, until in ((day(1) - 3600, day(20)), (day(21), day(32) + 3600)):
        store.beat(started_at, started_at)
        store.beat(started_at, until)
    for device_id, online, ts in (
        ("a", True, day(1) - 7200),
        ("b", True, day(1) - 7200),
        ("a", False, day(10)),
        ("a", True, day(11)),
        ("b", False, day(25)),
    ):
        store.add_status_change(device_id, online, ts, "lwt")
    store.close()
    return path


def test_the_month_counts_known_time_only(db: Path) -> None:
    # Known: 31 days less the 1-day gap. a: 29 of 30 days online; b: 23 of 30 (off from the 25th).
    assert device_availability_pct(
        db, DEVICES, OCTOBER.start_ts, OCTOBER.end_ts, now=day(40)
    ) == pytest.approx(100 * (29 / 30 + 23 / 30) / 2)


def test_a_month_not_over_yet_ends_now(db: Path) -> None:
    """Was 100.00 for a month with outages: the present state ran on through future days."""
    # On the 15th: a 13 of 14 days, b 14 of 14.
    assert device_availability_pct(
        db, DEVICES, OCTOBER.start_ts, OCTOBER.end_ts, now=day(15)
    ) == pytest.approx(100 * (13 / 14 + 1) / 2)


def test_the_report_command_prints_it(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"campus: {{id: school-1, name: 实验中学}}\nstorage: {{sqlite_path: {db}}}\n"
        "inventory: [{id: a, kind: smoke}, {id: b, kind: smoke}]\n"
    )
    parser = argparse.ArgumentParser(prog="campus-gateway")
    add_report_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", "monthly", "--month", "2026-10", "--format", "csv"])
    args.config, args.out = str(config), str(tmp_path / "out")
    assert args.func(args) == 0
    text = (tmp_path / "out" / "report-2026-10.csv").read_bytes().decode("utf-8-sig")
    rows = {row[1]: row[2] for row in csv.reader(io.StringIO(text))}
    assert rows["设备在线率(%) device availability (%)"] == f"{100 * 52 / 60:.2f}"
