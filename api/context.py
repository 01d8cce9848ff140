"""What the API reads from: the store, the alert service and live device state, injected at start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics.alerts import AlertService
from analytics.device_tracker import DeviceTracker
from analytics.devices import Inventory
from analytics.incidents import IncidentTracker
from analytics.modes import ModeBook
from api.auth import TokenBook
from api.refusals import Refusals
from api.stream import Broadcaster
from api.tickets import TicketApiContext
from storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from api.stream import Broadcaster


@dataclass
class ApiContext:
    campus_id: str
    campus_name: str
    inventory: Inventory
    tracker: DeviceTracker
    alerts: AlertService
    store: SqliteStore
    broadcaster: Broadcaster
    tokens: TokenBook
    health: Callable[[], dict[str, Any]]
    counters: Callable[[], Mapping[tuple[str, str], int]]
    snapshot_dir: Path | None = None
    tickets: TicketApiContext | None = None
    incidents: IncidentTracker | None = None
    modes: ModeBook | None = None
    # Origins besides the page's own whose pages may open the live stream ("https://host:port").
    allowed_origins: tuple[str, ...] = ()

    @property
    def refusals(self) -> Refusals:
        """The API's one record of refused requests, shared with the stream's repaired messages."""
        return self.broadcaster.refusals

    plan_dir: Path | None = None  # floor-plan images, beside the database
    # Alarm evidence (issue 18): the fire-lane worker's folder, and how its links are checked.
    evidence_dir: Path | None = None
    evidence_link_secret: str | None = None
    evidence_answer_timeout_s: float = 5.0
    timezone: str = "Asia/Shanghai"  # the campus's, so the page shows times as exports do
