"""What the uptime maths reads: device transitions and the gateway's running intervals."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from analytics.uptime import Span, Transition, UptimeHistory, merge_spans

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def last_transitions(query: Query, device_ids: Sequence[str], at: float) -> dict[str, Transition]:
    """Each device's last transition at or before `at` (its state then), found on its index."""
    rows = query(
        "SELECT s.device_id, s.ts, s.online, s.reason FROM json_each(?) AS d JOIN status_changes AS s "
        "ON s.id = (SELECT id FROM status_changes WHERE device_id = d.value AND ts <= ? "
        "ORDER BY ts DESC, id DESC LIMIT 1)",
        (json.dumps(list(device_ids)), at),
    )
    return {device_id: Transition(ts, online == 1, reason) for device_id, ts, online, reason in rows}


def read_uptime_history(
    query: Query, window: Span, beat_interval_s: float, device_ids: Sequence[str]
) -> UptimeHistory:
    """The history of `device_ids` over `window`, read through `query` (a store's reader, or a
    read-only connection's execute); `beat_interval_s` as in `read_running`.
    """
    transitions = {
        device_id: [change] for device_id, change in last_transitions(query, device_ids, window.start).items()
    }
    # Each device on its (device_id, ts) index: years of transitions are not scanned.
    inside = query(
        "SELECT s.device_id, s.ts, s.online, s.reason FROM json_each(?) AS d JOIN status_changes AS s "
        "ON s.device_id = d.value AND s.ts > ? AND s.ts < ?",
        (json.dumps(list(device_ids)), window.start, window.end),
    )
    for device_id, ts, online, reason in inside:
        transitions.setdefault(device_id, []).append(Transition(ts, online == 1, reason))
    for changes in transitions.values():
        changes.sort()  # in index order already, but for the one before the window: linear
    return UptimeHistory(transitions, read_running(query, window, beat_interval_s))


def read_running(query: Query, window: Span, beat_interval_s: float) -> list[Span]:
    """When the gateway ran during `window` (merged spans), from its heartbeat rows.

    A run's last heartbeat may be up to `beat_interval_s` old while it is still running: the
    newest run counts as running through `window.end` when its last beat is that recent.
    """
    runs = [
        Span(started_at, last_beat)
        for started_at, last_beat in query(
            "SELECT started_at, last_beat FROM gateway_runs WHERE last_beat >= ? AND started_at < ? "
            "ORDER BY started_at",
            (window.start, window.end),
        )
    ]
    if runs and window.end - runs[-1].end <= beat_interval_s:
        runs[-1] = Span(runs[-1].start, window.end)
    return merge_spans(runs)
