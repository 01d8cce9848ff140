"""JSON every client can parse: no NaN or infinity (JavaScript's JSON.parse refuses them) and a
bounded depth (deeper structures make serialisers recurse until they fail)."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 16
TOO_DEEP = "…"  # stands in for whatever lies below MAX_DEPTH


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` with non-finite numbers as null, nesting below MAX_DEPTH cut, other types as text."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {str(key): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, depth + 1) for item in value]
    return str(value)


def dumps(message: Any) -> tuple[str, bool]:
    """Strict JSON text for `message`, and whether it had to be repaired with json_safe."""
    try:
        return json.dumps(message, ensure_ascii=False, allow_nan=False, default=str), False
    except (ValueError, RecursionError):
        return json.dumps(json_safe(message), ensure_ascii=False, allow_nan=False), True
