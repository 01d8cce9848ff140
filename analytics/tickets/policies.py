"""Automatic tickets by policy (SPEC section 7 defaults, from the rule catalogue), as data plus one
function per trigger.

A policy names an alert rule and when an alert of that rule becomes a hazard: at once, when
its condition has lasted a while, or when the same subject raised it often enough recently.
Each trigger is a pure function of the policy, the alert, what is known about its history and
the current time, so a test drives it with a controllable clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analytics.alerts import Alert
from analytics.hazards import HazardCategory, HazardLevel
from analytics.hazards import PolicyTrigger as PolicyTrigger  # re-exported with the policies
from analytics.rules.catalogue import DAY_S, RULES
from analytics.texts import alert_title
from analytics.tickets.model import TicketDraft


class TicketPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str = Field(min_length=1)
    trigger: PolicyTrigger
    category: HazardCategory
    level: HazardLevel
    enabled: bool = True
    after_s: float = Field(default=0.0, ge=0)
    count: int = Field(default=1, ge=1)
    window_s: float = Field(default=0.0, ge=0)
    deadline_s: float = Field(default=7 * DAY_S, gt=0, description="time allowed to remediate")


def default_policies() -> dict[str, TicketPolicy]:
    """One policy per rule with an automatic ticket in the rule catalogue, named after the rule."""
    return {
        entry.name: TicketPolicy(
            rule=entry.name,
            trigger=entry.auto_ticket.trigger,
            category=entry.category,
            level=entry.auto_ticket.level,
            after_s=entry.auto_ticket.after_s,
            count=entry.auto_ticket.count,
            window_s=entry.auto_ticket.window_s,
        )
        for entry in RULES.values()
        if entry.auto_ticket is not None
    }


class PolicyConfigError(ValueError):
    pass


def configure_policies(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, TicketPolicy]:
    """Defaults with `{name: {field: value}}` from config applied; a new name must be a whole policy."""
    policies = default_policies()
    for name, fields in overrides.items():
        base = policies[name].model_dump() if name in policies else {}
        try:
            policies[name] = TicketPolicy.model_validate({**base, **fields})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise PolicyConfigError(f"ticket_policies.{name}.{where}: {error['msg']}") from None
    return policies


@dataclass(frozen=True, slots=True)
class AlertHistory:
    """What the caller knows about an alert beyond the alert itself.

    Args:
        active_since_ts: when the alert's condition last became active.
        occurrence_ts: when the same rule and subject were raised within the policy's window.
    """

    active_since_ts: float
    occurrence_ts: Sequence[float] = ()


def due_when_raised(policy: TicketPolicy, alert: Alert, history: AlertHistory, now: float) -> bool:
    return alert.condition_active


def due_when_persisting(policy: TicketPolicy, alert: Alert, history: AlertHistory, now: float) -> bool:
    return alert.condition_active and now - history.active_since_ts >= policy.after_s


def due_when_repeated(policy: TicketPolicy, alert: Alert, history: AlertHistory, now: float) -> bool:
    recent = [ts for ts in history.occurrence_ts if now - policy.window_s <= ts <= now]
    return alert.condition_active and len(recent) >= policy.count


PolicyCheck = Callable[[TicketPolicy, Alert, AlertHistory, float], bool]
TRIGGER_CHECKS: Mapping[PolicyTrigger, PolicyCheck] = {
    PolicyTrigger.RAISED: due_when_raised,
    PolicyTrigger.PERSISTING: due_when_persisting,
    PolicyTrigger.REPEATED: due_when_repeated,
}


def first_due_policy(
    policies: Mapping[str, TicketPolicy], alert: Alert, history: AlertHistory, now: float
) -> str | None:
    """The name of the first enabled policy that turns this alert into a ticket now, if any."""
    for name, policy in policies.items():
        if (
            policy.enabled
            and policy.rule == alert.rule
            and TRIGGER_CHECKS[policy.trigger](policy, alert, history, now)
        ):
            return name
    return None


def draft_from_policy(
    name: str, policy: TicketPolicy, alert: Alert, location: str, now: float
) -> TicketDraft:
    title = alert_title(alert, "zh-CN")
    if policy.trigger is PolicyTrigger.REPEATED:
        title += f"（{policy.window_s / DAY_S:g} 天内 {policy.count} 次）"
    elif policy.trigger is PolicyTrigger.PERSISTING:
        title += f"（持续超过 {policy.after_s / 3600:g} 小时）"
    return TicketDraft(
        title=title,
        category=policy.category,
        level=policy.level,
        location=location,
        discovered_at=now,
        discovered_by="system",
        source=f"policy:{name}",
        rule=alert.rule,
        subject=alert.subject,
        device_id=alert.device_id,
        deadline_ts=now + policy.deadline_s,
    )
