"""`unknown_device` alerts (SPEC 2), bounded: a flood of made-up device ids costs one alert.

Traffic from a device not in the inventory is quarantined (dead-lettered and listed by the API)
whatever this decides. The first `limit` unknown ids each raise their own alert, which is what a
stray device or a typo in the inventory needs; every further id is counted on one alert about
subject `BEYOND_LIMIT`. Memory stays bounded: at most `limit` + `tracked` ids are remembered.
"""

from __future__ import annotations

from collections.abc import Iterable

from analytics.alerts import AlertSignal
from analytics.rules.catalogue import rule_entry

MAX_UNKNOWN_DEVICE_ALERTS = 20
MAX_TRACKED_IDS = 10_000
# Not a device id: topics are split on "/", so no id can contain one.
BEYOND_LIMIT = "unknown/beyond-limit"
_ENTRY = rule_entry("unknown_device")


class UnknownDeviceAlerts:
    """Turns each quarantined message into the `unknown_device` signal it deserves, if any.

    Args:
        open_subjects: subjects of the `unknown_device` alerts still open (after a restart).
    """

    def __init__(
        self,
        open_subjects: Iterable[str] = (),
        limit: int = MAX_UNKNOWN_DEVICE_ALERTS,
        tracked: int = MAX_TRACKED_IDS,
    ) -> None:
        self._limit = limit
        self._tracked = tracked
        self._alerted = {subject for subject in open_subjects if subject != BEYOND_LIMIT}
        self._beyond: set[str] = set()
        self._capped = False

    def signal(self, device_id: str, topic: str, ts: float) -> AlertSignal | None:
        """The signal for one quarantined message, or None when it adds nothing to an open alert."""
        if device_id in self._alerted or len(self._alerted) < self._limit:
            self._alerted.add(device_id)
            return AlertSignal(_ENTRY.name, device_id, True, ts, _ENTRY.severity, device_id, {"topic": topic})
        if device_id in self._beyond or self._capped:
            return None
        if len(self._beyond) >= self._tracked:
            # Past this many, new ids can no longer be told from known ones: say so once, stop counting.
            self._capped = True
        else:
            self._beyond.add(device_id)
        details = {
            "quarantined_ids": len(self._beyond),
            "counting_stopped": self._capped,
            "limit": self._limit,
            "last_device_id": device_id,
            "last_topic": topic,
        }
        return AlertSignal(_ENTRY.name, BEYOND_LIMIT, True, ts, _ENTRY.severity, BEYOND_LIMIT, details)
