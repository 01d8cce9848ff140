"""What the API refused or repaired, counted by reason for /metrics and logged without flooding."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger(__name__)


class Refusals:
    """Counts each refusal by reason; logs a reason at most once per `log_interval_s`.

    A client hammering the API with oversize or unauthenticated requests must show up in the
    counters without writing a log line per request.
    """

    def __init__(self, log_interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[str] = Counter()
        self._log_interval_s = log_interval_s
        self._clock = clock
        self._logged_at: dict[str, float] = {}

    def record(self, reason: str, detail: str) -> None:
        self.counts[reason] += 1
        now = self._clock()
        last = self._logged_at.get(reason)
        if last is None or now - last >= self._log_interval_s:
            self._logged_at[reason] = now
            log.warning("api refused (%s, %d so far): %s", reason, self.counts[reason], detail)
