"""Forwarding benchmark (issue 14): live forwarding under full-speed ingest, and replay of a backlog.

Live: the ingest bench's QoS 1 drain (`bench/ingest.py` `throughput`: a backlog the broker holds,
the gateway against a bare paho subscriber) on one broker, with the InfluxDB sink off and on
(writing to a real VictoriaMetrics), alternated off, on, off, on, ... (`--pairs`): a shared
machine's load drifts over minutes, and each ratio is to a bare paho drain of the same run.
Printed: every run, the median ratio of each, the drop the sink causes (1 - on / off, target
<= 15 %), and per sink-on run the sink's rate and backlog (rows behind, sampled from the
database every 0.5 s: its peak while readings arrive, and when it reached zero after).

Replay: a store holding one hour of a 2,000 readings/s campus (1,000 temperature devices, two
metrics a second: 7.2 M rows across the chunk tables maintenance seals) forwarded to a fresh
VictoriaMetrics by the sink's own pass loop after an outage: the sink first runs with its
VictoriaMetrics not started, as long as it renders ahead into its spool (that time, the rows
rendered, their CPU and the spool's size are printed), then the server starts, and the replay's
clock runs from its return. Against a bare influxdb-client loop to another fresh
one in the same run: the same points, the same line protocol, the same batch size, the same
client and write call (one string a request). The bare loop's points are made in memory off the
clock; its clock runs while it formats and writes. Target: ours >= 0.8 x bare. The sink's rate cap
(`max_rows_per_s`) is raised out of the way here, and its reader thread runs at the bare loop's
priority: the figure is what the mechanism can do, the cap and the nice value what a site allows
it. The sink as shipped (reader niced, yielding to every other process on the machine) is run
too and printed beside it.

Usage: python bench/forwarding.py [--messages 200000] [--pairs 3] [--replay-rows 7200000] [--skip-live] [--skip-replay]
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from ingest import ThroughputResult, mosquitto, throughput

from analytics.devices import DeviceKind, DeviceSpec
from sinks.config import InfluxSinkConfig
from sinks.influx import READER_NICE, InfluxSink
from sinks.lines import LineEncoder
from storage.sqlite import SqliteStore
from tests.sinks.conftest import Victoria

REPLAY_DEVICES = 1000
READINGS = '{__name__=~"temperature_.+"}'
BATCH_ROWS = 5000
TARGET_LIVE_DROP = 0.15
TARGET_REPLAY_RATIO = 0.8
LINGER_S = 20.0  # the sink-on gateway runs on after its drain: the sink's catch-up is sampled


def fresh_victoria(workdir: Path, name: str) -> Victoria:
    server = Victoria(workdir / name / "data")
    server.data_dir.mkdir(parents=True)
    server.start()
    return server


# --- live -------------------------------------------------------------------------------------


class BacklogSampler:
    """Rows behind the sink's cursor, read from the gateway's database (read-only) every 0.5 s."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.samples: list[tuple[float, int, int]] = []  # (time, newest rowid, cursor)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1) as conn:
                    (newest,) = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM readings").fetchone()
                    row = conn.execute(
                        "SELECT value FROM meta WHERE key = 'forward/influx/readings'"
                    ).fetchone()
                    self.samples.append((time.monotonic(), newest, int(row[0]) if row else 0))
            except sqlite3.Error:
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def sink_figures(samples: list[tuple[float, int, int]]) -> str:
    """The sink's rate and backlog peak while readings arrive, and how long after it caught up."""
    # While readings arrive (the newest rowid grows): the backlog's peak, and the sink's rate.
    arriving = [s for before, s in itertools.pairwise(samples) if s[1] > before[1]]
    if len(arriving) < 2:
        return "sink: too few samples"
    peak = max(newest - cursor for _, newest, cursor in arriving)
    span_s = arriving[-1][0] - arriving[0][0]
    sink_rate = (arriving[-1][2] - arriving[0][2]) / span_s
    ingest_rate = (arriving[-1][1] - arriving[0][1]) / span_s
    caught_up = next(
        (t for t, newest, cursor in samples if t > arriving[-1][0] and cursor >= newest - 1), None
    )
    after = (
        "not within the run"
        if caught_up is None
        else f"{caught_up - arriving[-1][0]:.1f} s after the last reading"
    )
    return (
        f"stored {ingest_rate:,.0f} readings/s, the sink forwarded {sink_rate:,.0f} rows/s; "
        f"backlog peak {peak:,} rows, caught up {after}"
    )


def cpu_seconds(server: Victoria) -> float:
    assert server.process is not None
    times = psutil.Process(server.process.pid).cpu_times()
    return float(times.user + times.system)


def cpu_us(result: ThroughputResult) -> float:
    """The gateway process's CPU from its start to the end of its drain, per message: unlike
    the rates, barely moved by the machine's load."""
    return result.gateway_cpu_s / result.processed * 1e6


def live(workdir: Path, messages: int, pairs: int) -> bool:
    server = fresh_victoria(workdir, "live-vm")
    sink = {"sinks": {"influx": {"url": server.url, "bucket": "bench", "org": "bench"}}}
    ratios: dict[str, list[float]] = {"off": [], "on": []}
    try:
        with mosquitto(workdir) as (port, _):
            for n in range(1, pairs + 1):
                off = throughput(workdir, port, 1, 1000, messages, 0, name=f"sink-off-{n}")
                ratios["off"].append(off.ratio)
                print(
                    f"  run {n} sink off: {off.gateway_rate:,.0f} msg/s, ratio to bare paho {off.ratio:.2f}; "
                    f"gateway CPU {cpu_us(off):.0f} us a message",
                    flush=True,
                )
                sampler = BacklogSampler(workdir / f"sink-on-{n}.db")
                vm_cpu_s = cpu_seconds(server)
                on = throughput(
                    workdir,
                    port,
                    1,
                    1000,
                    messages,
                    0,
                    extra_config=sink,
                    name=f"sink-on-{n}",
                    linger_s=LINGER_S,
                )
                sampler.stop()
                vm_cpu_s = cpu_seconds(server) - vm_cpu_s
                ratios["on"].append(on.ratio)
                print(
                    f"  run {n} sink on:  {on.gateway_rate:,.0f} msg/s, ratio to bare paho {on.ratio:.2f}; "
                    f"gateway CPU {cpu_us(on):.0f} us a message; "
                    f"{sink_figures(sampler.samples)}; VictoriaMetrics (on these cores too) used "
                    f"{vm_cpu_s:.1f} CPU-s",
                    flush=True,
                )
    finally:
        server.stop()
    off_ratio, on_ratio = statistics.median(ratios["off"]), statistics.median(ratios["on"])
    drop = 1 - on_ratio / off_ratio
    print(
        f"live, QoS 1, {messages:,} messages ({2 * messages:,} readings) a run, {pairs} runs each, alternated:\n"
        f"  sink off: median ratio to bare paho {off_ratio:.2f} ({', '.join(f'{r:.2f}' for r in ratios['off'])})\n"
        f"  sink on:  median ratio to bare paho {on_ratio:.2f} ({', '.join(f'{r:.2f}' for r in ratios['on'])})\n"
        f"  drop {drop:.1%} (target <= {TARGET_LIVE_DROP:.0%})",
        flush=True,
    )
    return drop <= TARGET_LIVE_DROP


# --- replay -----------------------------------------------------------------------------------


def devices() -> list[DeviceSpec]:
    return [
        DeviceSpec(id=f"r{n:04d}", kind=DeviceKind.TEMPERATURE, building=f"B{n % 10}", zone=f"room-{n}")
        for n in range(REPLAY_DEVICES)
    ]


def campus_rows(rows: int, start_ts: float) -> Iterator[list[tuple[str, str, float, float]]]:
    """A second of the campus at a time: every device's temperature and humidity."""
    second = 0
    produced = 0
    while produced < rows:
        ts = start_ts + second
        block = []
        for n in range(REPLAY_DEVICES):
            block += [
                (f"r{n:04d}", "temperature_c", ts, 20.0 + (n + second) % 50 / 10),
                (f"r{n:04d}", "humidity_pct", ts, 45.0),
            ]
        block = block[: rows - produced]
        produced += len(block)
        second += 1
        yield block


def build_store(path: Path, rows: int, start_ts: float) -> SqliteStore:
    store = SqliteStore(path, retention_days=3650)
    store.open()
    started = time.perf_counter()
    pending: list[tuple[str, str, float, float]] = []
    written = 0
    for block in campus_rows(rows, start_ts):
        pending += block
        if len(pending) >= 50_000:
            store.add_readings(pending)
            written += len(pending)
            pending = []
            if written % 1_000_000 < 50_000:
                store.maintain(time.time())  # seals full chunks, as the scheduler does
    if pending:
        store.add_readings(pending)
    store.flush(timeout_s=600)
    store.maintain(time.time())
    chunks = store.query("SELECT COUNT(*) FROM reading_chunks")[0][0]
    print(
        f"  store built: {rows:,} rows in {chunks} chunk tables in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return store


def bare_loop(url: str, rows: int, start_ts: float) -> float:
    """Seconds a plain influxdb-client loop takes to format and write the replay's points.

    Per request the same as the sink's: `BATCH_ROWS` readings (two a point), one line per point
    in the encoder's measurement and tags, values as repr() prints them, one string a write.
    """
    client = InfluxDBClient(url=url, token="", org="bench", timeout=30_000)
    write = client.write_api(write_options=SYNCHRONOUS)
    prefixes = LineEncoder("bare", devices(), "ms").reading_format().prefixes
    clock_s = 0.0
    points: list[tuple[str, float, float, float]] = []
    blocks = campus_rows(rows, start_ts)
    while True:
        # Off the clock: the points, as a replay would find them in memory.
        while len(points) < BATCH_ROWS // 2 and (block := next(blocks, None)) is not None:
            points += [
                (device, ts, value, humidity)
                for (device, _, ts, value), (_, _, _, humidity) in zip(block[::2], block[1::2], strict=True)
            ]
        if not points:
            break
        batch, points = points[: BATCH_ROWS // 2], points[BATCH_ROWS // 2 :]
        started = time.perf_counter()
        body = "\n".join(
            f"{prefixes[device]} temperature_c={value!r},humidity_pct={humidity!r} {int(ts * 1000 + 0.5)}"
            for device, ts, value, humidity in batch
        )
        write.write(bucket="bench", org="bench", record=body, write_precision="ms")  # type: ignore[arg-type]
        clock_s += time.perf_counter() - started
    client.close()  # type: ignore[no-untyped-call]
    return clock_s


@dataclass
class Forwarded:
    replay_s: float  # from the TSDB's return to the last batch accepted
    stored: int  # samples VictoriaMetrics holds after
    outage_s: float  # the outage before it: the sink away from its TSDB, rendering ahead
    rendered_rows: int
    render_s: float
    render_cpu_s: float
    spool_bytes: int  # the spool's size at the TSDB's return


def forward_all(workdir: Path, store: SqliteStore, name: str, reader_nice: int) -> Forwarded:
    """An outage, then the replay: the sink runs with its VictoriaMetrics (fresh) not there yet,
    as long as it renders ahead into its spool; then the server starts, and the clock runs from
    its return until the sink has forwarded the whole store. The cursor is reset first, so each
    run sends everything."""
    store.transact(lambda conn: conn.execute("DELETE FROM meta WHERE key LIKE 'forward/%'"))
    server = Victoria(workdir / name / "data")
    server.data_dir.mkdir(parents=True)
    try:
        config = InfluxSinkConfig(
            url=server.url, bucket="bench", org="bench", batch_rows=BATCH_ROWS, max_rows_per_s=1e9
        )
        sink = InfluxSink(
            config, store, LineEncoder("ours", devices(), config.precision), reader_nice=reader_nice
        )
        outage_started = time.perf_counter()
        sink.step()  # the server is away: the write fails, and the sink renders ahead while it waits
        assert sink.stats.retries == 1, sink.stats.last_error
        while sink.spooling:
            time.sleep(0.1)
        outage_s = time.perf_counter() - outage_started
        spool_bytes = sink.stats.spool_bytes
        server.start()
        started = time.perf_counter()  # the TSDB is back; the sink's next pass (its retry) is now
        while sink.step() < config.poll_interval_s or sink.stats.backlog.rows_behind:
            if sink.stats.retries > 1:
                raise RuntimeError(sink.stats.last_error)
        replay_s = time.perf_counter() - started
        sink.close()  # the cursor's last commit
        stats = sink.stats
        return Forwarded(
            replay_s,
            server.count(READINGS),
            outage_s,
            stats.spool_rendered_rows,
            stats.spool_render_s,
            stats.spool_render_cpu_s,
            spool_bytes,
        )
    finally:
        server.stop()


def outage_figures(run: Forwarded) -> str:
    return (
        f"before it, the outage ({run.outage_s:.1f} s): {run.rendered_rows:,} rows rendered ahead in "
        f"{run.render_s:.1f} s, {run.render_cpu_s:.1f} CPU-s, a {run.spool_bytes / 2**20:,.0f} MiB spool"
    )


def replay(workdir: Path, rows: int) -> bool:
    start_ts = time.time() - rows / (2 * REPLAY_DEVICES) - 60
    store = build_store(workdir / "replay.db", rows, start_ts)
    try:
        # The mechanism at the bare loop's priority first, then the bare loop, then as shipped.
        ours = forward_all(workdir, store, "ours-vm", reader_nice=0)
        bare_vm = fresh_victoria(workdir, "bare-vm")
        try:
            bare_s = bare_loop(bare_vm.url, rows, start_ts)
            bare_stored = bare_vm.count(READINGS)
        finally:
            bare_vm.stop()
        niced = forward_all(workdir, store, "niced-vm", reader_nice=READER_NICE)
    finally:
        store.close()
    ratio = bare_s / ours.replay_s
    print(
        f"replay of {rows:,} readings ({rows // (2 * REPLAY_DEVICES):,} s of a {2 * REPLAY_DEVICES:,} readings/s campus), "
        f"timed from the TSDB's return:\n"
        f"  ours: {ours.replay_s:.1f} s, {rows / ours.replay_s:,.0f} rows/s; VictoriaMetrics holds {ours.stored:,} samples\n"
        f"    {outage_figures(ours)}\n"
        f"  bare influxdb-client loop: {bare_s:.1f} s, {rows / bare_s:,.0f} rows/s; holds {bare_stored:,}\n"
        f"  ours / bare = {ratio:.2f} (target >= {TARGET_REPLAY_RATIO})\n"
        f"  ours as shipped (reader at nice +{READER_NICE}, yielding to every other process too): {niced.replay_s:.1f} s, "
        f"{rows / niced.replay_s:,.0f} rows/s, / bare = {bare_s / niced.replay_s:.2f}; holds {niced.stored:,}\n"
        f"    {outage_figures(niced)}",
        flush=True,
    )
    return ratio >= TARGET_REPLAY_RATIO and ours.stored == rows == bare_stored == niced.stored


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--pairs", type=int, default=3, help="sink-off and sink-on runs, alternated")
    parser.add_argument("--replay-rows", type=int, default=7_200_000)
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-replay", action="store_true")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-forwarding-") as tmp:
        workdir = Path(tmp)
        if not args.skip_live:
            ok = live(workdir, args.messages, args.pairs) and ok
        if not args.skip_replay:
            ok = replay(workdir, args.replay_rows) and ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
