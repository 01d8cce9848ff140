"""Notification channels and escalation, as declared in the gateway config (`notify:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analytics.alerts import Severity
from analytics.rules.catalogue import Escalation, rules_escalating

ChannelFormat = Literal["json", "dingtalk", "wecom"]


class ChannelConfig(BaseModel):
    """One webhook. `json` is our generic JSON, HMAC-signed with `secret`; `dingtalk` and `wecom` are
    the group-robot formats (DingTalk signs the URL with `secret` when set, its 加签 mode)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    url: str = Field(pattern=r"^https?://")
    format: ChannelFormat = "json"
    message: Literal["text", "markdown"] = "markdown"
    secret: str | None = None
    language: Literal["zh-CN", "en"] = "zh-CN"
    # Outside channels (leaders, bureau, police, robots) never receive drill-tagged alerts.
    outside: bool = True
    timeout_s: float = Field(default=5.0, gt=0)


class NotifyConfig(BaseModel):
    """Who hears about which alert, and when (SPEC section 6)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[ChannelConfig] = Field(default_factory=list)
    # tiers[0] hears first; an unacknowledged alert of `escalate_severities` moves one tier up
    # every `escalate_after_s` (security room -> school leaders -> bureau).
    tiers: list[list[str]] = Field(default_factory=list)
    notify_severities: list[Severity] = Field(default_factory=lambda: [Severity.CRITICAL, Severity.MAJOR])
    escalate_severities: list[Severity] = Field(default_factory=lambda: [Severity.CRITICAL])
    escalate_after_s: float = Field(default=60.0, gt=0)
    # Rules that skip the wait and go to the second tier at once (the catalogue's AT_ONCE:
    # fire_confirmed).
    immediate_rules: list[str] = Field(default_factory=lambda: rules_escalating(Escalation.AT_ONCE))
    # Rules sent to the police channels at once, whatever the tiers say (the catalogue's POLICE:
    # panic_pressed).
    police_rules: list[str] = Field(default_factory=lambda: rules_escalating(Escalation.POLICE))
    police: list[str] = Field(default_factory=list)
    # Overdue major hazards (挂牌督办) go here; empty means the last tier (the bureau).
    hazard_channels: list[str] = Field(default_factory=list)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=50, ge=1)
    keep_sent_days: float = Field(default=7.0, gt=0)  # delivered messages are pruned after this

    @model_validator(mode="after")
    def _channels_exist(self) -> NotifyConfig:
        names = [channel.name for channel in self.channels]
        if len(names) != len(set(names)):
            raise ValueError("channel names must be unique")
        for where, used in [
            ("police", self.police),
            *((f"tiers[{i}]", tier) for i, tier in enumerate(self.tiers)),
        ]:
            unknown = sorted(set(used) - set(names))
            if unknown:
                raise ValueError(f"{where} names unknown channels {unknown} (known: {sorted(names)})")
        return self

    def hazard_targets(self) -> list[str]:
        return self.hazard_channels or (self.tiers[-1] if self.tiers else [])

    def channel(self, name: str) -> ChannelConfig | None:
        return next((channel for channel in self.channels if channel.name == name), None)
