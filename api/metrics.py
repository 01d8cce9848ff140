"""Prometheus text exposition of the gateway's counters and device online state."""

from __future__ import annotations

from typing import Any

from api.context import ApiContext


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(ctx: ApiContext) -> str:
    lines: list[str] = []
    by_name: dict[str, list[tuple[str, int]]] = {}
    for (name, label), count in sorted(ctx.counters().items()):
        by_name.setdefault(name, []).append((label, count))
    for name, samples in by_name.items():
        metric = f"campus_gateway_{name}_total"
        lines.append(f"# TYPE {metric} counter")
        for label, count in samples:
            selector = f'{{label="{_escape(label)}"}}' if label else ""
            lines.append(f"{metric}{selector} {count}")
    lines.append("# TYPE campus_gateway_device_online gauge")
    for device in ctx.inventory:
        status = ctx.tracker.get(device.id)
        value = 1 if status is not None and status.online else 0
        lines.append(
            f'campus_gateway_device_online{{campus="{_escape(ctx.campus_id)}",device="{_escape(device.id)}",'
            f'kind="{device.kind.value}",building="{_escape(device.building)}"}} {value}'
        )
    lines.append("# TYPE campus_gateway_open_alerts gauge")
    open_alerts = ctx.alerts.open_alerts()
    for severity in ("info", "warning", "major", "critical"):
        count = sum(1 for alert in open_alerts if alert.severity.value == severity)
        lines.append(f'campus_gateway_open_alerts{{severity="{severity}"}} {count}')
    lines += _sink_gauges(ctx.health().get("sinks", {}).get("influx"))
    return "\n".join(lines) + "\n"


def _sink_gauges(influx: dict[str, Any] | None) -> list[str]:
    """How far behind the TSDB sink is (its counters are among the counters above)."""
    if influx is None:
        return []
    age = influx["oldest_unsent_age_s"]
    return [
        "# TYPE campus_gateway_sink_rows_behind gauge",
        f'campus_gateway_sink_rows_behind{{sink="influx"}} {influx["rows_behind"]}',
        "# TYPE campus_gateway_sink_oldest_unsent_age_seconds gauge",
        f'campus_gateway_sink_oldest_unsent_age_seconds{{sink="influx"}} {0 if age is None else age}',
        "# TYPE campus_gateway_sink_last_error_timestamp_seconds gauge",
        f'campus_gateway_sink_last_error_timestamp_seconds{{sink="influx"}} {influx["last_error_at"] or 0}',
    ]
