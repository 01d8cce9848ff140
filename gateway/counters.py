"""Process-wide counters for /metrics and the health endpoint, plus a log limiter."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable


class Counters:
    """Named monotonic counters, with optional labels folded into the name (`dead_letters{reason}`)."""

    def __init__(self) -> None:
        self.values: Counter[tuple[str, str]] = Counter()

    def inc(self, name: str, label: str = "", amount: int = 1) -> None:
        self.values[(name, label)] += amount

    def get(self, name: str, label: str = "") -> int:
        return self.values[(name, label)]

    def total(self, name: str) -> int:
        return sum(count for (key, _), count in self.values.items() if key == name)

    def by_label(self, name: str) -> dict[str, int]:
        return {label: count for (key, label), count in self.values.items() if key == name}


class LogLimiter:
    """Allows one log line per key per `interval_s`, so one bad device cannot flood the log."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self.suppressed: Counter[str] = Counter()

    def allow(self, key: str) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self.suppressed[key] += 1
            return False
        self._last[key] = now
        if len(self._last) > 10000:  # unknown devices are unbounded; forget the oldest half
            for old in sorted(self._last, key=self._last.__getitem__)[:5000]:
                del self._last[old]
        return True
