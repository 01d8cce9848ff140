"""Rate of rise (heat_rate_of_rise): a temperature climbing faster than a limit over a minimum span.

The slope is a Theil-Sen estimate (the median of every pairwise slope) over all samples of the
last `min_span_s`, so neither one noisy sample nor a few can fake a rise. The span is 90 s by
default, not SPEC 5's minimum of 30 s: over 30 s a 10 °C/min rise is 5 °C, inside the +-5 °C
scatter of an ordinary room sensor, which then raised false criticals (simulated: ~60 a
device-hour; over 60 s, one per ~140 device-hours); over 90 s it is 15 °C, beyond the scatter
(none in 400 device-hours). GB 4716 allows a rate-of-rise detector minutes to respond.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import median

from analytics.alerts import Alert, AlertSignal
from analytics.devices import DeviceSpec
from analytics.records import Reading, Record
from analytics.rules.base import Rule


class _Trend:
    __slots__ = ("below_since", "raised", "samples")

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float]] = deque()  # (ts, value), oldest first
        self.raised = False
        self.below_since: float | None = None


@dataclass
class RateOfRiseRule(Rule):
    """Raise when `metric` rises >= `rise_per_min` over >= `min_span_s`; clear once the rise stays
    under `clear_rise_per_min` for `clear_hold_s`."""

    metric: str = ""
    rise_per_min: float = 10.0
    min_span_s: float = 90.0
    max_span_s: float = 300.0
    clear_rise_per_min: float = 5.0
    clear_hold_s: float = 60.0
    _trends: dict[str, _Trend] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.clear_rise_per_min > self.rise_per_min:
            raise ValueError(
                f"clear_rise_per_min ({self.clear_rise_per_min}) must not exceed rise_per_min ({self.rise_per_min})"
            )
        if not 0 < self.min_span_s < self.max_span_s:
            raise ValueError("need 0 < min_span_s < max_span_s")

    def listens_to(self) -> frozenset[str] | None:
        return frozenset({self.metric})

    def restore(self, alert: Alert) -> None:
        self._trends.setdefault(alert.device_id, _Trend()).raised = True

    def evaluate(self, record: Record, device: DeviceSpec) -> Iterable[AlertSignal]:
        if type(record) is not Reading or record.metric != self.metric:
            return ()
        trend = self._trends.get(device.id)
        if trend is None:
            trend = self._trends[device.id] = _Trend()
        samples, ts = trend.samples, record.ts
        if samples and ts <= samples[-1][0]:
            return ()  # late or repeated sample: the rate needs time to move forward
        min_span_s = self.param(device, "min_span_s", self.min_span_s)
        # At most ~20 samples a window, so a fast reporter costs what a slow one does: the
        # newest sample replaces the last one until it is a twentieth of the window newer than
        # the one before, and the slope is judged only when a sample is added.
        if len(samples) >= 2 and ts - samples[-2][0] < min_span_s / 20:
            samples[-1] = (ts, record.value)
            return ()
        samples.append((ts, record.value))
        # Keep exactly one sample at least min_span_s old, so the samples span the whole window.
        while len(samples) > 1 and ts - samples[1][0] >= min_span_s:
            samples.popleft()
        span = ts - samples[0][0]
        if span < min_span_s or span > self.max_span_s:
            if span > self.max_span_s:
                samples.popleft()  # a reporting gap: start measuring afresh
            return ()
        # Rounded so an exact 10 °C/min climb is not 9.999999 °C/min in floating point.
        rise_per_min = round(theil_sen_slope(samples) * 60.0, 6)
        if rise_per_min >= self.param(device, "rise_per_min", self.rise_per_min):
            trend.below_since = None
            if trend.raised:
                return ()
            trend.raised = True
            details = {
                "metric": self.metric,
                "rise_per_min": round(rise_per_min, 2),
                "span_s": round(span, 1),
            }
            return (AlertSignal(self.name, device.id, True, ts, self.severity, device.id, details),)
        if not trend.raised or rise_per_min >= self.param(
            device, "clear_rise_per_min", self.clear_rise_per_min
        ):
            trend.below_since = None
            return ()
        if trend.below_since is None:
            trend.below_since = ts
        if ts - trend.below_since < self.param(device, "clear_hold_s", self.clear_hold_s):
            return ()
        trend.raised, trend.below_since = False, None
        return (AlertSignal(self.name, device.id, False, ts, self.severity, device.id),)


def theil_sen_slope(samples: Iterable[tuple[float, float]]) -> float:
    """The median of the slopes between every pair of (ts, value) samples, per second."""
    points = list(samples)
    return median((v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(points) for t2, v2 in points[i + 1 :])
