"""The store's cache of recent transitions hands out exactly what `read_uptime_history` reads.

The API folds the cached history and the monthly report folds one read straight from SQLite,
both with `analytics.uptime.device_uptime`: while the two histories are equal, so are the figures.
Randomized: ties in time, rows arriving out of order and before the cache's horizon, gateway
gaps, windows sliding forward past the day after which old rows are pruned, windows too long.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from analytics.uptime import HEARTBEAT_S, Span, fleet_availability
from storage.operations import BeatGateway, InsertStatusChange
from storage.sqlite import SqliteStore
from storage.uptime import read_uptime_history

DAY = 86400.0
DEVICES = ["a", "b", "c"]
T0 = 1_700_000_000.0

# Times on a coarse grid, so ties (same device, same second) are common.
transition = st.tuples(
    st.sampled_from(DEVICES),
    st.integers(min_value=0, max_value=80).map(lambda half_days: T0 + half_days * DAY / 2),
    st.booleans(),
    st.sampled_from(["status", "silence", "3 failed polls: timeout"]),
)
step = st.tuples(
    st.lists(transition, max_size=12),  # rows written before the query
    st.integers(min_value=0, max_value=4),  # days the clock moves on
    st.sampled_from([DAY, 7 * DAY, 30 * DAY, 45 * DAY]),  # the window asked (45 d: past the cache)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.lists(transition, max_size=40),
    steps=st.lists(step, min_size=1, max_size=8),
    runs=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 10)), max_size=6),
)
def test_the_cached_history_is_the_database_history(
    first: list[tuple[str, float, bool, str]],
    steps: list[tuple[list[tuple[str, float, bool, str]], int, float]],
    runs: list[tuple[int, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "gw.db")
        store.open()
        try:
            for start_half_days, length_half_days in runs:
                started = T0 + start_half_days * DAY / 2
                store.write(BeatGateway(started, started + length_half_days * DAY / 2))
            now = T0 + 20 * DAY
            for rows, days_on, window_s in [(first, 0, 30 * DAY), *steps]:
                for device_id, ts, online, reason in rows:
                    store.write(InsertStatusChange(device_id, online, ts, reason))
                store.flush()
                now += days_on * DAY
                window = Span(now - window_s, now)
                cached = store.uptime_history(window, 3 * HEARTBEAT_S, DEVICES)
                read = read_uptime_history(store.query, window, 3 * HEARTBEAT_S, DEVICES)
                assert cached == read
        finally:
            store.close()


def test_a_fleet_answer_from_the_cache_equals_one_from_the_database(tmp_path: Path) -> None:
    """The figures themselves, end to end, with a transition arriving between two queries."""
    store = SqliteStore(tmp_path / "gw.db")
    store.open()
    specs = [DeviceSpec(id=device_id, kind=DeviceKind.SMOKE, building="A") for device_id in DEVICES]
    try:
        store.write(BeatGateway(T0, T0 + 40 * DAY))
        for n in range(200):
            store.write(InsertStatusChange(DEVICES[n % 3], n % 2 == 0, T0 + n * 3600.0 + n % 7, "silence"))
        store.flush()
        window = Span(T0 + 2 * DAY, T0 + 9 * DAY)
        for late in (None, InsertStatusChange("b", False, T0 + 5 * DAY + 1.5, "status")):
            if late is not None:
                store.write(late)
                store.flush()
            cached = store.uptime_history(window, 3 * HEARTBEAT_S, DEVICES)
            read = read_uptime_history(store.query, window, 3 * HEARTBEAT_S, DEVICES)
            assert fleet_availability(specs, lambda _: None, cached, window) == fleet_availability(
                specs, lambda _: None, read, window
            )
        assert any(change.ts == T0 + 5 * DAY + 1.5 for change in cached.transitions["b"])
    finally:
        store.close()
