"""The bureau's district poll: `campus-gateway district poll --gateways district.yaml --out DIR`.

Polls every school's gateway (`GET /api/v1/uptime`, with that gateway's bureau token)
concurrently, within a bound, with timeouts and retries, and writes the district report as CSV
(UTF-8 with BOM, for Excel) and HTML. A gateway that cannot be read is listed with the reason;
it never stops the poll.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import html
import io
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO
from zoneinfo import ZoneInfo

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analytics.uptime import WINDOWS_S
from api.uptime_schemas import CampusOut, OutageOut, UptimeOut
from gateway.config import ConfigError

FailureReason = Literal["refused", "timeout", "401", "bad JSON", "5xx", "HTTP error", "network error"]


class GatewayEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    school: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://", description="the gateway's API base, e.g. http://10.1.2.3:8080")
    token: str = Field(min_length=1, description="a bureau-role bearer token of that gateway")


class DistrictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district: str = ""
    timezone: str = "Asia/Shanghai"
    window: Literal["24h", "7d", "30d"] = "7d"
    concurrency: int = Field(default=50, ge=1, le=1000)
    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=1.0, ge=0)
    gateways: list[GatewayEntry] = Field(min_length=1)


def load_district(path: Path) -> DistrictConfig:
    """Read and validate the list of gateways; ConfigError names the file, the key and the reason."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        config = DistrictConfig.model_validate(raw if raw is not None else {})
        ZoneInfo(config.timezone)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(part) for part in error['loc']) or '<top>'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from None
    except (KeyError, ValueError):
        raise ConfigError(f"{path}: timezone: unknown time zone {config.timezone!r}") from None
    return config


@dataclass(frozen=True, slots=True)
class OutageRow:
    device_id: str
    kind: str
    location: str
    outage: OutageOut


@dataclass(frozen=True, slots=True)
class SchoolUptime:
    """What the report needs of one answer; the answer itself (every device) is not kept, so
    500 schools fit in a small poller."""

    campus: CampusOut
    outage_count: int
    downtime_s: float
    # The least of its known devices': the gateway's own gaps are in every device's unknown time.
    unknown_s: float | None
    outages: list[OutageRow]

    @classmethod
    def of(cls, answer: UptimeOut) -> SchoolUptime:
        devices = answer.devices
        return cls(
            campus=answer.campus,
            outage_count=sum(device.outage_count for device in devices),
            downtime_s=sum(device.offline_s for device in devices),
            unknown_s=min((d.unknown_s for d in devices if d.availability is not None), default=None),
            outages=[
                OutageRow(device.device_id, device.kind, device.location, outage)
                for device in devices
                for outage in device.outages
            ],
        )


@dataclass(frozen=True, slots=True)
class SchoolResult:
    """One gateway's answer, or why there is none."""

    entry: GatewayEntry
    uptime: SchoolUptime | None
    reason: FailureReason | None = None
    detail: str = ""
    attempts: int = 1


class _PollFailure(Exception):
    """Why one request failed; `retry` is False when asking again will not help (a wrong token,
    a body that is not the API's)."""

    def __init__(self, reason: FailureReason, detail: str, retry: bool = True) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry = retry


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is in the chain: httpx wraps the socket's own error (through anyio) twice."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cause_text(exc: BaseException) -> str:
    """The innermost error's words ("Connect call failed ..."), not the wrappers' generic ones."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return str(exc) or type(exc).__name__


async def _fetch(client: httpx.AsyncClient, entry: GatewayEntry, window: str) -> SchoolUptime:
    url = entry.url.rstrip("/") + "/api/v1/uptime"
    try:
        response = await client.get(
            url, params={"window": window}, headers={"Authorization": f"Bearer {entry.token}"}
        )
    except httpx.ConnectError as exc:
        refused = _caused_by(exc, ConnectionRefusedError)
        raise _PollFailure("refused" if refused else "network error", _cause_text(exc)) from None
    except httpx.TimeoutException as exc:
        raise _PollFailure("timeout", type(exc).__name__) from None
    except httpx.HTTPError as exc:
        raise _PollFailure("network error", f"{type(exc).__name__}: {exc}") from None
    if response.status_code in (401, 403):
        raise _PollFailure("401", f"HTTP {response.status_code}: {response.text[:200]}", retry=False)
    if response.status_code >= 500:
        raise _PollFailure("5xx", f"HTTP {response.status_code}")
    if response.status_code != 200:
        raise _PollFailure("HTTP error", f"HTTP {response.status_code}: {response.text[:200]}", retry=False)
    try:
        return SchoolUptime.of(UptimeOut.model_validate_json(response.content))
    except ValidationError as exc:
        raise _PollFailure("bad JSON", str(exc).splitlines()[0][:200], retry=False) from None


async def poll_school(
    client: httpx.AsyncClient, entry: GatewayEntry, config: DistrictConfig, gate: asyncio.Semaphore
) -> SchoolResult:
    """Retries what may pass (refused, timeout, 5xx) with exponential backoff and jitter; after a
    timeout at once, since it has already waited `timeout_s` on that gateway."""
    attempt = 0
    while True:
        attempt += 1
        try:
            async with gate:
                uptime = await _fetch(client, entry, config.window)
            return SchoolResult(entry, uptime, attempts=attempt)
        except _PollFailure as failure:
            if not failure.retry or attempt > config.retries:
                return SchoolResult(entry, None, failure.reason, failure.detail, attempt)
            if failure.reason != "timeout":
                delay_s = config.backoff_s * 2 ** (attempt - 1)
                await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))


class Progress:
    """One line on a terminal, redrawn as schools answer; silent when output is not a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = self.failed = 0
        self._stream = stream if stream is not None else sys.stderr
        self._shown = self._stream.isatty()

    def update(self, result: SchoolResult) -> None:
        self.done += 1
        self.failed += result.uptime is None
        if self._shown:
            filled = int(30 * self.done / self.total)
            self._stream.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} schools, "
                f"{self.failed} unreachable"
            )
            if self.done == self.total:
                self._stream.write("\n")
            self._stream.flush()


async def poll_district(
    config: DistrictConfig,
    on_result: Callable[[SchoolResult], None] = lambda result: None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[SchoolResult]:
    """Every gateway's result, in the order of the list."""
    gate = asyncio.Semaphore(config.concurrency)
    # No idle connections kept: schools are different hosts, so they reuse nothing, and httpcore
    # 1.0's pool does work in its connections squared for every idle one at each request and
    # response (most of a 500-school poll's CPU at 50 in flight).
    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=config.timeout_s, limits=limits, transport=transport) as client:

        async def one(entry: GatewayEntry) -> SchoolResult:
            try:
                result = await poll_school(client, entry, config, gate)
            except Exception as exc:  # one bad gateway never stops the poll
                result = SchoolResult(entry, None, "network error", f"{type(exc).__name__}: {exc}")
            on_result(result)
            return result

        return list(await asyncio.gather(*(one(entry) for entry in config.gateways)))


SUMMARY_HEADER = (
    "学校 school", "状态 status", "原因 reason", "登记设备 registered", "在线 online now",
    "在线率 online rate (%)", "联网率 networked rate (%)", "平均可用率 mean availability (%)",
    "中断次数 outages", "中断时长(小时) downtime (h)", "状态未知(小时) unknown (h)", "挂牌督办 overdue major hazards", "网关 gateway",
)  # fmt: skip
OUTAGE_HEADER = (
    "学校 school", "设备 device", "类型 kind", "位置 location", "开始 start", "结束 end",
    "时长(秒) offline (s)", "原因 cause",
)  # fmt: skip


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _time(ts: float | None, tz: ZoneInfo) -> str:
    return "进行中 ongoing" if ts is None else datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def summary_rows(results: Sequence[SchoolResult]) -> list[tuple[str, ...]]:
    rows = []
    for result in results:
        up, school = result.uptime, result.entry.school
        if up is None:
            reason = f"{result.reason}: {result.detail}" if result.detail else str(result.reason)
            rows.append((school, "无应答 unreachable", reason, *[""] * 9, result.entry.url))
            continue
        overdue = "" if up.campus.overdue_major_hazards is None else str(up.campus.overdue_major_hazards)
        rows.append(
            (
                school,
                "正常 ok",
                "",
                str(up.campus.registered),
                str(up.campus.online_now),
                _pct(up.campus.online_rate),
                _pct(up.campus.networked_rate),
                _pct(up.campus.mean_availability),
                str(up.outage_count),
                f"{up.downtime_s / 3600:.2f}",
                "" if up.unknown_s is None else f"{up.unknown_s / 3600:.2f}",
                overdue,
                result.entry.url,
            )
        )
    return rows


def outage_rows(results: Sequence[SchoolResult], tz: ZoneInfo) -> list[tuple[str, ...]]:
    return [
        (
            result.entry.school,
            row.device_id,
            row.kind,
            row.location,
            _time(row.outage.start, tz),
            _time(row.outage.end, tz),
            f"{row.outage.offline_s:.1f}",
            row.outage.cause,
        )
        for result in results
        if result.uptime is not None
        for row in result.uptime.outages
    ]


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def district_html(config: DistrictConfig, results: Sequence[SchoolResult], polled_at: float) -> str:
    tz = ZoneInfo(config.timezone)
    title = html.escape(f"{config.district} 校园安全设备在线情况 {config.window}".strip())
    unreachable = [row for row in summary_rows(results) if row[1].endswith("unreachable")]
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>body{{font-family:sans-serif}}table{{border-collapse:collapse;"
        "margin:1em 0}th,td{border:1px solid #999;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>{title}</h1><p>{html.escape(_time(polled_at, tz))}</p>"
        f"<h2>各校汇总 Schools</h2>{_table(SUMMARY_HEADER, summary_rows(results))}"
        f"<h2>设备中断 Outages</h2>{_table(OUTAGE_HEADER, outage_rows(results, tz))}"
        f"<h2>无应答网关 Unreachable gateways ({len(unreachable)})</h2>"
        f"{_table(('学校 school', '原因 reason', '网关 gateway'), [(r[0], r[2], r[-1]) for r in unreachable])}"
        "</body></html>\n"
    )


def write_district_report(
    config: DistrictConfig, results: Sequence[SchoolResult], out_dir: Path, polled_at: float
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    tz = ZoneInfo(config.timezone)
    paths = [out_dir / "district-schools.csv", out_dir / "district-outages.csv", out_dir / "district.html"]
    paths[0].write_bytes(_csv(SUMMARY_HEADER, summary_rows(results)))
    paths[1].write_bytes(_csv(OUTAGE_HEADER, outage_rows(results, tz)))
    paths[2].write_text(district_html(config, results, polled_at), encoding="utf-8")
    return paths


def _cmd_poll(args: argparse.Namespace) -> int:
    try:
        config = load_district(Path(args.gateways))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.window is not None:
        config = config.model_copy(update={"window": args.window})
    progress = Progress(len(config.gateways))
    polled_at = time.time()
    results = asyncio.run(poll_district(config, progress.update))
    for path in write_district_report(config, results, Path(args.out), polled_at):
        print(path)
    failed = [result for result in results if result.uptime is None]
    for result in failed:
        print(f"unreachable: {result.entry.school} ({result.entry.url}): {result.reason}", file=sys.stderr)
    return 1 if len(failed) == len(results) else 0


def add_district_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `district poll` on the `campus-gateway` parser."""
    district = subparsers.add_parser("district", help="the education bureau's view of many gateways")
    commands = district.add_subparsers(dest="district", required=True)
    poll = commands.add_parser("poll", help="poll the gateways and write the district report (CSV, HTML)")
    poll.add_argument("--gateways", required=True, help="YAML: gateways: [{school, url, token}, ...]")
    poll.add_argument("--out", default=".", help="folder for the report files (default: here)")
    poll.add_argument("--window", choices=tuple(WINDOWS_S), help="overrides the file's window")
    poll.set_defaults(func=_cmd_poll)
