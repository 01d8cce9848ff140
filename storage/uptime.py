"""What the uptime maths reads: device transitions and the gateway's running intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from analytics.uptime import Span, Transition, UptimeHistory, merge_spans

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def read_uptime_history(query: Query, window: Span, beat_interval_s: float) -> UptimeHistory:
    """Read through `query` (a store's reader, or a read-only connection's execute).

    A run's last heartbeat may be up to `beat_interval_s` old while it is still running: the
    newest run counts as running through `window.end` when its last beat is that recent.
    """
    transitions: dict[str, list[Transition]] = {}
    # SQLite returns the other columns of the row holding MAX(ts): the state at the window's start.
    before = query(
        "SELECT device_id, online, MAX(ts), reason FROM status_changes WHERE ts <= ? GROUP BY device_id",
        (window.start,),
    )
    inside = query(
        "SELECT device_id, online, ts, reason FROM status_changes WHERE ts > ? AND ts < ? ORDER BY ts, id",
        (window.start, window.end),
    )
    for device_id, online, ts, reason in [*before, *inside]:
        transitions.setdefault(device_id, []).append(Transition(ts, bool(online), reason))
    rows = query(
        "SELECT started_at, last_beat FROM gateway_runs WHERE last_beat >= ? AND started_at < ? "
        "ORDER BY started_at",
        (window.start, window.end),
    )
    runs = [Span(started_at, last_beat) for started_at, last_beat in rows]
    if runs and window.end - runs[-1].end <= beat_interval_s:
        runs[-1] = Span(runs[-1].start, window.end)
    return UptimeHistory(transitions, merge_spans(runs))
