"""Query parameters the REST endpoints share: times and bucket sizes."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated

from fastapi import HTTPException, Query
from fastapi import Path as PathParam

from api.bounds import MAX_TS, NAME_CHARS

_STEP = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_STEP_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_STEP_S = 366 * 86400.0
# Query texts are matched against ids and names, never stored: bounded so the schema says so.
DeviceIdPath = Annotated[str, PathParam(max_length=NAME_CHARS)]
TimeQuery = Annotated[str | None, Query(max_length=40, description="Unix seconds or RFC 3339")]
NameQuery = Annotated[str | None, Query(max_length=NAME_CHARS)]


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds or RFC 3339 text; 422 naming the parameter otherwise."""
    if value is None:
        return None
    try:
        ts = float(value)
    except ValueError:
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError):
            raise HTTPException(
                422, f"{name}: expected Unix seconds or RFC 3339 time, got {value!r}"
            ) from None
    # JSON has no NaN or infinity, and nothing is stored outside 1970..2100.
    if not 0 <= ts <= MAX_TS:
        raise HTTPException(422, f"{name}: expected a time between 1970 and 2100, got {value!r}")
    return ts


def parse_step(value: str | None) -> float | None:
    if value is None:
        return None
    match = _STEP.match(value)
    step_s = float(match.group(1)) * _STEP_UNITS[match.group(2)] if match else math.nan
    if not 0 < step_s <= MAX_STEP_S:
        raise HTTPException(
            422, f"step: expected a duration from 1 s to 366 d such as 60, 5m or 1h, got {value!r}"
        )
    return step_s
