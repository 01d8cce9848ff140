"""What the API reads from: the store, the alert service and live device state, injected at start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
