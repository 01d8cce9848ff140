"""Wires the gateway's core once: the store, the bus and every handler on it, the pipeline.

Everything that reacts to an alert, incident or device change is a handler registered here, in
the order it must run; nothing else in the code calls another component when a fact changes.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from analytics.alerts import AlertChanged, AlertService
from analytics.bus import MessageBus
from analytics.device_tracker import DeviceStatus, DeviceStatusChanged, DeviceTracker
from analytics.devices import Inventory
from analytics.evidence import UnavailableReason
from analytics.incidents import IncidentChanged, IncidentTracker
from analytics.ingest import IngestValidator
from analytics.modes import ModeBook
from analytics.rules.engine import RuleEngine
from analytics.rules.health import DeviceOfflineRule
from analytics.tickets import PeopleDirectory, TicketService
from api.evidence_links import EvidenceLinks
from api.schemas import AlertOut, DeviceOut, incident_out
from api.stream import Broadcaster
from drivers.gb26875.receiver import Gb26875Receiver
from drivers.modbus import ModbusDriver
from drivers.mqtt.codec import ProtocolV1Decoder
from gateway.config import GatewayConfig
from gateway.counters import Counters
from gateway.evidence import CameraCoverage, EvidenceDesk, EvidenceRequester
from gateway.notify.notifier import Notifier
from gateway.pipeline import Pipeline
from storage.sqlite import SqliteStore
from storage.tickets import SqliteTicketRepository
from storage.uptime import last_transitions

log = logging.getLogger(__name__)


@dataclass
class Core:
    """The gateway's parts, wired: what its services run and its API reads."""

    pipeline: Pipeline
    alerts: AlertService
    incidents: IncidentTracker
    notifier: Notifier
    tickets: TicketService
    # The one thread that calls the ticket service (API, alert changes, sweeps): its writes wait
    # for their commit, which must never happen on the event loop.
    ticket_desk: ThreadPoolExecutor
    modbus: ModbusDriver | None
    gb26875: Gb26875Receiver | None
    evidence: EvidenceRequester | None = None

    def at_desk(self, call: Callable[..., Any], *args: Any) -> None:
        """Run `call` on the ticket desk, logging (not losing) what it raises."""

        def run() -> None:
            try:
                call(*args)
            except Exception:
                log.exception("ticket desk: %s failed", getattr(call, "__qualname__", call))

        self.ticket_desk.submit(run)


def bootstrap(
    config: GatewayConfig,
    inventory: Inventory,
    store: SqliteStore,
    bus: MessageBus,
    counters: Counters,
    broadcaster: Broadcaster,
    modes: ModeBook,
    evidence_dir: Path | None = None,
) -> Core:
    """Restore state from the (open) store and wire every part; handlers run in the order below.

    `evidence_dir` is the fire-lane worker's evidence folder, when it keeps one.
    """
    engine = RuleEngine(config.build_rules(), on_error=lambda rule: counters.inc("rule_errors", rule))
    open_alerts = store.open_alerts()
    saved_rule_state = store.rule_state()
    if saved_rule_state is not None:
        try:
            # Our own file, written by us (every minute and at shutdown): trusted like the store.
            engine.load_state(pickle.loads(saved_rule_state))
        except Exception:
            log.exception("could not restore the rules' saved state; hold timers start over")
    engine.restore(open_alerts)
    alerts = AlertService(
        store, time.time, next_id=store.max_alert_id() + 1, open_alerts=open_alerts, bus=bus
    )
    tracker = DeviceTracker(config.devices)
    saved = {row.device_id: row for row in store.device_states()}
    offline_rule = next((rule for rule in engine.rules if isinstance(rule, DeviceOfflineRule)), None)
    now = time.time()
    # The uptime intervals are the truth about online state: after a kill -9 the device state
    # (flushed once a second) may be older than the last transition, which committed with its cause.
    last = last_transitions(store.query, [device.id for device in inventory], now)
    for device in inventory:
        status = saved.get(device.id)
        change = last.get(device.id)
        if change is not None and (status is None or (status.state_changed_at or 0.0) < change.ts):
            status = replace(status or DeviceStatus(device.id, device.kind.value), online=change.online)
            status.state_changed_at = change.ts
        if status is not None:
            tracker.restore(status)
        if offline_rule is not None:
            # Silence is measured from now: time the gateway was down is not the device's fault.
            offline_rule.watch(device, now)

    def locate(device_id: str) -> str:
        spec = inventory.get(device_id)
        return spec.location if spec else device_id

    def publish_alert(message: AlertChanged) -> None:
        broadcaster.publish({"type": "alert", "alert": AlertOut.of(message.alert, inventory).model_dump()})

    def publish_incident(message: IncidentChanged) -> None:
        broadcaster.publish({"type": "incident", "incident": incident_out(message.incident)})

    def publish_device(message: DeviceStatusChanged) -> None:
        device = inventory.get(message.status.device_id)
        if device is not None:
            broadcaster.publish(
                {"type": "device", "device": DeviceOut.of(device, message.status).model_dump()}
            )

    bus.subscribe(AlertChanged, publish_alert)
    # Incidents before notify: the notifier's storm grouping asks which incident an alert is in.
    incidents = IncidentTracker(
        lambda device_id: spec.building if (spec := inventory.get(device_id)) else "",
        window_s=config.incidents.window_s,
        storm_devices=config.incidents.storm_devices,
        bus=bus,
    )
    for alert in sorted(open_alerts, key=lambda alert: alert.first_seen):
        incidents.observe(alert)  # incidents live in memory: rebuilt from the open alerts
    bus.subscribe(AlertChanged, lambda message: incidents.observe(message.alert))
    bus.subscribe(IncidentChanged, publish_incident)
    notifier = Notifier.from_config(
        config.notify,
        store,
        config.campus.name or config.campus.id,
        locate=locate,
        incident_of=incidents.incident_of,
        zone=ZoneInfo(config.campus.timezone),
        links=EvidenceLinks(
            (config.evidence.public_url or f"http://{config.api.host}:{config.api.port}").rstrip("/"),
            config.evidence.link_secret,
            config.evidence.link_ttl_s,
        ),
    )
    notifier.restore(open_alerts)
    bus.subscribe(AlertChanged, lambda message: notifier.on_alert(message.alert))
    tickets = TicketService(
        SqliteTicketRepository(store),
        PeopleDirectory(config.tickets.people),
        lambda alert_id: alerts.get_open(alert_id) or store.alert(alert_id),
        time.time,
        policies=config.tickets.build_policies(),
        escalator=notifier,
        locate=locate,
        known_alerts=open_alerts,
    )
    bus.subscribe(DeviceStatusChanged, publish_device)
    requester, desk = None, None
    coverage = CameraCoverage(inventory)
    if evidence_dir is not None and coverage:
        broker = config.broker
        requester = EvidenceRequester(
            config.campus.id,
            evidence_dir,
            broker.host,
            broker.port,
            f"{broker.client_id}-evidence",
            broker.lane_username("evidence"),
            broker.password,
            config.evidence.answer_timeout_s,
        )
        desk = EvidenceDesk(
            config.evidence, coverage, tracker, alerts, requester.ask, notifier.evidence_unavailable
        )
        unavailable = desk.unavailable

        def video_unavailable(evidence_id: str, reason: UnavailableReason) -> None:
            with store.unit(urgent=True):  # the alert's new details and their audit, together
                unavailable(evidence_id, reason)

        requester.on_unavailable = video_unavailable
    pipeline = Pipeline(
        inventory,
        ProtocolV1Decoder(config.campus.id, inventory, config.mqtt_shapes),
        IngestValidator(inventory, store.sessions()),
        engine,
        alerts,
        tracker,
        store,
        counters,
        bus,
        modes,
        enrich=desk.enrich if desk is not None else None,
    )
    gb26875 = None
    if (panels := config.gb26875) is not None:
        if "timezone" not in panels.model_fields_set:  # panels' time labels are campus local time
            panels = panels.model_copy(update={"timezone": config.campus.timezone})
        gb26875 = Gb26875Receiver(panels, inventory, pipeline, pipeline)
    core = Core(
        pipeline=pipeline,
        alerts=alerts,
        incidents=incidents,
        notifier=notifier,
        tickets=tickets,
        ticket_desk=ThreadPoolExecutor(max_workers=1, thread_name_prefix="ticket-desk"),
        modbus=ModbusDriver(config.modbus, inventory, pipeline) if config.modbus is not None else None,
        gb26875=gb26875,
        evidence=requester,
    )
    bus.subscribe(AlertChanged, lambda message: core.at_desk(tickets.on_alert, message.alert))
    log.info("restored %d open alerts and %d device states", len(open_alerts), len(saved))
    return core
