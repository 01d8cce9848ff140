"""Availability from online/offline intervals (SPEC section 8): pure, clock-free maths.

A device's state is piecewise constant between its transitions (the `status_changes` rows the
gateway writes whenever a device goes online or offline). Time counts only while the gateway was
running (its heartbeat rows) and once the device's state is known; everything else in the window
is unknown and counts neither way: availability = online / (window - unknown).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from operator import attrgetter
from statistics import fmean
from typing import NamedTuple

from analytics.device_tracker import DeviceStatus
from analytics.devices import DeviceSpec

# How often the gateway writes its heartbeat row: a kill -9 or a power cut leaves at most this
# much of its downtime counted as running.
HEARTBEAT_S = 5.0
# The windows the API and the district poller ask about (SPEC 8), in seconds.
WINDOWS_S: Mapping[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}


class Transition(NamedTuple):
    """A device went online or offline at `ts`; `cause` says why (a status, silence, a failed poll).

    A named tuple, not a dataclass: a 30-day query builds one per stored row, 80,000 and more.
    """

    ts: float
    online: bool
    cause: str = ""


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open time interval [start, end)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


class Outage(NamedTuple):
    """One offline period overlapping the window; `end` is None while it lasts. `offline_s` is the
    known offline time inside the window (a gateway gap inside the outage is not in it)."""

    start: float
    end: float | None
    cause: str
    offline_s: float


@dataclass(frozen=True, slots=True)
class DeviceUptime:
    online_s: float
    offline_s: float
    unknown_s: float
    outages: tuple[Outage, ...]

    @property
    def availability(self) -> float | None:
        """online / (window - unknown), 0..1; None when nothing in the window is known."""
        known_s = self.online_s + self.offline_s
        return None if known_s <= 0 else self.online_s / known_s


@dataclass(frozen=True, slots=True)
class UptimeHistory:
    """Per device, its transitions from the last one at or before the window's start to its end;
    and when the gateway ran (merged spans)."""

    transitions: Mapping[str, Sequence[Transition]]
    running: Sequence[Span]


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping spans covering the same time (overlapping runs are one run)."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        if span.end <= span.start:
            continue
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = Span(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


class RunningTime:
    """When the gateway ran within a window; how much of [a, b) that is, in O(log runs)."""

    def __init__(self, running: Iterable[Span], window: Span) -> None:
        spans = merge_spans(Span(max(r.start, window.start), min(r.end, window.end)) for r in running)
        self._starts = [span.start for span in spans]
        self._ends = [span.end for span in spans]
        self._before = [0.0]  # running seconds before each span
        for span in spans:
            self._before.append(self._before[-1] + span.seconds)

    def seconds(self, start: float, end: float) -> float:
        """Running seconds in [start, end): running time before `end` less that before `start`.

        Called once per offline segment (40,000 in a 30-day fleet answer): one frame, no helpers.
        """
        if end <= start:
            return 0.0
        starts, ends, before = self._starts, self._ends, self._before
        index = bisect_right(starts, end)
        if index == 0:
            return 0.0
        last_end = ends[index - 1]
        until_end = before[index - 1] + (end if end <= last_end else last_end) - starts[index - 1]
        index = bisect_right(starts, start, 0, index)
        if index == 0:
            return until_end
        last_end = ends[index - 1]
        return until_end - (
            before[index - 1] + (start if start <= last_end else last_end) - starts[index - 1]
        )


_TS = attrgetter("ts")


def device_uptime(
    transitions: Sequence[Transition], running: RunningTime | Iterable[Span], window: Span
) -> DeviceUptime:
    """One device's online, offline and unknown seconds and its outages within `window`.

    Args:
        transitions: the device's transitions in time order, including the last one before the
            window (it gives the state at the window's start).
        running: when the gateway was running (overlapping runs count once); a `RunningTime`
            of the same window when many devices are folded.
        window: the period asked about; its end should not lie in the future.
    """
    watched = running if isinstance(running, RunningTime) else RunningTime(running, window)
    if not transitions:
        return DeviceUptime(0.0, 0.0, window.seconds, ())
    seconds, start, end = watched.seconds, window.start, window.end
    # Known time is what the gateway watched from the first transition on; only the offline
    # segments are walked (a device is mostly online): online is the rest of the known time.
    known_s = seconds(max(transitions[0].ts, start), end)
    offline_s = 0.0
    outages: list[Outage] = []
    outage_ts: float | None = None  # when the outage being walked began, and why
    outage_cause = ""
    outage_s = 0.0
    # Each transition with the time the next one starts (the window's end after the last);
    # unpacked, not indexed: this loop runs once per stored transition.
    following = chain(map(_TS, islice(transitions, 1, None)), (end,))
    for (ts, online, cause), until in zip(transitions, following, strict=True):
        if online:
            if outage_ts is not None:
                if ts > start:
                    outages.append(Outage(outage_ts, ts, outage_cause, outage_s))
                outage_ts = None
            continue
        segment_s = seconds(ts if ts > start else start, until if until < end else end)
        offline_s += segment_s
        if outage_ts is None:
            outage_ts, outage_cause, outage_s = ts, cause, 0.0
        outage_s += segment_s
    if outage_ts is not None:
        outages.append(Outage(outage_ts, None, outage_cause, outage_s))
    online_s = max(0.0, known_s - offline_s)
    unknown_s = max(0.0, window.seconds - known_s)
    # Outages start in walk order, so only a tail can start at or past the window's end.
    if outages and outages[-1].start >= end:
        outages = [outage for outage in outages if outage.start < end]
    return DeviceUptime(online_s, offline_s, unknown_s, tuple(outages))


def mean_availability(uptimes: Iterable[DeviceUptime]) -> float | None:
    """The mean of the devices' availabilities (devices with nothing known are left out)."""
    known = [a for u in uptimes if (a := u.availability) is not None]
    return fmean(known) if known else None


@dataclass(frozen=True, slots=True)
class DeviceAvailability:
    """One registered device over a window, with what the tracker knows of it now."""

    device_id: str
    kind: str
    location: str
    online_now: bool
    last_seen: float | None
    reported: bool  # heard from at least once in the window
    uptime: DeviceUptime

    def without_outages(self) -> DeviceAvailability:
        """The same figures without the outage list, for a caller done with it (built directly:
        `dataclasses.replace` cost 10 ms over a fleet)."""
        uptime = DeviceUptime(self.uptime.online_s, self.uptime.offline_s, self.uptime.unknown_s, ())
        return DeviceAvailability(
            self.device_id, self.kind, self.location, self.online_now, self.last_seen, self.reported, uptime
        )


@dataclass(frozen=True, slots=True)
class GroupAvailability:
    """在线率 (online now / registered), 联网率 (reported in the window / registered), mean availability."""

    registered: int
    online_now: int
    reported: int
    mean_availability: float | None

    @property
    def online_rate(self) -> float | None:
        return self.online_now / self.registered if self.registered else None

    @property
    def networked_rate(self) -> float | None:
        return self.reported / self.registered if self.registered else None


def summarize(devices: Sequence[DeviceAvailability]) -> GroupAvailability:
    return GroupAvailability(
        registered=len(devices),
        online_now=sum(d.online_now for d in devices),
        reported=sum(d.reported for d in devices),
        mean_availability=mean_availability(d.uptime for d in devices),
    )


def by_kind(devices: Sequence[DeviceAvailability]) -> dict[str, GroupAvailability]:
    kinds: dict[str, list[DeviceAvailability]] = {}
    for device in devices:
        kinds.setdefault(device.kind, []).append(device)
    return {kind: summarize(group) for kind, group in sorted(kinds.items())}


def fleet_availability(
    devices: Iterable[DeviceSpec],
    status_of: Callable[[str], DeviceStatus | None],
    history: UptimeHistory,
    window: Span,
) -> list[DeviceAvailability]:
    """Every registered device over `window`, joined with its location and live state."""
    return list(each_availability(devices, status_of, history, window))


def each_availability(
    devices: Iterable[DeviceSpec],
    status_of: Callable[[str], DeviceStatus | None],
    history: UptimeHistory,
    window: Span,
) -> Iterator[DeviceAvailability]:
    """`fleet_availability` one device at a time, for a caller that need not keep every outage."""
    watched = RunningTime(history.running, window)
    for device in devices:
        status = status_of(device.id)
        last_seen = status.last_seen if status else None
        yield DeviceAvailability(
            device_id=device.id,
            kind=device.kind.value,
            location=device.location,
            online_now=bool(status and status.online),
            last_seen=last_seen,
            reported=last_seen is not None and last_seen >= window.start,
            uptime=device_uptime(history.transitions.get(device.id, ()), watched, window),
        )
