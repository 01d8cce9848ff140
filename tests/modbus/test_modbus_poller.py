"""The pure per-device core: status changes, alarm-bit edges, counters, log rate limiting."""

from __future__ import annotations

from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, StatusChange
from drivers.modbus.errors import FailureKind, PollFailure
from drivers.modbus.poller import DevicePoller
from drivers.modbus.registers import Sample, load_models

EFM4 = load_models()["generic_efm4"]
TIMEOUT = PollFailure(FailureKind.TIMEOUT, "no answer")
EXCEPTION_2 = PollFailure(FailureKind.EXCEPTION, exception_code=2)


def poller(offline_after: int = 3) -> DevicePoller:
    return DevicePoller("efm-1", DeviceKind.ELECTRICAL_FIRE, EFM4, offline_after)


def sample(**flags: bool) -> Sample:
    return Sample({"residual_current_ma": 40.0}, {f.name: flags.get(f.name, False) for f in EFM4.flags})


def test_first_good_read_is_online_with_readings() -> None:
    records = poller().on_sample(sample(), ts=100.0, cycle_s=0.01)
    assert records[0] == StatusChange("efm-1", DeviceKind.ELECTRICAL_FIRE, DeviceState.ONLINE, 100.0)
    assert Reading("efm-1", DeviceKind.ELECTRICAL_FIRE, "residual_current_ma", 100.0, 40.0) in records


def test_offline_after_configured_failures_then_online_at_first_good_read() -> None:
    p = poller(offline_after=3)
    p.on_sample(sample(), 0.0, 0.01)
    assert p.on_failure(TIMEOUT, 1.0, 0.5) == []
    assert p.on_failure(TIMEOUT, 2.0, 0.5) == []
    (offline,) = p.on_failure(TIMEOUT, 3.0, 0.5)
    assert isinstance(offline, StatusChange)
    assert (offline.state, offline.ts, offline.reason) == (
        DeviceState.OFFLINE,
        3.0,
        "3 failed polls: timeout: no answer",
    )
    assert p.on_failure(EXCEPTION_2, 4.0, 0.5) == []
    assert p.stats.online is False
    back = p.on_sample(sample(), 5.0, 0.01)
    assert [r.state for r in back if isinstance(r, StatusChange)] == [DeviceState.ONLINE]
    assert p.stats.consecutive_failures == 0


def test_alarm_bits_become_edge_events_with_attrs() -> None:
    p = poller()
    assert not [r for r in p.on_sample(sample(), 0.0, 0.0) if isinstance(r, DeviceEvent)]
    raised = [r for r in p.on_sample(sample(leakage_alarm_2=True), 1.0, 0.0) if isinstance(r, DeviceEvent)]
    assert [(e.name, e.attrs) for e in raised] == [
        ("leakage_alarm", {"channel": 2, "flag": "leakage_alarm_2"})
    ]
    assert not [r for r in p.on_sample(sample(leakage_alarm_2=True), 2.0, 0.0) if isinstance(r, DeviceEvent)]
    cleared = [r for r in p.on_sample(sample(), 3.0, 0.0) if isinstance(r, DeviceEvent)]
    assert [e.name for e in cleared] == ["leakage_alarm_clear"]


def test_an_alarm_already_set_at_start_is_reported() -> None:
    events = [
        r
        for r in poller().on_sample(sample(temp_sensor_fault_4=True), 0.0, 0.0)
        if isinstance(r, DeviceEvent)
    ]
    assert [(e.name, e.attrs["channel"], e.attrs["sensor"]) for e in events] == [("fault", 4, "temperature")]


def test_counters_by_kind_and_code() -> None:
    p = poller()
    for failure in (
        TIMEOUT,
        EXCEPTION_2,
        EXCEPTION_2,
        PollFailure(FailureKind.CRC),
        PollFailure(FailureKind.DISCONNECT),
    ):
        p.stats.count_failure(failure)
    stats = p.stats.as_dict()
    assert (stats["timeouts"], stats["crc_errors"], stats["disconnects"]) == (1, 1, 1)
    assert (stats["exceptions"], stats["exception_2"]) == (2, 2)


def test_repeated_failures_are_logged_on_change_or_once_a_minute() -> None:
    p = poller()
    assert p.should_log(TIMEOUT, now=0.0)
    assert not p.should_log(TIMEOUT, now=30.0)
    assert p.should_log(EXCEPTION_2, now=31.0)
    assert not p.should_log(EXCEPTION_2, now=60.0)
    assert p.should_log(EXCEPTION_2, now=91.5)
    p.on_sample(sample(), 92.0, 0.0)
    assert p.should_log(EXCEPTION_2, now=93.0)
