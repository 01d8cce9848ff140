"""Line protocol for the store's records, and the retry delays (pure, no servers)."""

from __future__ import annotations

import random
from email.utils import formatdate
from pathlib import Path

import pytest

from analytics.devices import DeviceKind, DeviceSpec
from gateway.config import ConfigError, load_config
from sinks.backoff import Backoff, parse_retry_after
from sinks.lines import LineEncoder

DEVICES = [
    DeviceSpec(id="t1", kind=DeviceKind.TEMPERATURE, building="教学楼 A", zone="room,1=x"),
    DeviceSpec(id="g1", kind=DeviceKind.GATE),
]


def test_readings_prefixes_are_the_escaped_measurement_and_tags_and_no_empty_ones() -> None:
    line_format = LineEncoder("c 1", DEVICES, "ms").reading_format()
    assert line_format.prefixes == {
        "t1": r"temperature,building=教学楼\ A,campus=c\ 1,device=t1,zone=room\,1\=x",
        "g1": r"gate,campus=c\ 1,device=g1",
    }
    assert (line_format.unknown_prefix, line_format.ts_scale) == (r"unknown_device,campus=c\ 1,device=", 1000)


def test_events_and_alert_changes_carry_names_as_tags_and_never_a_person() -> None:
    encoder = LineEncoder("c1", DEVICES, "s")
    assert encoder.events([(7, "g1", "gate", "access_granted", 1700000000.4)]) == [
        "device_event,campus=c1,device=g1,event=access_granted,kind=gate count=1i 1700000000"
    ]
    assert encoder.alert_changes([(9, 1700000000.0, "raised", 3, "gate_forced", "critical", "g1")]) == [
        "alert_change,action=raised,campus=c1,device=g1,rule=gate_forced,severity=critical alert_id=3i 1700000000"
    ]


def test_the_sinks_own_status_line() -> None:
    assert LineEncoder("c1", DEVICES, "ms").sink_status(1200, 35.5, 1700000000.0) == (
        "gateway_sink,campus=c1 rows_behind=1200i,oldest_unsent_age_s=35.5 1700000000000"
    )


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    backoff = Backoff(1.0, 8.0, random.Random(3))
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == 6  # jittered: no two gateways wait the same
    assert 30.0 <= backoff.next_delay(retry_after_s=30.0) <= 37.5
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_retry_after_as_seconds_or_an_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(formatdate(1_000_060, usegmt=True), now=1_000_000) == pytest.approx(60.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_the_sinks_section_is_validated_and_the_token_comes_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "campus: {id: c1}\nsinks: {influx: {url: 'http://tsdb:8428', bucket: b, batch_rows: 0}}\n"
    )
    with pytest.raises(ConfigError, match=r"gateway.yaml: sinks.influx.batch_rows: Input should be greater"):
        load_config(config, environ={})
    config.write_text("campus: {id: c1}\nsinks: {influx: {url: 'http://tsdb:8428', bucket: b}}\n")
    loaded = load_config(config, environ={"CAMPUS_GATEWAY__SINKS__INFLUX__TOKEN": "s3cret"})
    assert loaded.sinks.influx is not None and loaded.sinks.influx.token == "s3cret"
