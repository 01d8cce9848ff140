"""Readings queries: the tier each step and age reads, checked against a brute force over the raw rows."""

from __future__ import annotations

import math
import random

import pytest

from storage.queries import Segment, Tier, plan
from storage.sqlite import SqliteStore
from tests.storage.test_history import brute_force

DAY = 86400.0
H = 3600.0


@pytest.mark.parametrize(
    ("step_s", "horizons", "expected"),
    [
        pytest.param(30, {}, [(Tier.RAW, 0, 10 * H, 30)], id="seconds read raw"),
        pytest.param(90, {}, [(Tier.RAW, 0, 10 * H, 90)], id="not whole minutes: raw"),
        pytest.param(60, {}, [(Tier.MINUTE, 0, 10 * H, 60)], id="minutes read 1m"),
        pytest.param(300, {}, [(Tier.MINUTE, 0, 10 * H, 300)], id="5 minutes read 1m"),
        pytest.param(3600, {}, [(Tier.HOUR, 0, 10 * H, 3600)], id="hours read 1h"),
        pytest.param(7200, {Tier.HOUR: 0.0}, [(Tier.HOUR, 0, 10 * H, 7200)], id="2 hours read 1h"),
        pytest.param(
            60,
            {Tier.MINUTE: 4.5 * H, Tier.HOUR: 0.0},
            [(Tier.HOUR, 0, 5 * H, 3600), (Tier.MINUTE, 5 * H, 10 * H, 60)],
            id="older than 1m holds: 1h up to the next hour past its horizon",
        ),
        pytest.param(
            30,
            {Tier.RAW: 8.25 * H, Tier.MINUTE: 4.5 * H, Tier.HOUR: 0.0},
            [
                (Tier.HOUR, 0, 5 * H, 3600),
                (Tier.MINUTE, 5 * H, 8.25 * H, 60),
                (Tier.RAW, 8.25 * H, 10 * H, 30),
            ],
            id="raw, then 1m, then 1h as the window goes back",
        ),
        pytest.param(60, {Tier.MINUTE: 12 * H}, [(Tier.HOUR, 0, 10 * H, 3600)], id="all past 1m: 1h only"),
        pytest.param(3600, {Tier.HOUR: 2 * H}, [(Tier.HOUR, 0, 10 * H, 3600)], id="1h is the last tier"),
    ],
)
def test_plan_chooses_tiers_by_step_and_age(
    step_s: float, horizons: dict[Tier, float | None], expected: list[tuple[Tier, float, float, float]]
) -> None:
    assert plan(step_s, 0.0, 10 * H, horizons) == [Segment(*segment) for segment in expected]


NOW = 1_800_000_000.0 // 3600 * 3600  # on the hour, so windows below are bucket-aligned
SERIES = ("t1", "temperature_c")


@pytest.fixture(scope="module")
def history(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[SqliteStore, list[tuple[str, str, float, float]]]:
    """Five days of one series (and a neighbour) every ~2 min; raw kept 1 day, 1m 2 days, 1h 30.

    The last hour is added after the last pass, so queries must merge raw rows not rolled up.
    """
    store = SqliteStore(
        tmp_path_factory.mktemp("q") / "s.db",
        retention_days=1,
        rollup_retention_days=2,
        rollup_1h_retention_days=30,
    )
    store.open()
    rng = random.Random(3)
    rows = []
    ts = NOW - 5 * DAY
    while ts < NOW:
        rows.append((*SERIES, ts, rng.uniform(10, 30)))
        rows.append(("t2", "temperature_c", ts, 99.0))
        ts += rng.uniform(30, 200)
    rng.shuffle(rows[-200:])  # late arrivals
    rolled = [row for row in rows if row[2] < NOW - H]
    for part in range(0, len(rolled), 1000):
        store.add_readings(rolled[part : part + 1000])
        store.maintain(NOW - H)
    store.maintain(NOW - H)  # the sweeps see the rollups the passes wrote
    store.add_readings([row for row in rows if row[2] >= NOW - H])
    store.flush()
    return store, [row for row in rows if row[:2] == SERIES]


def expected(
    rows: list[tuple[str, str, float, float]], since: float, until: float, size: int
) -> list[dict[str, float]]:
    buckets = brute_force([row for row in rows if since <= row[2] < until], size)
    return [
        {"ts": float(bucket * size), "min": low, "max": high, "avg": avg, "last": last}
        for (_, _, bucket), (low, high, avg, last, _) in sorted(buckets.items())
    ]


@pytest.mark.parametrize(
    ("age_h", "step_s", "segments"),
    [
        pytest.param(2, 30, [(0, 2, 30)], id="raw, 30 s, with the rows not rolled up"),
        pytest.param(20, 60, [(0, 20, 60)], id="1m, an hour not rolled up"),
        pytest.param(20, 300, [(0, 20, 300)], id="1m, 5 min"),
        pytest.param(60, 60, [(0, 12, 3600), (12, 60, 60)], id="older than 1m: 1h in its buckets"),
        pytest.param(100, 3600, [(0, 100, 3600)], id="1h, days back"),
    ],
)
def test_stepped_queries_equal_a_brute_force_over_the_raw_rows(
    history: tuple[SqliteStore, list[tuple[str, str, float, float]]],
    age_h: float,
    step_s: float,
    segments: list[tuple[float, float, int]],
) -> None:
    store, rows = history
    since, until = NOW - age_h * H, NOW - age_h * H + 24 * H
    points = store.readings(*SERIES, since, until, step_s)
    want: list[dict[str, float]] = []
    for start_h, end_h, size in segments:  # hours from `since` each tier answers, in its buckets
        want += expected(rows, since + start_h * H, min(until, since + end_h * H), size)
    assert [p["ts"] for p in points] == [p["ts"] for p in want]
    assert points == [pytest.approx(p) for p in want]


def test_stepped_queries_older_than_raw_read_1m_in_its_buckets(
    history: tuple[SqliteStore, list[tuple[str, str, float, float]]],
) -> None:
    store, rows = history
    # Retention deleted by arrival up to the first row younger than a day at the last pass.
    raw_horizon = next(ts for _, _, ts, _ in rows if ts >= NOW - H - DAY)
    boundary = math.ceil(raw_horizon / 60) * 60
    since, until = NOW - 30 * H, NOW - 6 * H
    want = expected(rows, since, boundary, 60) + expected(rows, boundary, until, 30)
    points = store.readings(*SERIES, since, until, 30)
    assert [p["ts"] for p in points] == [p["ts"] for p in want]
    assert points == [pytest.approx(p) for p in want]


def test_raw_queries_read_the_raw_rows(
    history: tuple[SqliteStore, list[tuple[str, str, float, float]]],
) -> None:
    store, rows = history
    since = NOW - 3 * H
    points = store.readings(*SERIES, since, NOW, limit=50)
    assert points == [{"ts": ts, "value": v} for _, _, ts, v in sorted(r for r in rows if r[2] >= since)][:50]
