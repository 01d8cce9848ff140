"""DeadbandFilter: report-by-exception with a maximum interval, per (device, metric)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.deadband import Deadband, DeadbandFilter
from storage.sqlite import SqliteStore

BAND = {"temperature_c": Deadband(delta=0.5, max_interval_s=300)}


@pytest.mark.parametrize(
    ("samples", "kept"),
    [
        pytest.param([(0, 20.0)], [True], id="the first sample is kept"),
        pytest.param([(0, 20.0), (5, 20.4)], [True, False], id="inside the band: dropped"),
        pytest.param([(0, 20.0), (5, 20.5)], [True, False], id="exactly the band: dropped"),
        pytest.param([(0, 20.0), (5, 20.6)], [True, True], id="past the band: kept"),
        pytest.param([(0, 20.0), (5, 19.4)], [True, True], id="past the band downwards: kept"),
        pytest.param([(0, 20.0), (299, 20.0), (300, 20.0)], [True, False, True], id="max interval: kept"),
        pytest.param(
            [(0, 20.0), (5, 20.3), (10, 20.45), (15, 20.6)],
            [True, False, False, True],
            id="a slow drift is measured from the last kept sample",
        ),
        pytest.param(
            [(0, 20.0), (5, 20.6), (10, 20.9), (15, 21.2)],
            [True, True, False, True],
            id="the reference moves with each kept sample",
        ),
        pytest.param(
            [(100, 20.0), (50, 20.0), (105, 20.1)],
            [True, True, False],
            id="a late sample is kept and does not move the reference",
        ),
    ],
)
def test_deadband_decisions(samples: list[tuple[float, float]], kept: list[bool]) -> None:
    band = DeadbandFilter(BAND)
    assert [band.keep("t1", "temperature_c", ts, value) for ts, value in samples] == kept


def test_series_are_independent_and_metrics_without_a_band_are_all_kept() -> None:
    band = DeadbandFilter(BAND)
    rows = [
        ("t1", "temperature_c", 0.0, 20.0),
        ("t2", "temperature_c", 0.0, 20.1),  # another device: its own first sample
        ("t1", "temperature_c", 5.0, 20.1),
        ("t2", "temperature_c", 5.0, 20.1),
        ("t1", "humidity_pct", 5.0, 40.0),
        ("t1", "humidity_pct", 10.0, 40.0),
    ]
    assert band.filter(rows) == [rows[0], rows[1], rows[4], rows[5]]


def test_the_store_keeps_what_the_deadband_keeps(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", deadband=BAND)
    store.open()
    store.add_readings([("t1", "temperature_c", float(ts), 20.0 + 0.1 * (ts % 2)) for ts in range(0, 600, 5)])
    store.add_readings([("t1", "humidity_pct", float(ts), 40.0) for ts in range(0, 600, 5)])
    store.flush()
    assert [p["ts"] for p in store.readings("t1", "temperature_c", 0, 600)] == [0.0, 300.0]
    assert store.count("readings") == 2 + 120
    assert store.readings_deadbanded == 118
    store.close()
