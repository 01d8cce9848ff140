"""Query parameters the REST endpoints share: times and bucket sizes."""

from __future__ import annotations

import re
from datetime import datetime

from fastapi import HTTPException

_STEP = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_STEP_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds or RFC 3339 text; 422 naming the parameter otherwise."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise HTTPException(422, f"{name}: expected Unix seconds or RFC 3339 time, got {value!r}") from None


def parse_step(value: str | None) -> float | None:
    if value is None:
        return None
    match = _STEP.match(value)
    if not match or float(match.group(1)) <= 0:
        raise HTTPException(422, f"step: expected a positive duration such as 60, 5m or 1h, got {value!r}")
    return float(match.group(1)) * _STEP_UNITS[match.group(2)]
