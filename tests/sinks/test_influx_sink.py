"""The InfluxDB sink against a real VictoriaMetrics: exact series and points, outages, refusals,
retention, and the order it sends in."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from analytics.alerts import Alert, Severity
from analytics.devices import DeviceKind, DeviceSpec
from gateway.counters import Counters
from sinks.config import InfluxSinkConfig
from sinks.influx import READER_NICE, InfluxSink, InfluxWriter
from sinks.lines import LineEncoder
from storage.forwarding import ForwardCursor, ReadingLines, read_batch
from storage.operations import Transaction
from storage.sqlite import SqliteStore
from tests.sinks.conftest import Victoria

CAMPUS = "c1"
DEVICES = [
    DeviceSpec(id=f"t{n}", kind=DeviceKind.TEMPERATURE, building="B1", zone=f"room {n}") for n in range(4)
] + [DeviceSpec(id="s0", kind=DeviceKind.SMOKE, building="B2")]


def make_sink(
    store: SqliteStore, url: str, counters: Counters | None = None, batch_rows: int = 500, **overrides: object
) -> InfluxSink:
    config = InfluxSinkConfig(
        url=url,
        org="district",
        bucket="campus",
        batch_rows=batch_rows,
        retry_base_s=0.05,
        retry_max_s=0.2,
        poll_interval_s=0.05,
        **overrides,  # type: ignore[arg-type]
    )
    return InfluxSink(
        config,
        store,
        LineEncoder(CAMPUS, DEVICES, config.precision),
        (counters or Counters()).inc,
        rng=random.Random(1),
    )


def add_readings(store: SqliteStore, count: int, start_ts: float) -> None:
    """`count` messages of the four temperature devices, two metrics each (one point of two fields)."""
    rows = []
    for n in range(count):
        ts = start_ts + n * 0.01
        rows += [(f"t{n % 4}", "temperature_c", ts, 20.0 + n % 10), (f"t{n % 4}", "humidity_pct", ts, 40.0)]
    store.add_readings(rows)
    store.flush()


def records(bodies: list[str]) -> list[str]:
    """The lines of records in these requests, without the sink's own `gateway_sink` status lines."""
    return [line for body in bodies for line in body.split("\n") if not line.startswith("gateway_sink,")]


def drain(sink: InfluxSink, timeout_s: float = 60.0) -> None:
    """Step until a pass finds nothing more to send."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        delay_s = sink.step()
        if delay_s == sink.config.poll_interval_s and sink.stats.backlog.rows_behind == 0:
            sink.flush()  # the cursor's last move committed
            return
        time.sleep(min(delay_s, 0.2))
    raise AssertionError(f"sink did not catch up: {sink.health()}")


def test_forwards_readings_events_and_alert_changes_as_exact_series_and_points(
    store: SqliteStore, victoria: Victoria
) -> None:
    now = time.time()
    add_readings(store, 2000, now - 100)
    store.add_event("s0", "smoke", "alarm", now - 5, {"zone": "x"})
    store.add_event("s0", "smoke", "alarm_clear", now - 4, {})
    alert = Alert(1, "fire_alarm", "s0", "s0", Severity.CRITICAL, True, now - 5, now - 5)
    store.save_alert(alert)
    store.audit(now - 5, "system", "alert", "1", "raised", "")
    store.audit(now - 3, "operator-1", "alert", "1", "acknowledged", "")
    store.audit(now - 3, "operator-1", "ticket", "7", "created", "")  # not an alert change
    store.flush()
    counters = Counters()
    sink = make_sink(store, victoria.url, counters)
    drain(sink)

    # 4 devices x 2 metrics; 2,000 points of two fields, each field a series in VictoriaMetrics.
    assert victoria.points('{__name__=~"temperature_.+"}') == (8, 4000)
    assert victoria.count('{__name__=~"temperature_.+"}') == 4000  # as the server counts, deduplicated
    (series,) = victoria.export('{__name__="temperature_temperature_c", device="t1"}')
    assert series["metric"] == {
        "__name__": "temperature_temperature_c",
        "campus": CAMPUS,
        "device": "t1",
        "building": "B1",
        "zone": "room 1",
    }
    assert victoria.points('{__name__="device_event_count"}') == (2, 2)
    assert victoria.points('{__name__="alert_change_alert_id"}') == (2, 2)
    assert sink.stats.rows_sent == 4000 + 2 + 2
    # Each request also says how far behind the campus is, in the TSDB itself.
    (status,) = victoria.export('{__name__="gateway_sink_rows_behind"}')
    assert status["metric"] == {"__name__": "gateway_sink_rows_behind", "campus": CAMPUS}
    assert counters.get("sink_rows_sent", "influx") == 4004
    health = sink.health()
    assert (health["rows_behind"], health["oldest_unsent_age_s"]) == (0, None)
    # The cursor is persisted: a new sink (a restart) sends nothing again.
    again = make_sink(store, victoria.url)
    drain(again)
    assert again.stats.rows_sent == 0


def test_outage_replays_in_order_and_every_point_once(store: SqliteStore, victoria: Victoria) -> None:
    now = time.time()
    add_readings(store, 300, now - 600)
    sent: list[str] = []
    writer = InfluxWriter(make_sink(store, victoria.url).config)

    def recording(body: str) -> None:
        writer.write(body)
        sent.append(body)

    sink = make_sink(store, victoria.url, batch_rows=100)
    sink._write = recording
    drain(sink)
    victoria.stop()
    add_readings(store, 1000, now - 300)  # arrives while the TSDB is down
    for _ in range(5):
        sink.step()
    assert sink.stats.retries == 5
    assert sink.health()["rows_behind"] == 2000
    assert "ConnectionError" in sink.stats.last_error or "NewConnectionError" in sink.stats.last_error
    victoria.start()  # same data directory
    drain(sink)
    assert victoria.points('{__name__=~"temperature_.+"}') == (8, 2600)
    stamps = [int(line.rsplit(" ", 1)[1]) for line in records(sent)]
    assert stamps == sorted(stamps) and len(stamps) == 1300  # oldest first, each point once


class Refusing(BaseHTTPRequestHandler):
    """A server that answers every write with the status in `status` (and Retry-After, if set)."""

    status = 401
    retry_after: str | None = None
    requests = 0

    def do_POST(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"code":"refused","message":"told to refuse"}'
        self.send_response(self.status)
        if self.retry_after is not None:
            self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[tuple[str, type[Refusing]]]:
    handler = type("Handler", (Refusing,), {"requests": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_a_permanent_refusal_dead_letters_the_batch_and_the_sink_goes_on(
    store: SqliteStore, refusing: tuple[str, type[Refusing]], status: int
) -> None:
    url, handler = refusing
    handler.status = status
    add_readings(store, 250, time.time() - 100)  # 500 rows: two batches of 250
    counters = Counters()
    sink = make_sink(store, url, counters, batch_rows=250)
    drain(sink)
    assert handler.requests == 2
    assert (sink.stats.batches_dead_lettered, sink.stats.rows_dead_lettered) == (2, 500)
    assert counters.get("sink_batches_dead_lettered", "influx") == 2
    letters = store.dead_letters(reason="sink_refused")
    assert len(letters) == 2
    assert letters[0].detail.startswith(f"HTTP {status}: told to refuse; readings rowid 250..500")
    assert b"temperature,building=B1,campus=c1,device=t" in letters[0].payload
    assert sink.stats.last_error.startswith(f"HTTP {status}")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_and_the_batch_kept(
    store: SqliteStore, refusing: tuple[str, type[Refusing]], status: int
) -> None:
    url, handler = refusing
    handler.status, handler.retry_after = status, "7"
    add_readings(store, 10, time.time() - 100)
    sink = make_sink(store, url)
    delays = [sink.step() for _ in range(3)]
    assert all(7.0 <= delay <= 7.0 * 1.25 for delay in delays)
    assert sink.stats.retries == 3 and sink.stats.batches_dead_lettered == 0
    assert sink.health()["rows_behind"] == 20


def test_rows_retention_deleted_before_they_were_sent_are_counted_dropped(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gw.db", retention_days=30)
    store.open()
    try:
        old = time.time() - 40 * 86400
        store.add_readings([("t0", "temperature_c", old + n, 20.0) for n in range(100)])
        store.flush()
        sent: list[str] = []
        sink = make_sink(store, "http://127.0.0.1:9", batch_rows=50)
        sink._write = sent.append
        sink.step()  # rows 1-50 sent
        store.maintain(time.time())  # deletes rows 1-99 (the row at the rollup cursor stays)
        assert store.count("readings") == 1
        store.add_readings([("t0", "temperature_c", time.time() + n, 21.0) for n in range(10)])
        store.flush()
        counters = Counters()
        sink = make_sink(store, "http://127.0.0.1:9", counters, batch_rows=50)
        sink.step()  # the write fails (nothing listens there): nothing passed, nothing counted yet
        assert sink.stats.retries == 1 and sink.stats.rows_dropped == 0
        sink._write = sent.append
        drain(sink)
        assert sink.stats.rows_dropped == 49 and counters.get("sink_rows_dropped", "influx") == 49
        assert len(records(sent)) == 50 + 1 + 10
    finally:
        store.close()


def test_forwards_across_chunk_tables_and_counts_only_deleted_readings_as_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.history.RAW_CHUNK_ROWS", 100)  # maintenance seals small chunks
    store = SqliteStore(tmp_path / "gw.db", retention_days=30)
    store.open()
    try:
        now = time.time()
        old = now - 40 * 86400

        def add(start: float, count: int) -> None:
            store.add_readings([("t0", "temperature_c", start + n, 20.0) for n in range(count)])
            store.flush()

        sent: list[str] = []
        counters = Counters()
        sink = make_sink(store, "http://127.0.0.1:9", counters, batch_rows=100)
        sink._write = sent.append
        add(old, 250)
        sink.step()  # rowids 1-100 sent, and 101-200 read ahead (a full batch: more are waiting)
        store.maintain(now)  # retention deletes 1-249 (250 stays at the rollup cursor), then seals
        add(now - 100, 50)  # after the new live table's sentinel (251): 252-301
        # The sentinel goes (a reading follows it): a hole that is not a drop; the sealed chunk,
        # all past retention, is dropped whole. 101-200, read before retention took them, are
        # sent; 201-249 and 250 (never read) are dropped.
        store.maintain(now)
        assert store.query("SELECT name, first_rowid FROM reading_chunks") == [("readings", 251)]
        add(now - 50, 30)
        drain(sink)
        assert sink.stats.rows_dropped == 50 and counters.get("sink_rows_dropped", "influx") == 50
        assert len(records(sent)) == 100 + 100 + 50 + 30
        stamps = [int(line.rsplit(" ", 1)[1]) for line in records(sent)]
        assert stamps == sorted(stamps)
        assert sink.health()["rows_behind"] == 0
    finally:
        store.close()


def test_sqlite_writes_one_line_per_device_and_time_with_escaped_tags(store: SqliteStore) -> None:
    devices = [DeviceSpec(id="t1", kind=DeviceKind.TEMPERATURE, building="教学楼 A", zone="room,1=x")]
    lines = ReadingLines(LineEncoder("c 1", devices, "ms").reading_format())
    store.add_readings([("t1", "temperature_c", 100.5, 24.5), ("t1", "humidity_pct", 100.5, 40.0)])
    store.add_readings([("t2", "temperature_c", 100.5, 1e20), ("t1", "temperature_c", 101.0, -0.1)])
    store.add_readings(
        [("gone, a=b\\c", "temperature_c", 102.0004, 20.0)]
    )  # since removed from the inventory
    store.flush()
    batch = store.read(lambda conn: read_batch(conn, ForwardCursor(), 10, lines))
    assert batch.reading_lines.split("\n") == [
        r"temperature,building=教学楼\ A,campus=c\ 1,device=t1,zone=room\,1\=x temperature_c=24.5,humidity_pct=40.0 100500",
        r"unknown_device,campus=c\ 1,device=t2 temperature_c=1.0e+20 100500",
        r"temperature,building=教学楼\ A,campus=c\ 1,device=t1,zone=room\,1\=x temperature_c=-0.1 101000",
        r"unknown_device,campus=c\ 1,device=gone\,\ a\=b\\c temperature_c=20.0 102000",
    ]
    assert (batch.reading_rows, batch.cursor.readings) == (5, 5)
    # An unknown device's tags are escaped by SQLite as the encoder escapes them for its events.
    event = LineEncoder("c 1", devices, "ms").events([(1, "gone, a=b\\c", "k", "e", 102.0)])[0]
    assert event.startswith(r"device_event,campus=c\ 1,device=gone\,\ a\=b\\c,")
    lines.close()


def test_the_next_batch_is_read_while_the_last_one_is_written(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_readings(store, 500, time.time() - 100)  # 1,000 rows: ten full batches of 100
    reads: list[tuple[float, float]] = []
    writes: list[tuple[float, float]] = []

    def timed_read(*args: object) -> object:
        started = time.monotonic()
        batch = read_batch(*args)  # type: ignore[arg-type]
        reads.append((started, time.monotonic()))
        return batch

    def slow_write(body: str) -> None:
        started = time.monotonic()
        time.sleep(0.2)
        writes.append((started, time.monotonic()))

    monkeypatch.setattr("sinks.influx.read_batch", timed_read)
    sink = make_sink(store, "http://127.0.0.1:9", batch_rows=100)
    sink._write = slow_write
    drain(sink)
    sink.close()
    assert sink.stats.rows_sent == 1000
    # Every full batch but the last had the next one read during its write.
    overlapped = [w for w in writes if any(w[0] < r[0] and r[1] < w[1] for r in reads)]
    assert len(overlapped) >= 9


def test_a_draining_sink_commits_its_cursor_about_once_a_second_and_never_waits_for_the_writer(
    store: SqliteStore,
) -> None:
    add_readings(store, 1000, time.time() - 100)  # 2,000 rows: twenty full batches of 100
    sent: list[str] = []
    sink = make_sink(store, "http://127.0.0.1:9", batch_rows=100)
    sink._write = sent.append
    before = store.writer.stats.transactions
    drain(sink)  # well within a second, with a write that returns at once
    assert len(records(sent)) == 1000
    assert store.writer.stats.transactions - before <= 3  # the first batch, the last, maybe one between
    assert store.query("SELECT value FROM meta WHERE key = 'forward/influx/readings'") == [("2000",)]

    # While the writer is held up (a long transaction ahead of ingest's rows), passes go on.
    add_readings(store, 1000, time.time() - 50)
    held, release = threading.Event(), threading.Event()

    def hold(conn: object) -> None:
        held.set()
        release.wait(30)

    store.writer.submit((Transaction(hold),))
    assert held.wait(5)
    finished = threading.Event()

    def replay() -> None:
        for _ in range(20):
            sink.step()
            time.sleep(0.15)  # 3 s in all: the sink tries to persist its cursor more than once
        finished.set()

    threading.Thread(target=replay, daemon=True).start()
    try:
        assert finished.wait(15), "a pass waited for the writer"
    finally:
        release.set()
    assert len(records(sent)) == 2000
    sink.flush()
    assert store.query("SELECT value FROM meta WHERE key = 'forward/influx/readings'") == [("4000",)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_batches_are_read_below_ingests_priority(store: SqliteStore) -> None:
    add_readings(store, 10, time.time() - 100)
    sink = make_sink(store, "http://127.0.0.1:9")
    sink._write = lambda body: None
    before = set(threading.enumerate())  # earlier tests' sinks may have readers of their own
    sink.step()
    (reader,) = [t for t in set(threading.enumerate()) - before if t.name.startswith("influx-sink-reader")]
    assert reader.native_id is not None
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, reader.native_id) == min(19, own + READER_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # only that thread
    sink.close()


def test_a_cursor_left_queued_behind_the_writer_is_persisted_by_the_next_idle_pass(
    store: SqliteStore,
) -> None:
    add_readings(store, 75, time.time() - 100)  # 150 rows: a full batch of 100, then 50
    sent: list[str] = []
    sink = make_sink(store, "http://127.0.0.1:9", batch_rows=100)
    sink._write = sent.append
    held, release = threading.Event(), threading.Event()

    def hold(conn: object) -> None:
        held.set()
        release.wait(30)

    store.writer.submit((Transaction(hold),))
    assert held.wait(5)
    try:
        sink.step()  # rows 1-100: its cursor queued behind the held transaction
        sink.step()  # rows 101-150, caught up: the last commit is still queued, so this one waits
    finally:
        release.set()
    store.flush()
    assert store.query("SELECT value FROM meta WHERE key = 'forward/influx/readings'") == [("100",)]
    sink.step()  # nothing new: the pass persists what was accepted
    store.flush()
    assert store.query("SELECT value FROM meta WHERE key = 'forward/influx/readings'") == [("150",)]
