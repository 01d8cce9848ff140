"""What a hazard (隐患) is, for the rule catalogue and the tickets alike (SPEC section 7)."""

from __future__ import annotations

from enum import StrEnum


class HazardCategory(StrEnum):
    FIRE = "fire"
    ELECTRICAL = "electrical"
    CHEMICAL = "chemical"
    ACCESS = "access"
    VIDEO = "video"
    DEVICE = "device"


class HazardLevel(StrEnum):
    GENERAL = "general"  # 一般隐患
    MAJOR = "major"  # 重大隐患: escalated to the bureau when overdue (挂牌督办)


class PolicyTrigger(StrEnum):
    """When an alert becomes a hazard with a ticket of its own, by policy."""

    RAISED = "raised"  # as soon as the alert is raised
    PERSISTING = "persisting"  # the alert's condition has lasted `after_s`
    REPEATED = "repeated"  # the subject raised the rule `count` times within `window_s`
