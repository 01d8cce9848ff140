"""The gateway's services: each one thing that runs, with `start` and `stop`.

The runtime starts them in order and stops them in the same order (ingest first, so nothing new
arrives while the rest winds down). A service that fails to start stops the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI

from drivers.mqtt.client import MqttEndpoint, MqttSubscriber
from gateway.bootstrap import Core
from gateway.config import BrokerConfig
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0
# Each maintenance pass dirties about a page per series and tier however much it folds, so fewer,
# larger passes cost the writer less (bench/history.py). Queries merge the readings not yet
# rolled up, so the lag does not show in them.
MAINTENANCE_INTERVAL_S = 600.0
# Rules' working state (hold timers, sample counts) is saved this often and at shutdown, so a
# power cut costs at most this much of it.
RULE_STATE_SAVE_INTERVAL_S = 60.0
# Past this many uncommitted rows the gateway stops reading telemetry until SQLite catches up.
MAX_STORE_BACKLOG_ROWS = 100_000
# The alarm lane's own bound (it is not held back by a telemetry backlog, which would queue
# alarms behind it again; only a flood of uncommitted writes this large pauses it).
MAX_STORE_BACKLOG_ROWS_ALARMS = 150_000


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class BackgroundTask:
    """A coroutine run as a task from `start` until `stop` cancels it."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class MqttIngest:
    """The two broker sessions: alarms (events, status) never queue behind a telemetry backlog.

    While SQLite writes fail (disk full, I/O error) neither lane reads: messages wait at the
    broker, unacknowledged, and reading resumes by itself once a write commits again.
    """

    name = "mqtt"

    def __init__(self, broker: BrokerConfig, campus_id: str, core: Core, store: SqliteStore) -> None:
        loop = asyncio.get_running_loop()
        pipeline = core.pipeline
        lanes = {
            "alarms": (f"campus/{campus_id}/+/+/event", f"campus/{campus_id}/+/+/status"),
            "telemetry": (f"campus/{campus_id}/+/+/telemetry",),
        }

        def lane(
            name: str, may_read: Callable[[], bool], before_chunk: Callable[[], None] | None = None
        ) -> MqttSubscriber:
            urgent = name == "alarms"  # alarms commit ahead of a telemetry backlog
            return MqttSubscriber(
                MqttEndpoint(
                    host=broker.host,
                    port=broker.port,
                    client_id=f"{broker.client_id}-{name}",
                    topic_filters=lanes[name],
                    username=broker.lane_username(name),
                    password=broker.password,
                    qos=broker.qos,
                    mqtt_v5=broker.mqtt_version == 5,
                    session_expiry_s=broker.session_expiry_s,
                ),
                loop,
                lambda batch: pipeline.handle_mqtt_batch(batch, urgent=urgent),
                broker.ack_after_commit,
                may_read=may_read,
                before_chunk=before_chunk,
            )

        # The bounds are read at call time, so an operator (or a test) can change them live.
        alarms = lane("alarms", lambda: store.healthy and store.backlog_rows < MAX_STORE_BACKLOG_ROWS_ALARMS)
        # Before each chunk of telemetry, whatever waits in the alarm lane is taken first.
        telemetry = lane(
            "telemetry",
            lambda: store.healthy and store.backlog_rows < MAX_STORE_BACKLOG_ROWS,
            before_chunk=alarms.read_if_ready,
        )
        self.subscribers = [alarms, telemetry]

    async def start(self) -> None:
        for subscriber in self.subscribers:
            subscriber.start()

    async def stop(self) -> None:
        for subscriber in self.subscribers:
            subscriber.stop()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: the gateway, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    """The HTTP API and live page; `start` returns once it listens (or raises the bind error)."""

    name = "api"

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self._server = _EmbeddedServer(
            uvicorn.Config(
                app, host=host, port=port, log_level="warning", lifespan="off", ws_ping_interval=20
            )
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._server.serve(), name="api")
        while not self._server.started and not self.task.done():
            await asyncio.sleep(0.02)
        if self.task.done():
            self.task.result()  # raises the bind error, for example

    async def stop(self) -> None:
        self._server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.task, 5)


class Scheduler(BackgroundTask):
    """Once a second: time-driven rules and device state; and, less often, store maintenance,
    the rules' working state and the ticket sweep."""

    def __init__(self, core: Core, store: SqliteStore, ticket_sweep_s: float) -> None:
        super().__init__("scheduler", self._forever)
        self._core = core
        self._store = store
        self._ticket_sweep_s = ticket_sweep_s

    def save_rule_state(self) -> None:
        self._store.save_rule_state(time.time(), pickle.dumps(self._core.pipeline.engine.state()))

    async def _forever(self) -> None:
        core, pipeline = self._core, self._core.pipeline
        last_maintenance = last_sweep = 0.0
        last_rule_save = time.time()
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            try:
                pipeline.tick()
                now = time.time()
                if now - last_maintenance >= MAINTENANCE_INTERVAL_S:
                    last_maintenance = now
                    # Planned on a reader in a worker thread; the writer only applies the plan.
                    await asyncio.to_thread(self._store.maintain, now)
                if now - last_rule_save >= RULE_STATE_SAVE_INTERVAL_S:
                    last_rule_save = now
                    self.save_rule_state()
                if now - last_sweep >= self._ticket_sweep_s:
                    last_sweep = now
                    await asyncio.wrap_future(
                        core.ticket_desk.submit(core.tickets.sweep, pipeline.alerts.open_alerts())
                    )
            except Exception:
                log.exception("periodic tick failed; retrying next second")
