"""The rule catalogue: every alert rule of SPEC section 5 and what the rest of the gateway knows
about it, in one table.

Texts (`analytics.texts`), rule defaults (`analytics.rules.defaults`), automatic ticket policies
(`analytics.tickets.policies`), ticket categories and the notification defaults
(`gateway.notify.config`) read it; none keeps a list of its own. Adding a rule means adding a row
here and its evaluation in `defaults`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from analytics.alerts import Severity
from analytics.hazards import HazardCategory, HazardLevel, PolicyTrigger
from analytics.records import DeviceKind

DAY_S = 86400.0


class Escalation(StrEnum):
    """How an alert of the rule travels up the notification tiers (SPEC section 6)."""

    NONE = "none"  # told to the first tier by severity only; never escalated
    UNACKNOWLEDGED = "unacknowledged"  # the next tier after `escalate_after_s` (60 s) unacknowledged
    AT_ONCE = "at_once"  # the second tier at once, then on up while unacknowledged
    POLICE = "police"  # the police channels at once, no delay, besides the tiers


@dataclass(frozen=True, slots=True)
class AutoTicket:
    """When an alert of the rule opens a ticket by itself (SPEC section 7 defaults)."""

    trigger: PolicyTrigger
    level: HazardLevel
    after_s: float = 0.0
    count: int = 1
    window_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """One rule: its name, the device kinds it watches (none: it follows other rules, or the
    pipeline raises it), its default severity (the highest, for rules with two levels), the
    hazard category of its tickets, its titles, escalation and automatic ticket."""

    name: str
    kinds: frozenset[DeviceKind]
    severity: Severity
    category: HazardCategory
    title_zh: str
    title_en: str
    escalation: Escalation = Escalation.NONE
    auto_ticket: AutoTicket | None = None

    def title(self, language: str) -> str:
        return self.title_zh if language == "zh-CN" else self.title_en


K, S, C, E = DeviceKind, Severity, HazardCategory, Escalation
_ALL = frozenset(DeviceKind)
_FIRE_DETECTORS = frozenset({K.SMOKE, K.TEMPERATURE})
_UNACKED = E.UNACKNOWLEDGED

_ENTRIES = (
    RuleEntry("fire_alarm", frozenset({K.SMOKE}), S.CRITICAL, C.FIRE, "火灾报警", "Fire alarm", _UNACKED),
    RuleEntry("smoke_prealarm", frozenset({K.SMOKE}), S.WARNING, C.FIRE, "烟雾预警", "Smoke pre-alarm"),
    RuleEntry("fire_confirmed", frozenset(), S.CRITICAL, C.FIRE, "火警确认", "Fire confirmed", E.AT_ONCE),
    RuleEntry("heat_high", _FIRE_DETECTORS, S.CRITICAL, C.FIRE, "温度过高", "High temperature", _UNACKED),
    RuleEntry("heat_rate_of_rise", _FIRE_DETECTORS, S.CRITICAL, C.FIRE, "温升过快", "Rapid temperature rise",
              _UNACKED),
    RuleEntry("electrical_leakage", frozenset({K.ELECTRICAL_FIRE}), S.MAJOR, C.ELECTRICAL, "电气剩余电流超限",
              "Electrical leakage", auto_ticket=AutoTicket(PolicyTrigger.RAISED, HazardLevel.MAJOR)),
    RuleEntry("cable_overtemp", frozenset({K.ELECTRICAL_FIRE}), S.MAJOR, C.ELECTRICAL, "线缆温度过高",
              "Cable over-temperature"),
    RuleEntry("panic_pressed", frozenset({K.PANIC}), S.CRITICAL, C.ACCESS, "一键报警", "Panic button pressed",
              E.POLICE),
    RuleEntry("gate_forced", frozenset({K.GATE}), S.CRITICAL, C.ACCESS, "门被强行打开", "Gate forced open",
              _UNACKED),
    RuleEntry("gate_held_open", frozenset({K.GATE}), S.WARNING, C.ACCESS, "门长时间未关", "Gate held open"),
    RuleEntry("after_hours_access", frozenset({K.GATE}), S.WARNING, C.ACCESS, "非上学时段通行",
              "After-hours access"),
    RuleEntry("access_denied_burst", frozenset({K.GATE}), S.WARNING, C.ACCESS, "多次刷卡被拒",
              "Repeated access denials"),
    RuleEntry("dual_control_violation", frozenset({K.CHEM_CABINET}), S.MAJOR, C.CHEMICAL, "危化品柜违反双人双锁",
              "Dual-control violation", auto_ticket=AutoTicket(PolicyTrigger.RAISED, HazardLevel.MAJOR)),
    RuleEntry("cabinet_open_long", frozenset({K.CHEM_CABINET}), S.WARNING, C.CHEMICAL, "危化品柜长时间开启",
              "Chemical cabinet open too long"),
    RuleEntry("chem_leak", frozenset({K.CHEM_CABINET}), S.MAJOR, C.CHEMICAL, "危化品泄漏", "Chemical leak"),
    RuleEntry("flammable_gas", frozenset({K.CHEM_CABINET}), S.CRITICAL, C.CHEMICAL, "可燃气体浓度超限",
              "Flammable gas", _UNACKED),
    RuleEntry("ventilation_fault", frozenset({K.CHEM_CABINET}), S.MAJOR, C.CHEMICAL, "通风故障",
              "Ventilation fault"),
    RuleEntry("fire_lane_blocked", frozenset({K.CAMERA}), S.MAJOR, C.FIRE, "消防通道堵塞", "Fire lane blocked",
              auto_ticket=AutoTicket(PolicyTrigger.REPEATED, HazardLevel.MAJOR, count=3, window_s=7 * DAY_S)),
    RuleEntry("device_offline", _ALL, S.WARNING, C.DEVICE, "设备离线", "Device offline",
              auto_ticket=AutoTicket(PolicyTrigger.PERSISTING, HazardLevel.GENERAL, after_s=DAY_S)),
    RuleEntry("device_fault", _ALL, S.WARNING, C.DEVICE, "设备故障", "Device fault",
              auto_ticket=AutoTicket(PolicyTrigger.PERSISTING, HazardLevel.GENERAL, after_s=DAY_S)),
    RuleEntry("tamper", _ALL, S.MAJOR, C.DEVICE, "设备被拆动", "Device tampered"),
    RuleEntry("low_battery", frozenset({K.SMOKE, K.TEMPERATURE, K.PANIC}), S.INFO, C.DEVICE, "电池电量低",
              "Low battery"),
    RuleEntry("clock_skew", _ALL, S.INFO, C.DEVICE, "设备时钟偏差", "Device clock skew"),
    # Raised by the ingest pipeline for traffic from a device outside the inventory, not by a rule.
    RuleEntry("unknown_device", frozenset(), S.WARNING, C.DEVICE, "未登记设备", "Unknown device"),
)  # fmt: skip

RULES: Mapping[str, RuleEntry] = {entry.name: entry for entry in _ENTRIES}


def rule_entry(name: str) -> RuleEntry:
    """The catalogue row of rule `name`; KeyError names the rule when it is not in the catalogue."""
    return RULES[name]


def rules_escalating(escalation: Escalation) -> list[str]:
    """The names of the rules with this escalation, in catalogue order."""
    return [entry.name for entry in _ENTRIES if entry.escalation is escalation]
