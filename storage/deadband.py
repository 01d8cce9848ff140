"""Report-by-exception for storage: keep a sample only when it moved or the series went quiet.

SCADA historians store a high-rate tag by "exception deviation" with a maximum time between
stored values (OSIsoft PI's ExcDev/ExcMax): a sample is kept when it differs from the last
kept one by more than the deadband, or when the last kept one is `max_interval_s` old. Rules
still see every sample; only what the store keeps is filtered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ReadingRow = tuple[str, str, float, float]  # device_id, metric, ts, value


@dataclass(frozen=True, slots=True)
class Deadband:
    """Keep a sample that moved more than `delta` from the last kept one, or `max_interval_s` after it."""

    delta: float
    max_interval_s: float


class DeadbandFilter:
    """Decides per (device, metric) whether a reading is stored. Pure: time is the samples' own `ts`.

    Args:
        bands: deadband per metric name; metrics without one are always stored.
    """

    def __init__(self, bands: Mapping[str, Deadband]) -> None:
        self._bands = dict(bands)
        self._kept: dict[tuple[str, str], tuple[float, float]] = {}  # (device, metric) -> (ts, value)

    def keep(self, device_id: str, metric: str, ts: float, value: float) -> bool:
        band = self._bands.get(metric)
        if band is None:
            return True
        key = (device_id, metric)
        last = self._kept.get(key)
        if last is not None:
            last_ts, last_value = last
            if ts < last_ts:
                return True  # a late sample: kept as it came, without moving the reference
            if abs(value - last_value) <= band.delta and ts - last_ts < band.max_interval_s:
                return False
        self._kept[key] = (ts, value)
        return True

    def filter(self, rows: Sequence[ReadingRow]) -> list[ReadingRow]:
        """The rows to store, in their order."""
        if not self._bands:
            return list(rows)
        return [row for row in rows if self.keep(*row)]
