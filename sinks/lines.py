"""InfluxDB line protocol for the store's records: one measurement per device kind for readings,
`device_event` for events, `alert_change` for alert state changes; and `gateway_sink`, the
sink's own backlog, so the district's TSDB itself shows how far behind each campus is.

Tags are campus, device, building and zone (plus the event or rule names): never a person id,
which some events carry in their attributes (access_granted, badge) and which stay on the box.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from analytics.devices import DeviceSpec
from sinks.config import Precision
from storage.forwarding import ForwardAlertChange, ForwardEvent, LineFormat

_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "\\\\"})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\\": "\\\\"})
UNKNOWN_KIND = "unknown_device"  # a device since removed from the inventory


def _tag(value: str) -> str:
    return value.translate(_TAG_ESCAPES)


class LineEncoder:
    """Turns forwarded rows into lines; each device's measurement and tags are built once.

    Args:
        campus_id: the `campus` tag of every line.
        devices: the inventory, for each device's kind, building and zone.
        precision: the unit of the timestamps written (the request says the same).
    """

    def __init__(self, campus_id: str, devices: Iterable[DeviceSpec], precision: Precision) -> None:
        self._campus = f"campus={_tag(campus_id)}"
        self._scale = _PER_SECOND[precision]
        self._series: dict[str, tuple[str, str]] = {}  # device id -> (measurement, tag set)
        for device in devices:
            self._series[device.id] = (
                device.kind.value.translate(_MEASUREMENT_ESCAPES),
                self._tags(device.id, device.building, device.zone),
            )

    def _tags(self, device_id: str, building: str, zone: str) -> str:
        # Line protocol has no empty tag values: a device without a building or zone omits the tag.
        parts = [f"building={_tag(building)}"] if building else []
        parts += [self._campus, f"device={_tag(device_id)}"]
        if zone:
            parts.append(f"zone={_tag(zone)}")
        return ",".join(parts)

    def reading_format(self) -> LineFormat:
        """Readings' lines as SQLite writes them (`storage.forwarding`): `measurement,tags fields ts`."""
        return LineFormat(
            prefixes={
                device_id: f"{measurement},{tags}" for device_id, (measurement, tags) in self._series.items()
            },
            unknown_prefix=f"{UNKNOWN_KIND},{self._campus},device=",
            ts_scale=self._scale,
        )

    def _of(self, device_id: str) -> tuple[str, str]:
        found = self._series.get(device_id)
        if found is None:
            found = self._series[device_id] = (UNKNOWN_KIND, self._tags(device_id, "", ""))
        return found

    def _ts(self, ts: float) -> int:
        # Half up, as SQLite rounds the readings' (`LineFormat`): the same arithmetic, the same stamp.
        return int(ts * self._scale + 0.5)

    def events(self, rows: Sequence[ForwardEvent]) -> list[str]:
        lines = []
        for _, device_id, kind, name, ts in rows:
            _, tags = self._of(device_id)
            lines.append(f"device_event,{tags},event={_tag(name)},kind={_tag(kind)} count=1i {self._ts(ts)}")
        return lines

    def alert_changes(self, rows: Sequence[ForwardAlertChange]) -> list[str]:
        lines = []
        for _, ts, action, alert_id, rule, severity, device_id in rows:
            _, tags = self._of(device_id)
            lines.append(
                f"alert_change,action={_tag(action)},{tags},rule={_tag(rule)},severity={_tag(severity)} "
                f"alert_id={alert_id}i {self._ts(ts)}"
            )
        return lines

    def sink_status(self, rows_behind: int, oldest_unsent_age_s: float | None, ts: float) -> str:
        age = 0.0 if oldest_unsent_age_s is None else oldest_unsent_age_s
        return f"gateway_sink,{self._campus} rows_behind={rows_behind}i,oldest_unsent_age_s={age!r} {self._ts(ts)}"
