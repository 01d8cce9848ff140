"""User-facing alert texts in zh-CN (the operators' language) and en."""

from __future__ import annotations

from analytics.alerts import Alert

LANGUAGES = ("zh-CN", "en")

RULE_TITLES: dict[str, tuple[str, str]] = {
    "fire_alarm": ("火灾报警", "Fire alarm"),
    "smoke_prealarm": ("烟雾预警", "Smoke pre-alarm"),
    "fire_confirmed": ("火警确认", "Fire confirmed"),
    "heat_high": ("温度过高", "High temperature"),
    "heat_rate_of_rise": ("温升过快", "Rapid temperature rise"),
    "electrical_leakage": ("电气剩余电流超限", "Electrical leakage"),
    "cable_overtemp": ("线缆温度过高", "Cable over-temperature"),
    "panic_pressed": ("一键报警", "Panic button pressed"),
    "gate_forced": ("门被强行打开", "Gate forced open"),
    "gate_held_open": ("门长时间未关", "Gate held open"),
    "after_hours_access": ("非上学时段通行", "After-hours access"),
    "access_denied_burst": ("多次刷卡被拒", "Repeated access denials"),
    "dual_control_violation": ("危化品柜违反双人双锁", "Dual-control violation"),
    "cabinet_open_long": ("危化品柜长时间开启", "Chemical cabinet open too long"),
    "chem_leak": ("危化品泄漏", "Chemical leak"),
    "flammable_gas": ("可燃气体浓度超限", "Flammable gas"),
    "ventilation_fault": ("通风故障", "Ventilation fault"),
    "fire_lane_blocked": ("消防通道堵塞", "Fire lane blocked"),
    "device_offline": ("设备离线", "Device offline"),
    "device_fault": ("设备故障", "Device fault"),
    "tamper": ("设备被拆动", "Device tampered"),
    "low_battery": ("电池电量低", "Low battery"),
    "clock_skew": ("设备时钟偏差", "Device clock skew"),
    "unknown_device": ("未登记设备", "Unknown device"),
}


def alert_title(alert: Alert, language: str) -> str:
    zh, en = RULE_TITLES.get(alert.rule, (alert.rule, alert.rule))
    return zh if language == "zh-CN" else en


def alert_message(alert: Alert, location: str, language: str) -> str:
    title = alert_title(alert, language)
    return f"{title}：{location}" if language == "zh-CN" else f"{title}: {location}"
