"""Time-zone names in config: IANA names, checked once where the config is validated."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def known_zone(value: str) -> str:
    """`value` if it names a time zone this machine knows; ValueError saying what is expected."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (expected an IANA name such as 'Asia/Shanghai')"
        ) from None
    return value


ZoneName = Annotated[str, AfterValidator(known_zone)]
