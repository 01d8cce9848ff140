"""Runs the gateway from validated config: one event loop, the core wired by `bootstrap`, and its
services (MQTT ingest, scheduler, notify, Modbus, GB/T 26875, fire-lane worker, API) started and
stopped in order."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from analytics.bus import MessageBus
from analytics.catalog import CAMERA_CODEC_NAMES, CAMERA_HEALTH_METRICS
from analytics.devices import Inventory
from analytics.incidents import IncidentTracker
from analytics.modes import ModeBook
from analytics.records import DeviceKind
from analytics.tickets import TicketService
from api.app import create_app
from api.auth import Principal, TokenBook
from api.context import ApiContext
from api.stream import Broadcaster
from api.tickets import TicketApiContext
from drivers.gb26875.receiver import Gb26875Receiver
from drivers.modbus import ModbusDriver
from drivers.mqtt.client import MqttSubscriber
from gateway.bootstrap import Core, bootstrap
from gateway.config import GatewayConfig
from gateway.counters import Counters
from gateway.notify.notifier import Notifier
from gateway.pipeline import Pipeline
from gateway.reports import device_availability_pct
from gateway.services import ApiServer, BackgroundTask, MqttIngest, Scheduler, Service
from gateway.supervisor import supervise
from sinks.influx import InfluxSink
from sinks.lines import LineEncoder
from sinks.mqtt import GatewayPublisher
from storage.deadband import Deadband
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)


class Gateway:
    """One campus gateway. `run()` until `stop()`; state is restored from the store on start."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.snapshot_dir: Path | None = None
        self.evidence_dir: Path | None = None
        if config.firelane_worker is not None:
            from gateway.firelane import load_worker_config  # OpenCV loads only when cameras are configured

            worker = load_worker_config(config.firelane_worker)
            self.snapshot_dir = worker.snapshot_dir
            self.evidence_dir = worker.evidence.dir if worker.evidence is not None else None
        self.inventory = Inventory(config.devices)
        self.counters = Counters()
        storage = config.storage
        self.store = SqliteStore(
            storage.sqlite_path,
            storage.retention_days,
            storage.rollup_retention_days,
            storage.rollup_1h_retention_days,
            config.store_disk_budget_mb,  # the sink's spool shares the budget
            {metric: Deadband(band.delta, band.max_interval_s) for metric, band in storage.deadband.items()},
        )
        self.broadcaster = Broadcaster()
        self.bus = MessageBus()
        self.modes = ModeBook(time.time)
        self.started_at = time.time()
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.core: Core | None = None
        self.subscribers: list[MqttSubscriber] = []
        self.influx_sink: InfluxSink | None = None
        self.publisher: GatewayPublisher | None = None

    # What tests and the API read of the core, once `run` has built it.
    @property
    def pipeline(self) -> Pipeline | None:
        return self.core.pipeline if self.core else None

    @property
    def tickets(self) -> TicketService | None:
        return self.core.tickets if self.core else None

    @property
    def notifier(self) -> Notifier | None:
        return self.core.notifier if self.core else None

    @property
    def incidents(self) -> IncidentTracker | None:
        return self.core.incidents if self.core else None

    @property
    def modbus(self) -> ModbusDriver | None:
        return self.core.modbus if self.core else None

    @property
    def gb26875(self) -> Gb26875Receiver | None:
        return self.core.gb26875 if self.core else None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        # Hand the GIL over every 1 ms instead of 5: the SQLite writer thread binding a large batch
        # must not keep an alarm waiting on the loop thread.
        sys.setswitchinterval(0.001)
        self.store.open()
        config = self.config
        core = self.core = bootstrap(
            config,
            self.inventory,
            self.store,
            self.bus,
            self.counters,
            self.broadcaster,
            self.modes,
            self.evidence_dir,
        )
        core.pipeline.tick()  # rules learn the gateway's clock before the first record arrives
        ingest = MqttIngest(config.broker, config.campus.id, core, self.store)
        self.subscribers = ingest.subscribers
        scheduler = Scheduler(core, self.store, config.tickets.sweep_interval_s)
        api = ApiServer(create_app(self._api_context(core)), config.api.host, config.api.port)
        services: list[Service] = [ingest, scheduler, BackgroundTask("notify", core.notifier.run)]
        if core.evidence is not None:
            services.insert(0, core.evidence)  # connected before the first alarm is read
        if core.modbus is not None:
            services.append(BackgroundTask("modbus", core.modbus.run))
        if core.gb26875 is not None:
            services.append(BackgroundTask("gb26875", core.gb26875.run))
        if config.firelane_worker is not None:
            # Vision runs in its own process so it can never stall ingest; it reports over MQTT.
            command = [sys.executable, "-m", "gateway.firelane", "firelane", "worker", "--config"]
            command.append(str(config.firelane_worker))
            services.append(BackgroundTask("firelane", lambda: supervise("fire-lane worker", command)))
        services += self._sinks()
        services.append(api)
        started: list[Service] = []
        try:
            for service in services:
                await service.start()
                started.append(service)
            log.info(
                "gateway for campus %s running; API on %s:%d",
                config.campus.id,
                config.api.host,
                config.api.port,
            )
            # What start-up built (modules, config, inventory, rules, the app) lives as long as
            # the process: keep it out of the collector's full passes, which otherwise walk it all
            # and stall the loop for 100 ms or more under load.
            gc.collect()
            gc.freeze()
            self.ready.set()
            stop_wait = asyncio.create_task(self._stop.wait())
            assert api.task is not None
            await asyncio.wait({api.task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
        finally:
            gc.unfreeze()
            for service in started:
                try:
                    await service.stop()
                except Exception:
                    log.exception("stopping %s failed", service.name)
            core.pipeline.tick()  # persist the latest device state
            # Hold timers and windows in flight survive a restart (after a crash, as of the last
            # periodic save; open alerts come back from the store either way).
            scheduler.save_rule_state()
            await asyncio.to_thread(core.ticket_desk.shutdown)
            await asyncio.to_thread(self.store.close)
            log.info("gateway stopped")

    def _sinks(self) -> list[Service]:
        """Forwarding upstream: the TSDB sink from the store, the gateway's topics for a bridge."""
        config, services = self.config, list[Service]()
        if (influx := config.sinks.influx) is not None:
            encoder = LineEncoder(config.campus.id, config.devices, influx.precision)
            self.influx_sink = InfluxSink(influx, self.store, encoder, self.counters.inc)
            services.append(BackgroundTask("sink-influx", self.influx_sink.run))
        if config.sinks.mqtt.enabled:
            broker = config.broker
            publisher = self.publisher = GatewayPublisher(
                config.sinks.mqtt,
                broker.host,
                broker.port,
                broker.username,
                broker.password,
                config.campus.id,
                self.inventory,
            )
            publisher.subscribe(self.bus)

            async def publish() -> None:
                publisher.start()
                try:
                    await asyncio.Event().wait()
                finally:
                    publisher.stop()

            services.append(BackgroundTask("sink-mqtt", publish))
        return services

    def _api_context(self, core: Core) -> ApiContext:
        tokens = TokenBook({t.sha256: Principal(t.name, t.role) for t in self.config.api.tokens})
        return ApiContext(
            campus_id=self.config.campus.id,
            campus_name=self.config.campus.name,
            inventory=self.inventory,
            tracker=core.pipeline.tracker,
            alerts=core.alerts,
            store=self.store,
            broadcaster=self.broadcaster,
            tokens=tokens,
            health=self.health,
            counters=lambda: self.counters.values,
            snapshot_dir=self.snapshot_dir,
            evidence_dir=self.evidence_dir,
            evidence_link_secret=self.config.evidence.link_secret,
            evidence_answer_timeout_s=self.config.evidence.answer_timeout_s,
            tickets=self._ticket_api_context(core),
            incidents=core.incidents,
            modes=self.modes,
            allowed_origins=tuple(self.config.api.allowed_origins),
            plan_dir=self.config.storage.sqlite_path.parent / "plans",
            timezone=self.config.campus.timezone,
        )

    def _beside_database(self, path: Path) -> Path:
        """Relative paths from a config built in code (demo, tests) live next to the database."""
        return path if path.is_absolute() else self.config.storage.sqlite_path.parent / path.name

    def _ticket_api_context(self, core: Core) -> TicketApiContext:
        config = self.config
        return TicketApiContext(
            service=core.tickets,
            clock=time.time,
            photo_dir=self._beside_database(config.tickets.photo_dir),
            timezone=ZoneInfo(config.campus.timezone),
            campus_name=config.campus.name or config.campus.id,
            photo_max_bytes=config.tickets.photo_max_bytes,
            availability_pct=lambda start, end: device_availability_pct(
                config.storage.sqlite_path, [device.id for device in config.devices], start, end
            ),
            desk=lambda call: core.ticket_desk.submit(call).result(),
        )

    def _store_health(self) -> dict[str, Any]:
        stats = self.store.writer.stats
        return {
            "healthy": self.store.healthy,
            "rows_written": self.store.rows_written,
            "write_errors": stats.write_errors,
            "refused_writes": stats.refused,
            "backlog_rows": self.store.backlog_rows,
            "last_error": stats.last_error,
            "failing_since": stats.failing_since,
        }

    def _camera_health(self) -> dict[str, dict[str, Any]]:
        """Per camera, its latest health report from the video worker, and how old that is."""
        if self.core is None:
            return {}
        tracker, now = self.core.pipeline.tracker, time.time()
        cameras: dict[str, dict[str, Any]] = {}
        for device in self.inventory:
            status = tracker.get(device.id) if device.kind is DeviceKind.CAMERA else None
            if status is None:
                continue
            values: dict[str, Any] = {
                k: v for k, v in status.last_values.items() if k in CAMERA_HEALTH_METRICS
            }
            if (codec := values.get("codec")) is not None:  # a number on the wire, its name here
                values["codec"] = CAMERA_CODEC_NAMES.get(int(codec), "other")
            cameras[device.id] = {
                "online": status.online,
                **values,
                "last_seen_age_s": None if status.last_seen is None else round(now - status.last_seen, 1),
            }
        return cameras

    def health(self) -> dict[str, Any]:
        connected = bool(self.subscribers) and all(s.stats.connected for s in self.subscribers)
        return {
            "status": "ok" if connected and self.store.healthy else "degraded",
            "campus": self.config.campus.id,
            "uptime_s": round(time.time() - self.started_at, 1),
            "broker": {
                "connected": connected,
                "sessions": {
                    s.endpoint.client_id: {
                        "connected": s.stats.connected,
                        "connects": s.stats.connects,
                        "paused_for_store": s.stats.pauses,
                        "last_error": s.stats.last_error,
                    }
                    for s in self.subscribers
                },
            },
            "ingest": {
                "mqtt_messages": self.counters.get("mqtt_messages"),
                "records": self.counters.get("records"),
                "readings": self.counters.get("readings"),
                "duplicates_dropped": self.counters.get("duplicates_dropped"),
                "dead_letters": self.counters.by_label("dead_letters"),
            },
            "store": self._store_health(),
            "stream_clients": self.broadcaster.client_count,
            "modbus": self.modbus.stats() if self.modbus else {},
            "cameras": self._camera_health(),
            "gb26875": dict(self.gb26875.stats()) if self.gb26875 else {},
            "sinks": {
                **({"influx": self.influx_sink.health()} if self.influx_sink else {}),
                **({"mqtt": self.publisher.health()} if self.publisher else {}),
            },
            "notify": {
                "sent": self.notifier.sent if self.notifier else 0,
                "failed_attempts": self.notifier.failed_attempts if self.notifier else 0,
                "dead": self.notifier.dead if self.notifier else 0,
            },
        }
