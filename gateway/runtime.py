"""Builds the gateway from validated config and runs it: ingest, rules, store, API, one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import pickle
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn

from analytics.alerts import Alert, AlertService
from analytics.device_tracker import DeviceStatus, DeviceTracker
from analytics.devices import Inventory
from analytics.incidents import Incident, IncidentTracker
from analytics.modes import ModeBook
from analytics.rules.engine import RuleEngine
from analytics.rules.health import DeviceOfflineRule
from analytics.tickets import PeopleDirectory, TicketService
from api.app import create_app
from api.auth import Principal, TokenBook
from api.context import ApiContext
from api.schemas import AlertOut, DeviceOut, incident_out
from api.stream import Broadcaster
from api.tickets import TicketApiContext
from drivers.modbus import ModbusDriver
from drivers.mqtt.client import MqttEndpoint, MqttSubscriber
from drivers.mqtt.codec import ProtocolV1Decoder
from gateway.config import GatewayConfig
from gateway.counters import Counters
from gateway.notify.notifier import Notifier
from gateway.pipeline import Pipeline
from gateway.reports import device_availability_pct
from gateway.supervisor import supervise
from storage.deadband import Deadband
from storage.sqlite import SqliteStore
from storage.tickets import SqliteTicketRepository

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0
# Past this many uncommitted readings the gateway stops reading telemetry until SQLite catches up.
MAX_STORE_BACKLOG_READINGS = 100_000
# The alarm lane's own bound: queued writes (events, status, batches of readings) in memory.
MAX_STORE_BACKLOG_OPERATIONS = 50_000
# Each maintenance pass dirties about a page per series and tier however much it folds, so fewer,
# larger passes cost the writer less (bench/history.py). Queries merge the readings not yet
# rolled up, so the lag does not show in them.
MAINTENANCE_INTERVAL_S = 600.0
# Rules' working state (hold timers, sample counts) is saved this often and at shutdown, so a
# power cut costs at most this much of it.
RULE_STATE_SAVE_INTERVAL_S = 60.0


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: the gateway, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Gateway:
    """One campus gateway. `run()` until `stop()`; state is restored from the store on start."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.snapshot_dir: Path | None = None
        if config.firelane_worker is not None:
            from gateway.firelane import load_worker_config  # OpenCV loads only when cameras are configured

            self.snapshot_dir = load_worker_config(config.firelane_worker).snapshot_dir
        self.inventory = Inventory(config.devices)
        self.counters = Counters()
        storage = config.storage
        self.store = SqliteStore(
            storage.sqlite_path,
            storage.retention_days,
            storage.rollup_retention_days,
            storage.rollup_1h_retention_days,
            storage.disk_budget_mb,
            {metric: Deadband(band.delta, band.max_interval_s) for metric, band in storage.deadband.items()},
        )
        self.broadcaster = Broadcaster()
        self.started_at = time.time()
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.subscribers: list[MqttSubscriber] = []
        self.pipeline: Pipeline | None = None
        self.tickets: TicketService | None = None
        self.ticket_repository: SqliteTicketRepository | None = None
        self.notifier: Notifier | None = None
        self.incidents: IncidentTracker | None = None
        self.modes = ModeBook(time.time)
        self.modbus: ModbusDriver | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Hand the GIL over every 1 ms instead of 5: the SQLite writer thread binding a large batch
        # must not keep an alarm waiting on the loop thread.
        sys.setswitchinterval(0.001)
        self.store.open()
        pipeline = self._build_pipeline()
        self.pipeline = pipeline
        pipeline.tick()  # rules learn the gateway's clock before the first record arrives
        broker = self.config.broker
        campus_id = self.config.campus.id
        # Two broker sessions: alarms (events, status) never queue behind a telemetry backlog.
        lanes = {
            "alarms": (f"campus/{campus_id}/+/+/event", f"campus/{campus_id}/+/+/status"),
            "telemetry": (f"campus/{campus_id}/+/+/telemetry",),
        }

        def telemetry_may_read() -> bool:
            return self.store.backlog_readings < MAX_STORE_BACKLOG_READINGS

        def alarms_may_read() -> bool:
            # Not held back by a telemetry backlog (that would queue alarms behind it again); only
            # a flood of events itself, bounded by what waits in memory, pauses this lane.
            return self.store.backlog_operations < MAX_STORE_BACKLOG_OPERATIONS

        def lane_subscriber(
            lane: str, may_read: Callable[[], bool], before_chunk: Callable[[], None] | None = None
        ) -> MqttSubscriber:
            return MqttSubscriber(
                MqttEndpoint(
                    host=broker.host,
                    port=broker.port,
                    client_id=f"{broker.client_id}-{lane}",
                    topic_filters=lanes[lane],
                    username=broker.username,
                    password=broker.password,
                    qos=broker.qos,
                    mqtt_v5=broker.mqtt_version == 5,
                    session_expiry_s=broker.session_expiry_s,
                ),
                loop,
                pipeline.handle_mqtt_batch,
                self.store.after_commit if broker.ack_after_commit else None,
                may_read=may_read,
                before_chunk=before_chunk,
            )

        alarms = lane_subscriber("alarms", alarms_may_read)
        # Before each chunk of telemetry, whatever waits in the alarm lane is taken first.
        telemetry = lane_subscriber("telemetry", telemetry_may_read, before_chunk=alarms.read_if_ready)
        self.subscribers = [alarms, telemetry]
        server = _EmbeddedServer(
            uvicorn.Config(
                create_app(self._api_context(pipeline)),
                host=self.config.api.host,
                port=self.config.api.port,
                log_level="warning",
                lifespan="off",
                ws_ping_interval=20,
            )
        )
        for subscriber in self.subscribers:
            subscriber.start()
        api_task = asyncio.create_task(server.serve(), name="api")
        tick_task = asyncio.create_task(self._tick_forever(pipeline), name="tick")
        assert self.notifier is not None
        notify_task = asyncio.create_task(self.notifier.run(), name="notify")
        children = []
        if self.modbus is not None:
            children.append(asyncio.create_task(self.modbus.run(), name="modbus"))
        if self.config.firelane_worker is not None:
            # Vision runs in its own process so it can never stall ingest; it reports over MQTT.
            command = [
                sys.executable,
                "-m",
                "gateway.firelane",
                "firelane",
                "worker",
                "--config",
                str(self.config.firelane_worker),
            ]
            children.append(asyncio.create_task(supervise("fire-lane worker", command), name="firelane"))
        try:
            while not server.started and not api_task.done():
                await asyncio.sleep(0.02)
            if api_task.done():
                api_task.result()  # raises the bind error, for example
            log.info(
                "gateway for campus %s running; API on %s:%d",
                campus_id,
                self.config.api.host,
                self.config.api.port,
            )
            # What start-up built (modules, config, inventory, rules, the app) lives as long as
            # the process: keep it out of the collector's full passes, which otherwise walk it all
            # and stall the loop for 100 ms or more under load.
            gc.collect()
            gc.freeze()
            self.ready.set()
            stop_wait = asyncio.create_task(self._stop.wait())
            await asyncio.wait({api_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
        finally:
            gc.unfreeze()
            for subscriber in self.subscribers:
                subscriber.stop()
            tick_task.cancel()
            for task in (notify_task, *children):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.notifier.close()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(api_task, 5)
            pipeline.tick()  # persist the latest device state
            # Hold timers and windows in flight survive a restart (after a crash, as of the last
            # periodic save; open alerts come back from the store either way).
            self._save_rule_state(pipeline)
            await asyncio.to_thread(self.store.close)
            if self.ticket_repository is not None:
                self.ticket_repository.close()
            log.info("gateway stopped")

    def _build_pipeline(self) -> Pipeline:
        engine = RuleEngine(self.config.build_rules())
        open_alerts = self.store.open_alerts()
        saved_rule_state = self.store.rule_state()
        if saved_rule_state is not None:
            try:
                # Our own file, written by us (every minute and at shutdown): trusted like the store.
                engine.load_state(pickle.loads(saved_rule_state))
            except Exception:
                log.exception("could not restore the rules' saved state; hold timers start over")
        engine.restore(open_alerts)
        alerts = AlertService(
            self.store, time.time, next_id=self.store.max_alert_id() + 1, open_alerts=open_alerts
        )
        tracker = DeviceTracker(self.config.devices)
        decoder = ProtocolV1Decoder(self.config.campus.id, self.inventory, self.config.mqtt_shapes)
        now = time.time()
        saved = {row.device_id: row for row in self.store.device_states()}
        decoder.restore_seq(
            {row.device_id: row.last_seq for row in saved.values() if row.last_seq is not None}
        )
        offline_rule = next((r for r in engine.rules if isinstance(r, DeviceOfflineRule)), None)
        for device in self.inventory:
            status = saved.get(device.id)
            if status is not None:
                tracker.restore(status)
            if offline_rule is not None:
                # Silence is measured from now: time the gateway was down is not the device's fault.
                offline_rule.watch(device, now)
        alerts.subscribe(self._publish_alert)
        # Incidents first: the notifier's storm grouping asks which incident an alert is in.
        self.incidents = incidents = IncidentTracker(
            lambda device_id: spec.building if (spec := self.inventory.get(device_id)) else "",
            window_s=self.config.incidents.window_s,
            storm_devices=self.config.incidents.storm_devices,
        )
        for alert in sorted(open_alerts, key=lambda alert: alert.first_seen):
            incidents.observe(alert)  # incidents live in memory: rebuilt from the open alerts
        alerts.subscribe(incidents.observe)
        incidents.subscribe(self._publish_incident)
        notify_config = self.config.notify.model_copy(
            update={"outbox_path": self._beside_database(self.config.notify.outbox_path)}
        )
        self.notifier = notifier = Notifier.from_config(
            notify_config,
            self.config.campus.name or self.config.campus.id,
            locate=self._locate,
            incident_of=incidents.incident_of,
            zone=ZoneInfo(self.config.campus.timezone),
        )
        notifier.restore(open_alerts)
        alerts.subscribe(notifier.on_alert)
        self.ticket_repository = repository = SqliteTicketRepository(self.config.storage.sqlite_path)
        self.tickets = TicketService(
            repository,
            PeopleDirectory(self.config.tickets.people),
            lambda alert_id: alerts.get_open(alert_id) or self.store.alert(alert_id),
            time.time,
            policies=self.config.tickets.build_policies(),
            escalator=notifier,
            locate=self._locate,
            known_alerts=open_alerts,
        )
        alerts.subscribe(self.tickets.on_alert)
        pipeline = Pipeline(
            self.inventory, decoder, engine, alerts, tracker, self.store, self.counters, self.modes
        )
        pipeline.on_status_change(self._publish_device)
        if self.config.modbus is not None:
            self.modbus = ModbusDriver(self.config.modbus, self.inventory, pipeline)
        log.info("restored %d open alerts and %d device states", len(open_alerts), len(saved))
        return pipeline

    def _locate(self, device_id: str) -> str:
        spec = self.inventory.get(device_id)
        return spec.location if spec else device_id

    def _publish_incident(self, incident: Incident) -> None:
        self.broadcaster.publish({"type": "incident", "incident": incident_out(incident)})

    def _publish_alert(self, alert: Alert) -> None:
        self.broadcaster.publish({"type": "alert", "alert": AlertOut.of(alert, self.inventory).model_dump()})

    def _publish_device(self, status: DeviceStatus) -> None:
        device = self.inventory.get(status.device_id)
        if device is not None:
            self.broadcaster.publish({"type": "device", "device": DeviceOut.of(device, status).model_dump()})

    def _save_rule_state(self, pipeline: Pipeline) -> None:
        self.store.save_rule_state(time.time(), pickle.dumps(pipeline.engine.state()))

    async def _tick_forever(self, pipeline: Pipeline) -> None:
        last_maintenance = last_sweep = 0.0
        last_rule_save = time.time()
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            try:
                pipeline.tick()
                now = time.time()
                if now - last_maintenance >= MAINTENANCE_INTERVAL_S:
                    last_maintenance = now
                    await asyncio.to_thread(self.store.maintain, now)
                if now - last_rule_save >= RULE_STATE_SAVE_INTERVAL_S:
                    last_rule_save = now
                    self._save_rule_state(pipeline)
                if self.tickets is not None and now - last_sweep >= self.config.tickets.sweep_interval_s:
                    last_sweep = now
                    await asyncio.to_thread(self.tickets.sweep, pipeline.alerts.open_alerts())
            except Exception:
                log.exception("periodic tick failed; retrying next second")

    def _api_context(self, pipeline: Pipeline) -> ApiContext:
        tokens = TokenBook({t.sha256: Principal(t.name, t.role) for t in self.config.api.tokens})
        return ApiContext(
            campus_id=self.config.campus.id,
            campus_name=self.config.campus.name,
            inventory=self.inventory,
            tracker=pipeline.tracker,
            alerts=pipeline.alerts,
            store=self.store,
            broadcaster=self.broadcaster,
            tokens=tokens,
            health=self.health,
            counters=lambda: self.counters.values,
            snapshot_dir=self.snapshot_dir,
            tickets=self._ticket_api_context(),
            incidents=self.incidents,
            modes=self.modes,
        )

    def _beside_database(self, path: Path) -> Path:
        """Relative paths from a config built in code (demo, tests) live next to the database."""
        return path if path.is_absolute() else self.config.storage.sqlite_path.parent / path.name

    def _ticket_api_context(self) -> TicketApiContext | None:
        if self.tickets is None:
            return None
        config = self.config
        return TicketApiContext(
            service=self.tickets,
            clock=time.time,
            photo_dir=self._beside_database(config.tickets.photo_dir),
            timezone=ZoneInfo(config.campus.timezone),
            campus_name=config.campus.name or config.campus.id,
            photo_max_bytes=config.tickets.photo_max_bytes,
            availability_pct=lambda start, end: device_availability_pct(
                config.storage.sqlite_path, start, end
            ),
        )

    def health(self) -> dict[str, Any]:
        connected = bool(self.subscribers) and all(s.stats.connected for s in self.subscribers)
        return {
            "status": "ok" if connected else "degraded",
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
            "store": {"rows_written": self.store.rows_written, "write_errors": self.store.write_errors},
            "stream_clients": self.broadcaster.client_count,
            "modbus": self.modbus.stats() if self.modbus else {},
            "notify": {
                "sent": self.notifier.sent if self.notifier else 0,
                "failed_attempts": self.notifier.failed_attempts if self.notifier else 0,
                "dead": self.notifier.dead if self.notifier else 0,
            },
        }
