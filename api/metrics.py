"""`/metrics` for Prometheus through prometheus-client: one custom collector reads the gateway's
live state at scrape time (SPEC section 8). Base units, `_total` counters, ratios 0..1, no
timestamps: Prometheus stamps each sample with the scrape time.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics.alerts import Severity
from analytics.catalog import CAMERA_CODECS
from analytics.uptime import WINDOWS_S, DeviceAvailability, GroupAvailability, by_kind, summarize
from api.auth import AnyRole
from api.context import ApiContext
from api.schemas import ok_as
from api.uptime import overdue_major_hazards, read_availability, status_snapshot

# The text format every Prometheus reads (Debian 12 ships 2.42, older than format 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The window of the availability gauges; Prometheus itself can average `device_up` over others.
AVAILABILITY_WINDOW = "24h"

# The ingest counters (gateway.counters names): what each counts, and what its label means.
COUNTERS: Mapping[str, tuple[str, str | None]] = {
    "mqtt_messages": ("MQTT messages received", None),
    "records": ("normalized records accepted from drivers", None),
    "readings": ("numeric readings accepted", None),
    "events": ("device events accepted, by event name", "event"),
    "duplicates_dropped": ("redelivered records dropped as duplicates", None),
    "dead_letters": ("inputs dead-lettered, by reason", "reason"),
    "alerts_raised": ("alerts raised, by rule", "rule"),
    "alerts_suppressed": ("alerts suppressed by maintenance mode, by rule", "rule"),
    "records_for_unknown_devices": ("records for devices missing from the inventory", None),
    "rule_errors": ("records on which a rule failed", None),
    "signal_errors": ("alert signals that could not be applied", None),
    "api_refused": ("API requests refused before any route read them, by reason", "reason"),
    "sink_rows_sent": ("rows the upstream TSDB accepted, by sink", "sink"),
    "sink_retries": ("upstream writes retried, by sink", "sink"),
    "sink_rows_dropped": ("rows retention deleted before they were forwarded, by sink", "sink"),
    "sink_batches_dead_lettered": ("batches the upstream refused for good, by sink", "sink"),
    "sink_rows_dead_lettered": ("rows in batches the upstream refused for good, by sink", "sink"),
    "sink_spool_discarded": (
        "spools discarded (not following the cursor, or a file not as written), by sink",
        "sink",
    ),
}


def _package_version() -> str:
    try:
        return version("campus-safety-gateway")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class Scrape:
    """What one scrape exposes, gathered before the collector runs."""

    campus: str
    devices: list[DeviceAvailability]
    open_alerts: Mapping[Severity, int]
    overdue_major_hazards: int | None
    counters: Mapping[tuple[str, str], int]
    sinks: Mapping[str, Mapping[str, Any]]  # health()["sinks"]: how far behind each sink is
    cameras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # health()["cameras"]


class GatewayCollector(Collector):
    """Device up and availability, per-kind and per-campus ratios, alerts, hazards, ingest counters."""

    def __init__(self, scrape: Scrape) -> None:
        self._scrape = scrape

    def collect(self) -> Iterator[Metric]:
        scrape = self._scrape
        campus, devices = scrape.campus, scrape.devices
        yield InfoMetricFamily(
            "campus_gateway_build",
            "the gateway's version and Python",
            value={"version": _package_version(), "python": platform.python_version(), "campus": campus},
        )
        up = GaugeMetricFamily(
            "campus_gateway_device_up", "1 while the device is online", labels=["campus", "device", "kind"]
        )
        availability = GaugeMetricFamily(
            "campus_gateway_device_availability_ratio",
            "online time over known time in the window (gateway downtime excluded)",
            labels=["campus", "device", "kind", "window"],
        )
        unknown = GaugeMetricFamily(
            "campus_gateway_device_unknown_seconds",
            "time in the window when the device's state is unknown (gateway down, never heard)",
            labels=["campus", "device", "kind", "window"],
        )
        for device in devices:
            up.add_metric([campus, device.device_id, device.kind], 1.0 if device.online_now else 0.0)
            windowed = [campus, device.device_id, device.kind, AVAILABILITY_WINDOW]
            if (ratio := device.uptime.availability) is not None:
                availability.add_metric(windowed, ratio)
            unknown.add_metric(windowed, device.uptime.unknown_s)
        yield from (up, availability, unknown)
        yield from _group_metrics("campus", ["campus"], {(campus,): summarize(devices)})
        kinds: dict[tuple[str, ...], GroupAvailability] = {
            (campus, kind): group for kind, group in by_kind(devices).items()
        }
        yield from _group_metrics("kind", ["campus", "kind"], kinds)
        alerts = GaugeMetricFamily(
            "campus_gateway_open_alerts", "alerts not yet resolved", labels=["campus", "severity"]
        )
        for severity in Severity:
            alerts.add_metric([campus, severity.value], scrape.open_alerts.get(severity, 0))
        yield alerts
        if scrape.overdue_major_hazards is not None:
            hazards = GaugeMetricFamily(
                "campus_gateway_overdue_major_hazards",
                "major hazards past their deadline (挂牌督办)",
                labels=["campus"],
            )
            hazards.add_metric([campus], scrape.overdue_major_hazards)
            yield hazards
        yield from _counters(scrape.counters, campus)
        yield from _sink_gauges(scrape.sinks.get("influx"), campus)
        yield from _camera_metrics(scrape.cameras, campus)


# A camera's health from the video worker: (health key, metric name, help, counter?).
_CAMERA_FAMILIES: tuple[tuple[str, str, str, bool], ...] = (
    ("stream_fps", "camera_stream_fps", "frames per second the camera's stream delivers", False),
    ("sampled_fps", "camera_sampled_fps", "frames per second analysed", False),
    ("last_frame_age_s", "camera_last_frame_age_seconds", "age of the last good frame", False),
    ("decode_errors", "camera_decode_errors", "failed reads and decodes (per worker run)", True),
    ("reconnects", "camera_reconnects", "reconnects to the source (per worker run)", True),
    ("codec", "camera_codec", "the stream's codec: 264 H.264, 265 H.265, 0 another", False),
    ("key_frames_only", "camera_key_frames_only", "1: only key frames decoded; 0: every frame", False),
    ("key_frame_interval_s", "camera_key_frame_interval_seconds", "time between key frames", False),
)


def _camera_metrics(cameras: Mapping[str, Mapping[str, Any]], campus: str) -> Iterator[Metric]:
    """What each camera's last health report said; a worker restart resets its counters, which
    Prometheus's rate() treats as a counter reset."""
    for key, name, doc, is_counter in _CAMERA_FAMILIES:
        family_type = CounterMetricFamily if is_counter else GaugeMetricFamily
        family = family_type(f"campus_gateway_{name}", doc, labels=["campus", "camera"])
        for camera_id, health in sorted(cameras.items()):
            if (value := health.get(key)) is not None:
                if isinstance(value, str):  # the codec, shown by name in /api/v1/health
                    value = CAMERA_CODECS.get(value, 0)
                family.add_metric([campus, camera_id], float(value))
        yield family


# Per campus and per kind: name suffix, help, value, whether it is over the availability window.
_GROUP_FAMILIES: tuple[tuple[str, str, Callable[[GroupAvailability], float | None], bool], ...] = (
    ("online_ratio", "online now over registered devices (在线率)", lambda g: g.online_rate, False),
    (
        "networked_ratio",
        "devices heard from in the window over registered devices (联网率)",
        lambda g: g.networked_rate,
        True,
    ),
    (
        "mean_availability_ratio",
        "mean device availability in the window",
        lambda g: g.mean_availability,
        True,
    ),
)


def _group_metrics(
    scope: str, labels: list[str], groups: Mapping[tuple[str, ...], GroupAvailability]
) -> Iterator[Metric]:
    for suffix, doc, value_of, windowed in _GROUP_FAMILIES:
        window = [AVAILABILITY_WINDOW] if windowed else []
        family = GaugeMetricFamily(
            f"campus_gateway_{scope}_{suffix}", doc, labels=labels + (["window"] if windowed else [])
        )
        for key, group in groups.items():
            if (value := value_of(group)) is not None:
                family.add_metric([*key, *window], value)
        yield family


def _sink_gauges(influx: Mapping[str, Any] | None, campus: str) -> Iterator[Metric]:
    """How far behind the TSDB sink is (its counters are among the counters)."""
    if influx is None:
        return
    age = influx["oldest_unsent_age_s"]
    for name, doc, value in (
        ("sink_rows_behind", "committed rows not yet forwarded", influx["rows_behind"]),
        ("sink_oldest_unsent_age_seconds", "age of the oldest row not yet forwarded", age or 0),
        (
            "sink_last_error_timestamp_seconds",
            "when the sink last failed (0: never)",
            influx["last_error_at"] or 0,
        ),
    ):
        family = GaugeMetricFamily(f"campus_gateway_{name}", doc, labels=["campus", "sink"])
        family.add_metric([campus, "influx"], value)
        yield family


def _counters(values: Mapping[tuple[str, str], int], campus: str) -> Iterator[Metric]:
    names = sorted({name for name, _ in values} | set(COUNTERS))
    for name in names:
        doc, label = COUNTERS.get(name, (name.replace("_", " "), "key"))
        family = CounterMetricFamily(
            f"campus_gateway_{name}", doc, labels=["campus"] if label is None else ["campus", label]
        )
        for (key, label_value), count in sorted(values.items()):
            if key != name:
                continue
            family.add_metric([campus] if label is None else [campus, label_value], count)
        yield family


def prometheus_text(scrape: Scrape) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(scrape))
    return generate_latest(registry)


def metrics_router(ctx: ApiContext, clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", summary="Prometheus exposition", responses=ok_as("text/plain"))
    async def metrics(_: AnyRole) -> Response:
        # Live state is copied here, on the loop that changes it; the store is read off the loop.
        statuses = status_snapshot(ctx)
        open_alerts = Counter(alert.severity for alert in ctx.alerts.open_alerts())
        counters = dict(ctx.counters())
        counters |= {("api_refused", reason): n for reason, n in ctx.refusals.counts.items()}
        health = ctx.health()
        sinks, cameras = health.get("sinks", {}), health.get("cameras", {})

        def scrape() -> bytes:
            now = clock()
            devices = read_availability(ctx, statuses, WINDOWS_S[AVAILABILITY_WINDOW], now)
            overdue = overdue_major_hazards(ctx, now)
            return prometheus_text(
                Scrape(ctx.campus_id, devices, open_alerts, overdue, counters, sinks, cameras)
            )

        return Response(await asyncio.to_thread(scrape), media_type=CONTENT_TYPE)

    return router
