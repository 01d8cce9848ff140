"""The pure core of polling one device: outcomes in, normalized records and counters out.

No I/O and no clock of its own: the driver passes timestamps, so the online/offline state
machine, alarm-bit edges and log rate limiting are tested with plain numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from analytics.records import DeviceEvent, DeviceKind, DeviceState, Reading, Record, StatusChange
from drivers.modbus.errors import FailureKind, PollFailure
from drivers.modbus.registers import DeviceModel, Sample


@dataclass
class DeviceStats:
    """Counters of one device, as `ModbusDriver.stats()` reports them."""

    polls: int = 0
    good_reads: int = 0
    failed_polls: int = 0
    requests: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    disconnects: int = 0
    non_finite: int = 0
    exceptions: Counter[int] = field(default_factory=Counter)
    online: bool = False
    consecutive_failures: int = 0
    last_cycle_s: float = 0.0

    def count_failure(self, failure: PollFailure) -> None:
        """Count one failed request (every attempt, retries included)."""
        if failure.kind is FailureKind.TIMEOUT:
            self.timeouts += 1
        elif failure.kind is FailureKind.CRC:
            self.crc_errors += 1
        elif failure.kind is FailureKind.DISCONNECT:
            self.disconnects += 1
        else:
            self.exceptions[failure.exception_code] += 1

    def as_dict(self) -> dict[str, int | float | bool]:
        flat: dict[str, int | float | bool] = {
            "polls": self.polls,
            "good_reads": self.good_reads,
            "failed_polls": self.failed_polls,
            "requests": self.requests,
            "timeouts": self.timeouts,
            "crc_errors": self.crc_errors,
            "disconnects": self.disconnects,
            "non_finite": self.non_finite,
            "exceptions": sum(self.exceptions.values()),
            "online": self.online,
            "consecutive_failures": self.consecutive_failures,
            "last_cycle_s": self.last_cycle_s,
        }
        for code, count in sorted(self.exceptions.items()):
            flat[f"exception_{code}"] = count
        return flat


class DevicePoller:
    """Turns each poll of one device into records: readings, alarm-bit events, status changes.

    Args:
        device_id: the inventory id, used in every record.
        kind: the inventory kind, so the analytics rules for that kind apply.
        model: the register map the samples were decoded with.
        offline_after_failures: failed polls in a row before the device is reported offline.
        log_interval_s: a failure that repeats is logged again only after this long.
    """

    def __init__(
        self,
        device_id: str,
        kind: DeviceKind,
        model: DeviceModel,
        offline_after_failures: int,
        log_interval_s: float = 60.0,
    ) -> None:
        self.device_id = device_id
        self.kind = kind
        self.model = model
        self.offline_after_failures = offline_after_failures
        self.log_interval_s = log_interval_s
        self.stats = DeviceStats()
        self._state: DeviceState | None = None
        self._flags: dict[str, bool] = {}
        self._logged: tuple[str, float] | None = None

    def on_sample(self, sample: Sample, ts: float, cycle_s: float) -> list[Record]:
        """A poll read the whole map: readings, events for alarm-bit edges, maybe ONLINE."""
        self._count_poll(cycle_s)
        self.stats.good_reads += 1
        self.stats.non_finite += len(sample.rejected)
        self.stats.consecutive_failures = 0
        self._logged = None
        records: list[Record] = []
        if self._state is not DeviceState.ONLINE:
            self._state = DeviceState.ONLINE
            self.stats.online = True
            records.append(StatusChange(self.device_id, self.kind, DeviceState.ONLINE, ts))
        records += [
            Reading(self.device_id, self.kind, metric, ts, value) for metric, value in sample.values.items()
        ]
        records += self._flag_events(sample, ts)
        return records

    def on_failure(self, failure: PollFailure, ts: float, cycle_s: float) -> list[Record]:
        """A poll failed after its retries: OFFLINE once enough polls in a row have failed."""
        self._count_poll(cycle_s)
        self.stats.failed_polls += 1
        self.stats.consecutive_failures += 1
        failures = self.stats.consecutive_failures
        if failures < self.offline_after_failures or self._state is DeviceState.OFFLINE:
            return []
        self._state = DeviceState.OFFLINE
        self.stats.online = False
        reason = f"{failures} failed polls: {failure.describe()}"
        return [StatusChange(self.device_id, self.kind, DeviceState.OFFLINE, ts, reason)]

    def should_log(self, failure: PollFailure, now: float) -> bool:
        """Log a failure when its kind or code changes, else at most once per log interval."""
        what = failure.describe()
        if self._logged is not None:
            logged_what, logged_at = self._logged
            if logged_what == what and now - logged_at < self.log_interval_s:
                return False
        self._logged = (what, now)
        return True

    def _count_poll(self, cycle_s: float) -> None:
        self.stats.polls += 1
        self.stats.last_cycle_s = cycle_s

    def _flag_events(self, sample: Sample, ts: float) -> list[Record]:
        events: list[Record] = []
        for flag in self.model.flags:
            state = sample.flags[flag.name]
            previous = self._flags.get(flag.name)
            self._flags[flag.name] = state
            # A flag already set at the first poll is reported; one already clear is not news.
            if state == previous or (previous is None and not state):
                continue
            name = flag.event_on if state else flag.event_off
            if name:
                attrs = {**flag.attrs, "flag": flag.name}
                events.append(DeviceEvent(self.device_id, self.kind, name, ts, attrs))
        return events
