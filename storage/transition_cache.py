"""The last month of device transitions kept in memory, so an uptime query does not re-read them.

A 30-day answer for 1,000 devices folds some 80,000 transitions, and reading them from SQLite
and building them in Python cost more than the maths. status_changes rows are only appended
(one writer, so ids rise in commit order; nothing prunes them), so at every query the cache
reads the rows past the last id it holds, in the same snapshot as the gateway's runs: it is
never behind the database. The history it hands out is the one `read_uptime_history` reads
(tests/uptime/test_transition_cache.py holds the two together).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from analytics.uptime import Span, Transition, UptimeHistory
from storage.uptime import read_running, read_uptime_history

T = TypeVar("T")
Read = Callable[[Callable[[sqlite3.Connection], T]], T]
Row = tuple[int, str, float, int, str]  # id, device_id, ts, online, reason

_COLUMNS = "id, device_id, ts, online, reason"


class _DeviceTransitions:
    """One device's transitions in `Transition` order (ts, online, cause), with their row ids."""

    __slots__ = ("ids", "rows", "ts")

    def __init__(self) -> None:
        self.rows: list[Transition] = []
        self.ts: list[float] = []
        self.ids: list[int] = []

    def add(self, row_id: int, change: Transition) -> None:
        if not self.rows or change >= self.rows[-1]:
            index = len(self.rows)  # nearly always: rows arrive in time order
        else:
            index = bisect_right(self.rows, change)
        self.rows.insert(index, change)
        self.ts.insert(index, change.ts)
        self.ids.insert(index, row_id)

    def _last_at_or_before(self, ts: float) -> int | None:
        """The index of the row `read_uptime_history` takes as the state at `ts`: the latest at
        or before it, the highest id among equal times."""
        after = bisect_right(self.ts, ts)
        if after == 0:
            return None
        tied = range(bisect_left(self.ts, self.ts[after - 1]), after)
        return max(tied, key=self.ids.__getitem__)

    def within(self, window: Span) -> list[Transition]:
        """The state at the window's start, then every transition inside it."""
        before = self._last_at_or_before(window.start)
        inside = self.rows[bisect_right(self.ts, window.start) : bisect_left(self.ts, window.end)]
        return inside if before is None else [self.rows[before], *inside]

    def prune(self, horizon: float) -> None:
        """Forget rows before the one giving the state at `horizon` (and rows tied with it)."""
        before = self._last_at_or_before(horizon)
        if before is not None:
            keep = bisect_left(self.ts, self.ts[before])
            del self.rows[:keep], self.ts[:keep], self.ids[:keep]


class TransitionCache:
    """Every device's transitions from `span_s` (plus a day) before the latest query on, kept in
    step with status_changes; windows reaching further back are read from the database."""

    def __init__(self, span_s: float, slack_s: float = 86400.0) -> None:
        self._span_s = span_s
        self._slack_s = slack_s
        self._lock = threading.Lock()  # the API's worker threads and the metrics scrape share it
        self._clear()

    def _clear(self) -> None:
        self._devices: dict[str, _DeviceTransitions] = {}
        self._last_id = -1  # nothing loaded
        self._horizon = float("inf")

    def history(
        self, read: Read[UptimeHistory], window: Span, beat_interval_s: float, device_ids: Sequence[str]
    ) -> UptimeHistory:
        """What `read_uptime_history` reads for `window`, through a read connection from `read`."""
        with self._lock:
            return read(lambda conn: self._history(conn, window, beat_interval_s, device_ids))

    def reset(self) -> None:
        """Forget everything (the database file may have been replaced)."""
        with self._lock:
            self._clear()

    def _history(
        self, conn: sqlite3.Connection, window: Span, beat_interval_s: float, device_ids: Sequence[str]
    ) -> UptimeHistory:
        def query(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        conn.execute("BEGIN")  # one snapshot: the rows caught up with and the gateway's runs
        try:
            self._catch_up(conn, window.end)
            if window.start < self._horizon:  # longer than the cache holds
                return read_uptime_history(query, window, beat_interval_s, device_ids)
            transitions = {}
            for device_id in device_ids:
                device = self._devices.get(device_id)
                if device is not None and (changes := device.within(window)):
                    transitions[device_id] = changes
            return UptimeHistory(transitions, read_running(query, window, beat_interval_s))
        finally:
            conn.execute("COMMIT")

    def _catch_up(self, conn: sqlite3.Connection, now: float) -> None:
        """Bring the cache up to the snapshot, holding at least `span_s` before `now`."""
        (last_id,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM status_changes").fetchone()
        wanted_horizon = now - self._span_s - self._slack_s
        if last_id < self._last_id or self._last_id < 0 or wanted_horizon < self._horizon:
            self._load(conn, wanted_horizon, last_id)
        elif last_id > self._last_id:
            self._add(conn.execute(f"SELECT {_COLUMNS} FROM status_changes WHERE id > ?", (self._last_id,)))
            self._last_id = last_id
        if wanted_horizon - self._horizon > self._slack_s:  # a day's rows have aged out: drop them
            for device in self._devices.values():
                device.prune(wanted_horizon)
            self._horizon = wanted_horizon

    def _load(self, conn: sqlite3.Connection, horizon: float, last_id: int) -> None:
        self._clear()
        # The rows after the horizon, and each device's rows at its last time at or before it.
        self._add(
            conn.execute(
                f"SELECT {_COLUMNS} FROM status_changes WHERE ts > :h "
                f"UNION ALL SELECT s.{_COLUMNS.replace(', ', ', s.')} FROM "
                "(SELECT device_id, MAX(ts) AS m FROM status_changes WHERE ts <= :h GROUP BY device_id) "
                "AS b JOIN status_changes AS s ON s.device_id = b.device_id AND s.ts = b.m ORDER BY ts",
                {"h": horizon},
            )
        )
        self._last_id = last_id
        self._horizon = horizon

    def _add(self, rows: Iterable[Row]) -> None:
        devices = self._devices
        for row_id, device_id, ts, online, reason in rows:
            device = devices.get(device_id)
            if device is None:
                device = devices[device_id] = _DeviceTransitions()
            # A few distinct causes repeat across thousands of rows: one string each.
            device.add(row_id, Transition(ts, online == 1, sys.intern(reason)))
