"""The interval maths of SPEC 8 with hand-computed figures: overlaps, gaps, restarts, window edges."""

from __future__ import annotations

import pytest

from analytics.device_tracker import DeviceStatus
from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from analytics.uptime import (
    Outage,
    Span,
    Transition,
    UptimeHistory,
    by_kind,
    device_uptime,
    fleet_availability,
    merge_spans,
    summarize,
)

ON, OFF = True, False
WINDOW = Span(1000.0, 2000.0)
ALWAYS = [Span(0.0, 10_000.0)]


def t(ts: float, online: bool, cause: str = "") -> Transition:
    return Transition(ts, online, cause)


def test_online_throughout_is_full_availability() -> None:
    uptime = device_uptime([t(500, ON)], ALWAYS, WINDOW)
    assert (uptime.online_s, uptime.offline_s, uptime.unknown_s) == (1000, 0, 0)
    assert uptime.availability == 1.0 and uptime.outages == ()


def test_an_outage_inside_the_window() -> None:
    uptime = device_uptime([t(500, ON), t(1200, OFF, "lwt"), t(1500, ON)], ALWAYS, WINDOW)
    assert (uptime.online_s, uptime.offline_s) == (700, 300)
    assert uptime.availability == pytest.approx(0.7)
    assert uptime.outages == (Outage(1200, 1500, "lwt", 300),)


def test_an_outage_across_the_window_start_keeps_its_real_start() -> None:
    uptime = device_uptime([t(800, OFF, "silence"), t(1100, ON)], ALWAYS, WINDOW)
    assert uptime.outages == (Outage(800, 1100, "silence", 100),)
    assert uptime.availability == pytest.approx(0.9)


def test_an_outage_that_ended_before_the_window_is_not_listed() -> None:
    uptime = device_uptime([t(100, OFF), t(900, ON)], ALWAYS, WINDOW)
    assert uptime.outages == () and uptime.availability == 1.0


def test_an_ongoing_outage_has_no_end() -> None:
    uptime = device_uptime([t(500, ON), t(1900, OFF, "3 failed polls")], ALWAYS, WINDOW)
    assert uptime.outages == (Outage(1900, None, "3 failed polls", 100),)
    assert uptime.availability == pytest.approx(0.9)


def test_repeated_offline_rows_are_one_outage() -> None:
    uptime = device_uptime(
        [t(500, ON), t(1200, OFF, "silence"), t(1300, OFF, "lwt"), t(1400, ON)], ALWAYS, WINDOW
    )
    assert uptime.outages == (Outage(1200, 1400, "silence", 200),)


def test_gateway_downtime_is_unknown_and_counts_neither_way() -> None:
    # Down 1300-1600 (a kill -9 and a restart): the device was offline 1200-1500 as far as known.
    running = merge_spans([Span(0, 1300), Span(1600, 3000)])
    uptime = device_uptime([t(500, ON), t(1200, OFF, "lwt"), t(1500, ON)], running, WINDOW)
    assert (uptime.online_s, uptime.offline_s, uptime.unknown_s) == (200 + 400, 100, 300)
    assert uptime.availability == pytest.approx(600 / (1000 - 300))
    assert uptime.outages == (Outage(1200, 1500, "lwt", 100),)


def test_a_restart_carries_the_last_known_state_on() -> None:
    running = merge_spans([Span(0, 1400), Span(1450, 3000)])
    uptime = device_uptime([t(500, OFF, "lwt")], running, WINDOW)
    assert (uptime.online_s, uptime.offline_s, uptime.unknown_s) == (0, 950, 50)
    assert uptime.availability == 0.0


def test_before_the_first_transition_the_state_is_unknown() -> None:
    uptime = device_uptime([t(1250, ON)], ALWAYS, WINDOW)
    assert (uptime.online_s, uptime.unknown_s, uptime.availability) == (750, 250, 1.0)
    assert device_uptime([], ALWAYS, WINDOW).availability is None


def test_the_future_is_not_counted() -> None:
    """The monthly report's old bug: the present state ran on to the month's end."""
    uptime = device_uptime([t(500, ON), t(1200, OFF)], [Span(0, 1500)], WINDOW)
    assert (uptime.online_s, uptime.offline_s, uptime.unknown_s) == (200, 300, 500)


def test_overlapping_and_touching_runs_merge() -> None:
    assert merge_spans([Span(5, 8), Span(0, 3), Span(2, 4), Span(4, 5), Span(9, 9)]) == [Span(0, 8)]
    uptime = device_uptime([t(0, ON)], [Span(900, 1500), Span(1100, 1600)], WINDOW)
    assert (uptime.online_s, uptime.unknown_s) == (600, 400)


def test_transitions_on_the_window_edges() -> None:
    uptime = device_uptime([t(1000, OFF), t(2000, ON)], ALWAYS, WINDOW)
    assert (uptime.offline_s, uptime.outages) == (1000, (Outage(1000, 2000, "", 1000),))


def test_rates_per_campus_and_kind() -> None:
    devices = [
        DeviceSpec(id="s1", kind=DeviceKind.SMOKE, building="A"),
        DeviceSpec(id="s2", kind=DeviceKind.SMOKE, building="A"),
        DeviceSpec(id="e1", kind=DeviceKind.ELECTRICAL_FIRE, building="B"),
    ]
    status = {
        "s1": DeviceStatus("s1", "smoke", online=True, last_seen=1990),
        "s2": DeviceStatus("s2", "smoke", online=False, last_seen=1500),
        "e1": DeviceStatus("e1", "electrical_fire", online=False, last_seen=100),
    }
    history = UptimeHistory(
        {"s1": [t(0, ON)], "s2": [t(0, ON), t(1500, OFF)], "e1": [t(0, ON), t(200, OFF)]}, ALWAYS
    )
    fleet = fleet_availability(devices, status.get, history, WINDOW)
    campus = summarize(fleet)
    assert (campus.registered, campus.online_now, campus.reported) == (3, 1, 2)
    assert campus.online_rate == pytest.approx(1 / 3) and campus.networked_rate == pytest.approx(2 / 3)
    assert campus.mean_availability == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    kinds = by_kind(fleet)
    assert kinds["smoke"].online_rate == 0.5 and kinds["smoke"].mean_availability == pytest.approx(0.75)
    assert kinds["electrical_fire"].networked_rate == 0.0
    assert fleet[0].location == "A"
