"""Uptime query benchmark: `GET /api/v1/uptime`'s work for 1,000 devices over a year of intervals.

The database holds what a gateway keeps after a year (status_changes are never pruned): per
device, outages at a realistic flap rate (90 % of devices about one outage every two days, 9 %
five a day, 1 % flaky at fifty a day; outage length exponential, mean 10 minutes), and the
gateway's own runs (a restart about once a week, down 1-60 minutes). Built directly in SQLite
through the gateway's own migrations, cached under `--cache`.

Each iteration does what the handler does off the event loop (`api.uptime.uptime_json`): read
the history through the store (its cache of the last month of transitions, caught up with the
database at every query), fold it, build and serialize the response. Reported per window: the
first query (the very first loads the store's cache), then median, p99, max.

Usage: python bench/uptime_query.py [--devices 1000] [--days 365] [--iterations 100] [--cache DIR]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from analytics.device_tracker import DeviceStatus
from analytics.devices import DeviceSpec, Inventory
from analytics.records import DeviceKind
from analytics.uptime import WINDOWS_S
from api.uptime import uptime_json
from storage.schema import migrate
from storage.sqlite import SqliteStore

DAY = 86400.0
KINDS = list(DeviceKind)


def flap_rate_per_day(rng: random.Random) -> float:
    draw = rng.random()
    return 50.0 if draw < 0.01 else 5.0 if draw < 0.10 else 0.5


def build(path: Path, devices: int, days: float, now: float, seed: int = 13) -> int:
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    migrate(conn)
    conn.execute("PRAGMA journal_mode=OFF")
    start = now - days * DAY
    rows: list[tuple[str, int, float, str]] = []
    for n in range(devices):
        device_id = f"dev-{n:04d}"
        rate = flap_rate_per_day(rng)
        ts = start + rng.uniform(0, 600)
        rows.append((device_id, 1, ts, "status"))
        while True:
            ts += rng.expovariate(rate / DAY)
            if ts >= now:
                break
            rows.append((device_id, 0, ts, rng.choice(("status", "silence", "3 failed polls: timeout"))))
            ts += rng.expovariate(1 / 600)
            if ts >= now:
                break
            rows.append((device_id, 1, ts, "data"))
    rows.sort(key=lambda row: row[2])
    conn.executemany("INSERT INTO status_changes (device_id, online, ts, reason) VALUES (?, ?, ?, ?)", rows)
    runs, run_start = [], start - 60
    while run_start < now:
        run_end = min(now, run_start + rng.expovariate(1 / (7 * DAY)))
        runs.append((run_start, run_end))
        run_start = run_end + rng.uniform(60, 3600)
    conn.executemany("INSERT INTO gateway_runs (started_at, last_beat) VALUES (?, ?)", runs)
    conn.commit()
    conn.close()
    return len(rows)


def one_query(ctx: Any, specs: list[DeviceSpec], window: str, now: float) -> int:
    statuses = {spec.id: DeviceStatus(spec.id, spec.kind.value, True, now - 5) for spec in specs}
    return len(uptime_json(ctx, statuses, window, now))


def _figures(timings_ms: list[float]) -> str:
    ordered = sorted(timings_ms)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"median {statistics.median(ordered):.0f} ms, p99 {p99:.0f} ms, max {ordered[-1]:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/uptime-bench"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    now = 1_800_000_000.0  # the database's "now", so the cached file stays valid
    db = args.cache / f"uptime-{args.devices}-{args.days:g}d.db"
    if not db.exists():
        started = time.perf_counter()
        rows = build(db.with_suffix(".tmp"), args.devices, args.days, now)
        db.with_suffix(".tmp").rename(db)
        print(f"built {db}: {rows:,} status_changes rows in {time.perf_counter() - started:.1f} s")
    store = SqliteStore(db)
    store.open()
    try:
        (rows,) = store.query("SELECT COUNT(*) FROM status_changes")[0]
        (runs,) = store.query("SELECT COUNT(*) FROM gateway_runs")[0]
        print(f"{args.devices} devices, {rows:,} transitions over {args.days:g} days, {runs} gateway runs")
        specs = [
            DeviceSpec(id=f"dev-{n:04d}", kind=KINDS[n % len(KINDS)], building=f"B{n % 7}")
            for n in range(args.devices)
        ]
        # What uptime_json reads of the API context: the store, the inventory, the campus.
        ctx = SimpleNamespace(
            store=store, inventory=Inventory(specs), campus_id="bench", campus_name="bench", tickets=None
        )
        for label, window_s in WINDOWS_S.items():
            (in_window,) = store.query("SELECT COUNT(*) FROM status_changes WHERE ts > ?", (now - window_s,))[
                0
            ]
            started = time.perf_counter()
            one_query(ctx, specs, label, now)  # warms the page cache (and, the first, the store's)
            first_ms = 1000 * (time.perf_counter() - started)
            wall_ms: list[float] = []
            cpu_ms: list[float] = []
            size = 0
            for _ in range(args.iterations):
                started, cpu_started = time.perf_counter(), time.thread_time()
                size = one_query(ctx, specs, label, now)
                cpu_ms.append(1000 * (time.thread_time() - cpu_started))
                wall_ms.append(1000 * (time.perf_counter() - started))
            # CPU time of the querying thread as well: on a shared machine, wall time is mostly waiting.
            print(
                f"window {label:>3}: {in_window:>7,} transitions in window, response {size / 1e6:.2f} MB; "
                f"first {first_ms:.0f} ms; wall {_figures(wall_ms)}; cpu {_figures(cpu_ms)} ({args.iterations} runs)"
            )
    finally:
        store.close()


if __name__ == "__main__":
    main()
