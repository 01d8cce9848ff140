"""The `tickets` section of the gateway config: people, policies, photos, sweep interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from analytics.tickets.people import PersonConfig
from analytics.tickets.policies import TicketPolicy, configure_policies


class TicketsConfig(BaseModel):
    """Declared once in gateway/config.py as `tickets: TicketsConfig = TicketsConfig()`.

    `policies` overrides the defaults by name, `{device_offline: {after_s: 43200}}`, or adds a
    whole new policy under a new name.
    """

    model_config = ConfigDict(extra="forbid")

    people: list[PersonConfig] = Field(default_factory=list)
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    photo_dir: Path = Path("data/ticket-photos")
    photo_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    sweep_interval_s: float = Field(default=60.0, gt=0)

    @field_validator("people")
    @classmethod
    def _no_duplicate_ids(cls, value: list[PersonConfig]) -> list[PersonConfig]:
        seen: set[str] = set()
        for person in value:
            if person.id in seen:
                raise ValueError(f"person id {person.id!r} appears twice")
            seen.add(person.id)
        return value

    @field_validator("policies")
    @classmethod
    def _policies_valid(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        configure_policies(value)  # raises PolicyConfigError (a ValueError) naming the key
        return value

    def build_policies(self) -> dict[str, TicketPolicy]:
        return configure_policies(self.policies)
