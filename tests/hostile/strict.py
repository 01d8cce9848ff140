"""JSON as a browser's `JSON.parse` takes it: no NaN, no Infinity (RFC 8259)."""

from __future__ import annotations

import json
from typing import Any


def _refuse(constant: str) -> Any:
    raise ValueError(f"invalid JSON constant {constant}")


def strict_loads(text: str | bytes) -> Any:
    return json.loads(text, parse_constant=_refuse)


def strict_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
