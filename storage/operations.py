"""The store's write operations: one small frozen dataclass per kind of write.

Each is applied by the handler `storage.sqlite` registers for its type with the writer; none
carries SQL or a string naming what to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from storage.history import MaintenancePlan

ReadingRow = tuple[str, str, float, float]  # device_id, metric, ts, value
DeviceStateRow = tuple[str, str, int | None, float | None, float | None, str]


@dataclass(frozen=True, slots=True)
class Indivisible:
    def split(self) -> Sequence[Any]:
        return ()


@dataclass(frozen=True, slots=True)
class InsertReadings:
    rows: Sequence[ReadingRow]

    def split(self) -> Sequence[InsertReadings]:
        return [InsertReadings((row,)) for row in self.rows] if len(self.rows) > 1 else ()


@dataclass(frozen=True, slots=True)
class InsertEvent(Indivisible):
    device_id: str
    kind: str
    name: str
    ts: float
    attrs_json: str


@dataclass(frozen=True, slots=True)
class InsertStatusChange(Indivisible):
    device_id: str
    online: bool
    ts: float
    reason: str


@dataclass(frozen=True, slots=True)
class InsertDeadLetter(Indivisible):
    received_at: float
    source: str
    device_id: str
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SaveDeviceStates:
    rows: Sequence[DeviceStateRow]

    def split(self) -> Sequence[SaveDeviceStates]:
        return [SaveDeviceStates((row,)) for row in self.rows] if len(self.rows) > 1 else ()


@dataclass(frozen=True, slots=True)
class SaveSeqWindows:
    """One lane's seen seqs (`SeqWindow.dump()`) of some devices; the other lanes' are left alone."""

    lane: str
    rows: Sequence[tuple[str, str]]  # device_id, window

    def split(self) -> Sequence[SaveSeqWindows]:
        return [SaveSeqWindows(self.lane, (row,)) for row in self.rows] if len(self.rows) > 1 else ()


@dataclass(frozen=True, slots=True)
class SaveSessionFlags:
    rows: Sequence[tuple[str, int, str | None, float | None]]  # device_id, clock_skewed, status, status_ts

    def split(self) -> Sequence[SaveSessionFlags]:
        return [SaveSessionFlags((row,)) for row in self.rows] if len(self.rows) > 1 else ()


@dataclass(frozen=True, slots=True)
class SaveAlert(Indivisible):
    """An alert's row at `version`; an older version arriving later never overwrites a newer one."""

    row: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class AppendAudit(Indivisible):
    ts: float
    actor: str
    entity: str
    entity_id: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class SaveRuleState(Indivisible):
    saved_at: float
    state: bytes


@dataclass(frozen=True, slots=True)
class SetMeta(Indivisible):
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Maintain(Indivisible):
    """One stage of a bounded pass of rollups, retention and disk budget, planned on a reader
    (`storage.history`): first `fold`, then `retire`; if it fails, the caller hears it and the
    next pass retries."""

    plan: MaintenancePlan
    stage: Literal["fold", "retire"]
    refusal_to_caller: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class EnqueueNotification(Indivisible):
    """A message for the notification outbox; it commits with the alert change that caused it."""

    channel: str
    body: bytes
    alert_id: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Transaction(Indivisible):
    """A repository's read-check-write (a ticket saved only at the version it was read at), run
    on the writer's connection in its transaction; its result or its error goes to the caller."""

    apply: Callable[[sqlite3.Connection], Any]
    refusal_to_caller: ClassVar[bool] = True
