"""When to try again after a failed write: exponential backoff with jitter, or the server's word."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime


class Backoff:
    """Delays that double from `base_s` up to `max_s`, each drawn from [half, all] of that.

    The jitter is for a district: after its TSDB comes back, hundreds of gateways that failed
    at the same second must not all retry at the same second. A server's `Retry-After` is a
    floor: the delay is that plus up to a quarter more, for the same reason.
    """

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self, retry_after_s: float | None = None) -> float:
        ceiling = min(self.max_s, self.base_s * 2**self.attempt)
        self.attempt += 1
        if retry_after_s is not None:
            return retry_after_s * self._rng.uniform(1.0, 1.25)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
