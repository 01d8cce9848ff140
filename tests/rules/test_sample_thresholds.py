"""Threshold rules driven by samples: raise, hold, clear, and no flapping at the limit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from analytics.alerts import Severity
from analytics.records import DeviceKind
from tests.rules.scenario import Campus, device

K = DeviceKind


@dataclass(frozen=True)
class Story:
    rule: str
    kind: DeviceKind
    metric: str
    samples: tuple[tuple[float, float], ...]  # (seconds after T0, value)
    active: bool  # is the alert's condition active at the end
    raised: int  # how many times the alert was raised or reactivated
    severity: Severity | None = None


def series(start: float, step: float, *values: float) -> tuple[tuple[float, float], ...]:
    return tuple((start + i * step, value) for i, value in enumerate(values))


STORIES = {
    # smoke_prealarm: obscuration >= 2.0 %/m for 10 s
    "prealarm raises after 10 s": Story("smoke_prealarm", K.SMOKE, "obscuration_pct_m", series(0, 5, 2.1, 2.3, 2.2), True, 1, Severity.WARNING),
    "prealarm needs the full 10 s": Story("smoke_prealarm", K.SMOKE, "obscuration_pct_m", series(0, 5, 2.1, 2.3, 1.0), False, 0),
    "prealarm dip restarts the hold": Story("smoke_prealarm", K.SMOKE, "obscuration_pct_m", series(0, 4, 2.1, 2.1, 1.9, 2.1, 2.1), False, 0),
    "prealarm clears below 1.5 after 10 s": Story("smoke_prealarm", K.SMOKE, "obscuration_pct_m", series(0, 5, 2.5, 2.5, 2.5, 1.0, 1.0, 1.0), False, 1),
    "prealarm hovering at the limit raises once": Story("smoke_prealarm", K.SMOKE, "obscuration_pct_m", series(0, 5, 2.0, 2.0, 2.0, 1.9, 2.0, 1.8, 2.1, 1.9, 2.0, 1.6), True, 1),
    # electrical_leakage: residual current >= 300 mA for 3 samples
    "leakage raises on the third sample": Story("electrical_leakage", K.ELECTRICAL_FIRE, "residual_current_ma", series(0, 5, 310, 320, 305), True, 1, Severity.MAJOR),
    "leakage spike of two samples is ignored": Story("electrical_leakage", K.ELECTRICAL_FIRE, "residual_current_ma", series(0, 5, 900, 950, 100, 310, 320), False, 0),
    "leakage clears after 3 samples under 270": Story("electrical_leakage", K.ELECTRICAL_FIRE, "residual_current_ma", series(0, 5, 310, 310, 310, 200, 200, 200), False, 1),
    "leakage hovering at 300 raises once": Story("electrical_leakage", K.ELECTRICAL_FIRE, "residual_current_ma", series(0, 5, 300, 300, 300, 290, 300, 280, 301, 299, 300), True, 1),
    # cable_overtemp: any temp_c_n >= 70
    "cable overtemp raises at once": Story("cable_overtemp", K.ELECTRICAL_FIRE, "temp_c_3", series(0, 5, 60, 70), True, 1, Severity.MAJOR),
    "cable overtemp clears under 65 held 60 s": Story("cable_overtemp", K.ELECTRICAL_FIRE, "temp_c_1", series(0, 30, 75, 60, 60, 60), False, 1),
    "cable overtemp hovering at 70 raises once": Story("cable_overtemp", K.ELECTRICAL_FIRE, "temp_c_2", series(0, 30, 70, 69, 70, 66, 71, 64, 70), True, 1),
    # low_battery: < 20 %
    "battery under 20 raises": Story("low_battery", K.SMOKE, "battery_pct", series(0, 60, 21, 19), True, 1, Severity.INFO),
    "battery at 20 is fine": Story("low_battery", K.PANIC, "battery_pct", series(0, 60, 20, 20), False, 0),
    "battery recharged to 25 clears": Story("low_battery", K.TEMPERATURE, "battery_pct", series(0, 60, 10, 26), False, 1),
    "battery hovering at 20 raises once": Story("low_battery", K.SMOKE, "battery_pct", series(0, 60, 19, 20, 19, 21, 19, 22), True, 1),
    # chem_leak: voc_ppm >= 10 warning, >= 50 major
    "voc at 10 warns": Story("chem_leak", K.CHEM_CABINET, "voc_ppm", series(0, 5, 5, 12), True, 1, Severity.WARNING),
    "voc at 50 is major": Story("chem_leak", K.CHEM_CABINET, "voc_ppm", series(0, 5, 12, 55), True, 1, Severity.MAJOR),
    "voc clears under 8 held 30 s": Story("chem_leak", K.CHEM_CABINET, "voc_ppm", series(0, 15, 60, 5, 5, 5), False, 1),
    "voc hovering at 10 raises once": Story("chem_leak", K.CHEM_CABINET, "voc_ppm", series(0, 5, 10, 9, 10, 8.5, 10.5, 9.9, 10), True, 1),
    # flammable_gas: lel_pct >= 25 low alarm (major), >= 50 critical
    "lel 25 is the low alarm": Story("flammable_gas", K.CHEM_CABINET, "lel_pct", series(0, 5, 10, 25), True, 1, Severity.MAJOR),
    "lel 50 is critical": Story("flammable_gas", K.CHEM_CABINET, "lel_pct", series(0, 5, 30, 50), True, 1, Severity.CRITICAL),
    "lel clears under 20 held 30 s": Story("flammable_gas", K.CHEM_CABINET, "lel_pct", series(0, 15, 30, 10, 10, 10), False, 1),
    "lel hovering at 25 raises once": Story("flammable_gas", K.CHEM_CABINET, "lel_pct", series(0, 5, 25, 24, 25, 21, 26, 24.9), True, 1),
}  # fmt: skip


@pytest.mark.parametrize("story", STORIES.values(), ids=STORIES.keys())
def test_threshold_story(story: Story) -> None:
    campus = Campus([device("d1", story.kind)])
    for at, value in story.samples:
        campus.reading("d1", story.metric, value, at)
    assert campus.active(story.rule, "d1") is story.active
    assert campus.raised_count(story.rule) == story.raised
    if story.severity is not None:
        alert = campus.alert(story.rule, "d1")
        assert alert is not None and alert.severity is story.severity


def test_prealarm_hold_ends_between_samples_on_the_gateway_clock() -> None:
    """A slow reporter: one sample over the limit, then silence; the tick raises after 10 s."""
    campus = Campus([device("s1", K.SMOKE)])
    campus.reading("s1", "obscuration_pct_m", 3.0, at=0)
    campus.ticks(0, 9)
    assert not campus.active("smoke_prealarm", "s1")
    campus.ticks(10, 12)
    assert campus.active("smoke_prealarm", "s1")
    assert campus.raised_count("smoke_prealarm") == 1


def test_cable_overtemp_is_one_alert_per_device_until_every_channel_cools() -> None:
    campus = Campus([device("e1", K.ELECTRICAL_FIRE)])
    campus.reading("e1", "temp_c_1", 72, at=0)
    campus.reading("e1", "temp_c_4", 80, at=1)
    for at in (30, 61, 92):
        campus.reading("e1", "temp_c_1", 50, at=at)
    assert campus.active("cable_overtemp", "e1"), "channel 4 is still hot"
    for at in (100, 131, 162):
        campus.reading("e1", "temp_c_4", 50, at=at)
    assert not campus.active("cable_overtemp", "e1")
    assert campus.raised_count("cable_overtemp") == 1


def test_per_device_threshold_override_from_the_inventory() -> None:
    campus = Campus([device("e1", K.ELECTRICAL_FIRE, thresholds={"electrical_leakage.raise_at": 500.0})])
    for at, value in series(0, 5, 400, 400, 400):
        campus.reading("e1", "residual_current_ma", value, at)
    assert not campus.active("electrical_leakage", "e1")
    for at, value in series(20, 5, 510, 520, 530):
        campus.reading("e1", "residual_current_ma", value, at)
    assert campus.active("electrical_leakage", "e1")


def test_leak_alarm_event_raises_chem_leak_and_clears_only_when_vapour_is_gone_too() -> None:
    campus = Campus([device("c1", K.CHEM_CABINET)])
    campus.event("c1", "leak_alarm", at=0)
    alert = campus.alert("chem_leak", "c1")
    assert alert is not None and alert.severity is Severity.MAJOR
    campus.reading("c1", "voc_ppm", 15, at=1)
    campus.event("c1", "leak_alarm_clear", at=2)
    assert campus.active("chem_leak", "c1"), "voc still over the warning level"
    for at in (10, 25, 41):
        campus.reading("c1", "voc_ppm", 2, at=at)
    assert not campus.active("chem_leak", "c1")


@pytest.mark.parametrize(
    ("fan", "voc", "active"),
    [
        ((1, 1, 1), (20, 30, 40), False),  # vapour, but the fan runs
        ((1, 0, 0), (5, 6, 7), False),  # fan off, little vapour
        ((1, 0, 0), (5, 12, 12), True),  # fan off while vapour builds
        ((0, 0, 1), (12, 12, 12), True),  # fan back on: the clear waits 30 s
    ],
)
def test_ventilation_fault(fan: tuple[int, ...], voc: tuple[float, ...], active: bool) -> None:
    campus = Campus([device("c1", K.CHEM_CABINET)])
    for step, (fan_on, voc_ppm) in enumerate(zip(fan, voc, strict=True)):
        campus.reading("c1", "fan_on", fan_on, at=step * 5)
        campus.reading("c1", "voc_ppm", voc_ppm, at=step * 5 + 1)
    assert campus.active("ventilation_fault", "c1") is active


def test_ventilation_fault_clears_after_the_fan_runs_30_s_and_does_not_flap() -> None:
    campus = Campus([device("c1", K.CHEM_CABINET)])
    campus.reading("c1", "voc_ppm", 15, at=0)
    campus.reading("c1", "fan_on", 0, at=1)
    for at in range(2, 60, 4):  # the fan cycles every few seconds
        campus.reading("c1", "fan_on", (at // 4) % 2, at=at)
    assert campus.raised_count("ventilation_fault") == 1
    campus.reading("c1", "fan_on", 1, at=70)
    campus.reading("c1", "voc_ppm", 15, at=101)
    assert not campus.active("ventilation_fault", "c1")


def test_per_device_override_holds_when_the_hold_ends_between_samples() -> None:
    """The tick that ends a hold between samples uses the device's `min_samples` and `raise_at`."""
    overrides = {"smoke_prealarm.min_samples": 2.0, "smoke_prealarm.raise_at": 2.5}
    campus = Campus([device("s1", K.SMOKE, thresholds=overrides)])
    campus.reading("s1", "obscuration_pct_m", 3.0, at=0)
    campus.ticks(0, 15)
    assert not campus.active("smoke_prealarm", "s1"), "one sample, but this device needs two"
    campus.reading("s1", "obscuration_pct_m", 3.0, at=16)
    campus.ticks(16, 30)
    alert = campus.alert("smoke_prealarm", "s1")
    assert alert is not None and alert.condition_active
    assert alert.details["limit"] == 2.5
