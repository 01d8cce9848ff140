"""The sink's spool: batches rendered ahead while the TSDB is away, sent from files when it
returns, against a real VictoriaMetrics; bounded, discarded when not as written, and never kept
across a restart."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from gateway.broker import free_port
from gateway.counters import Counters
from sinks.config import InfluxSinkConfig
from sinks.influx import InfluxSink, InfluxWriter
from sinks.lines import LineEncoder
from sinks.spool import Rendered
from storage.forwarding import ForwardCursor
from storage.sqlite import SqliteStore
from tests.sinks.conftest import Victoria
from tests.sinks.test_influx_sink import CAMPUS, DEVICES, Refusing, add_readings, drain, records

READINGS = '{__name__=~"temperature_.+"}'


@pytest.fixture
def away(tmp_path: Path) -> Iterator[Victoria]:
    """A VictoriaMetrics not started yet: the sink's server is away until the test starts it."""
    server = Victoria(tmp_path / "victoria" / "data", port=free_port())
    server.data_dir.mkdir(parents=True)
    yield server
    server.stop()


def spool_sink(
    store: SqliteStore,
    url: str,
    counters: Counters | None = None,
    devices: list[DeviceSpec] = DEVICES,
    **overrides: object,
) -> tuple[InfluxSink, list[str]]:
    """A sink whose requests are recorded as sent (the server accepted them)."""
    config = InfluxSinkConfig(
        url=url,
        org="district",
        bucket="campus",
        batch_rows=200,
        retry_base_s=0.05,
        retry_max_s=0.1,
        poll_interval_s=0.05,
        **overrides,  # type: ignore[arg-type]
    )
    sink = InfluxSink(
        config,
        store,
        LineEncoder(CAMPUS, devices, config.precision),
        (counters or Counters()).inc,
        rng=random.Random(1),
    )
    writer = InfluxWriter(config)
    sent: list[str] = []

    def recording(body: str) -> None:
        writer.write(body)
        sent.append(body)

    sink._write = recording
    return sink, sent


def render_during_outage(sink: InfluxSink, timeout_s: float = 60.0) -> None:
    """Step with the server away until the sink has rendered ahead all it will."""
    deadline = time.monotonic() + timeout_s
    sink.step()
    while sink.spooling or sink.stats.retries < 2:
        assert time.monotonic() < deadline, sink.health()
        time.sleep(0.05)
        sink.step()
    assert "ConnectionError" in sink.stats.last_error


def segment_files(store: SqliteStore) -> list[Path]:
    return sorted((store.path.parent / f"{store.path.name}.influx-spool").glob("*.lp"))


def stamps_in_order_once(sent: list[str]) -> list[int]:
    stamps = [int(line.rsplit(" ", 1)[1]) for line in records(sent) if line.startswith("temperature,")]
    assert stamps == sorted(stamps)
    return stamps


def test_an_outage_is_rendered_ahead_and_the_return_sends_the_spool_in_order_once(
    store: SqliteStore, away: Victoria
) -> None:
    add_readings(store, 1000, time.time() - 600)  # 2,000 rows: ten batches
    store.add_event("s0", "smoke", "alarm", time.time() - 5, {})
    store.flush()
    sink, sent = spool_sink(store, away.url)
    render_during_outage(sink)
    assert sink.stats.spool_rendered_rows == 2001
    files = segment_files(store)
    assert len(files) == 10
    assert sink.stats.spool_bytes == sum(f.stat().st_size for f in files) == sink.health()["spool_bytes"]
    assert sink.stats.spool_render_cpu_s > 0

    reads: list[ForwardCursor] = []
    read = sink._read

    def reading(cursor: ForwardCursor) -> Rendered:
        reads.append(cursor)
        return read(cursor)

    sink._read = reading  # type: ignore[method-assign]
    away.start()
    drain(sink)
    assert reads == [] or len(reads) == 1  # sent from the spool; at most the pass that found the end
    assert away.points(READINGS) == (8, 2000)
    assert len(stamps_in_order_once(sent)) == 1000 and len(records(sent)) == 1001
    assert segment_files(store) == [] and sink.stats.spool_bytes == 0
    assert sink.stats.spool_discarded == 0 and sink.stats.rows_sent == 2001
    # The cursor was persisted as the spool was sent: a restart sends nothing again.
    again, resent = spool_sink(store, away.url)
    drain(again)
    assert records(resent) == []


def test_the_spool_stays_under_its_bound_and_the_rest_is_read_from_the_store(
    store: SqliteStore, away: Victoria
) -> None:
    add_readings(store, 1000, time.time() - 600)
    sink, sent = spool_sink(store, away.url, spool_max_bytes=40_000)
    render_during_outage(sink)
    files = segment_files(store)
    held = sum(f.stat().st_size for f in files)
    assert 0 < held <= 40_000 and len(files) < 10
    assert sink.stats.spool_rendered_rows == 200 * len(files)
    away.start()
    drain(sink)
    assert away.points(READINGS) == (8, 2000)
    assert len(stamps_in_order_once(sent)) == 1000


@pytest.mark.parametrize("damage", ["truncated", "altered", "removed"])
def test_a_damaged_spool_is_discarded_with_a_log_line_and_a_counter_and_nothing_is_lost(
    store: SqliteStore, away: Victoria, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    add_readings(store, 1000, time.time() - 600)
    counters = Counters()
    sink, sent = spool_sink(store, away.url, counters)
    render_during_outage(sink)
    victim = segment_files(store)[3]
    data = victim.read_bytes()
    if damage == "truncated":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "altered":  # same length: a temperature of 2x.0 becomes 9x.0
        at = data.rindex(b"temperature_c=2") + len("temperature_c=")
        victim.write_bytes(data[:at] + b"9" + data[at + 1 :])
    else:
        victim.unlink()
    away.start()
    with caplog.at_level(logging.WARNING, logger="sinks.influx"):
        drain(sink)
    assert away.points(READINGS) == (8, 2000)
    assert away.count(READINGS) == 2000
    assert len(stamps_in_order_once(sent)) == 1000  # the damaged segment's rows from the store, once
    assert sink.stats.spool_discarded == 1 and counters.get("sink_spool_discarded", "influx") == 1
    assert any("spool discarded" in r.getMessage() for r in caplog.records)
    assert segment_files(store) == []
    # The values as stored, never the altered one.
    temperatures = away.export('{__name__="temperature_temperature_c"}')
    values = [v for series in temperatures for v in series["values"]]  # type: ignore[attr-defined]
    assert len(values) == 1000 and max(values) < 30


def test_a_restart_discards_a_spool_left_behind_and_sends_what_the_store_holds_now(
    store: SqliteStore, away: Victoria
) -> None:
    """A spool is never kept across a start: its lines were rendered with the last run's tags."""
    add_readings(store, 1000, time.time() - 600)
    crashed, _ = spool_sink(store, away.url)
    render_during_outage(crashed)  # then the process dies: no close, the files stay
    assert len(segment_files(store)) == 10
    moved = [
        DeviceSpec(
            id=d.id,
            kind=d.kind,
            building="B9" if d.kind is DeviceKind.TEMPERATURE else d.building,
            zone=d.zone,
        )
        for d in DEVICES
    ]
    restarted, sent = spool_sink(store, away.url, devices=moved)
    assert segment_files(store) == []
    away.start()
    drain(restarted)
    assert away.points(READINGS) == (8, 2000)
    assert {s["metric"]["building"] for s in away.export(READINGS)} == {"B9"}  # type: ignore[index]
    assert len(stamps_in_order_once(sent)) == 1000


def test_a_server_that_returns_refusing_dead_letters_the_spooled_batches_and_the_sink_goes_on(
    store: SqliteStore, tmp_path: Path
) -> None:
    port = free_port()
    add_readings(store, 500, time.time() - 600)  # five batches
    counters = Counters()
    sink, _ = spool_sink(store, f"http://127.0.0.1:{port}", counters)
    render_during_outage(sink)
    assert len(segment_files(store)) == 5
    handler: type[Refusing] = type("Handler", (Refusing,), {"requests": 0, "status": 413})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        drain(sink)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.requests == 5
    assert (sink.stats.batches_dead_lettered, sink.stats.rows_dead_lettered) == (5, 1000)
    letters = store.dead_letters(reason="sink_refused")
    assert len(letters) == 5 and b"temperature,building=B1,campus=c1" in letters[0].payload
    assert segment_files(store) == [] and sink.stats.spool_discarded == 0
