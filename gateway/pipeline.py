"""The ingest pipeline: messages from any driver -> validator -> device state, store, rules -> alerts.

Runs on the event loop. Each batch is one unit of work: its records, the device sessions that
guard them (seen seqs) and the alerts they raise commit in one transaction, and the returned
future completes once they have, which is when the MQTT driver acknowledges the batch. One
message, record or signal that fails is dead-lettered or logged and counted; it never costs the
rest of its batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from itertools import groupby

from analytics.alerts import Alert, AlertService, AlertSignal
from analytics.bus import MessageBus
from analytics.device_tracker import DeviceStatusChanged, DeviceTracker, transition_cause
from analytics.devices import Inventory
from analytics.errors import PayloadError
from analytics.ingest import Duplicate, Envelope, IngestValidator
from analytics.modes import ModeBook
from analytics.quarantine import UnknownDeviceAlerts
from analytics.records import DeviceEvent, Reading, Record
from analytics.rules.engine import RuleEngine
from analytics.sessions import Lane
from analytics.uptime import HEARTBEAT_S
from drivers.mqtt.client import InboundMessage
from drivers.mqtt.codec import ProtocolV1Decoder
from gateway.counters import Counters, LogLimiter
from storage.sqlite import ReadingRow, SqliteStore

log = logging.getLogger(__name__)


class Pipeline:
    """Owns the hot path; every collaborator is injected by gateway.bootstrap."""

    def __init__(
        self,
        inventory: Inventory,
        decoder: ProtocolV1Decoder,
        validator: IngestValidator,
        engine: RuleEngine,
        alerts: AlertService,
        tracker: DeviceTracker,
        store: SqliteStore,
        counters: Counters,
        bus: MessageBus,
        modes: ModeBook | None = None,
        clock: Callable[[], float] = time.time,
        enrich: Callable[[AlertSignal], AlertSignal] | None = None,
    ) -> None:
        self.inventory = inventory
        self.decoder = decoder
        self.validator = validator
        self.engine = engine
        self.alerts = alerts
        self.tracker = tracker
        self.store = store
        self.counters = counters
        self.bus = bus
        self.modes = modes
        # Adds to a raised signal's details what the alert must carry when first told (evidence).
        self.enrich = enrich
        self._clock = clock
        self._log_limiter = LogLimiter()
        self.run_started_at = clock()
        self._last_beat = float("-inf")
        self._unknown = UnknownDeviceAlerts(
            alert.subject for alert in alerts.open_alerts() if alert.rule == "unknown_device"
        )

    def handle_mqtt_batch(self, batch: list[InboundMessage], urgent: bool = False) -> Future[None]:
        """Process a batch of MQTT messages; the future completes once all it caused is committed."""
        decode = self.decoder.decode
        with self.store.unit(urgent=urgent) as unit:
            records: list[Record] = []
            for topic, payload, _mid, _qos, received_at in batch:
                try:
                    admitted = self._admit(decode(topic, payload, received_at))
                except PayloadError as error:
                    self.reject(error, topic, payload, received_at)
                    continue
                except Exception as exc:  # a bug must cost this message only, and be kept
                    self._failed_message(exc, topic, payload, received_at)
                    continue
                if admitted is not None:
                    records.extend(admitted)
            self.counters.inc("mqtt_messages", amount=len(batch))
            self._ingest(records)
        return unit.future

    def submit(self, records: Sequence[Record], source: str = "driver") -> Future[None]:
        """Validate, store, track and evaluate records from a driver without a wire format of its
        own to decode (Modbus, video): one envelope per device (RecordSink)."""
        now = self._clock()
        return self.submit_envelopes(
            [
                Envelope(source, device_id, own[0].kind, Lane.TELEMETRY, now, own)
                for device_id, group in groupby(records, key=lambda record: record.device_id)
                for own in (tuple(group),)
            ]
        )

    def submit_envelopes(self, envelopes: Sequence[Envelope]) -> Future[None]:
        """As `submit`, for a driver that builds its envelopes (to have a device clock checked);
        the future completes once everything they caused has committed."""
        with self.store.unit() as unit:
            accepted: list[Record] = []
            for envelope in envelopes:
                try:
                    admitted = self._admit(envelope)
                except PayloadError as error:
                    payload = repr(envelope.records).encode()[:65536]
                    self.reject(error, envelope.source, payload, envelope.received_at)
                    continue
                if admitted is not None:
                    accepted.extend(admitted)
            self._ingest(accepted)
        return unit.future

    def _admit(self, envelope: Envelope) -> Sequence[Record] | None:
        admitted = self.validator.admit(envelope)
        if isinstance(admitted, Duplicate):
            self.counters.inc("duplicates_dropped")
            return None
        return admitted

    def _ingest(self, records: Sequence[Record]) -> None:
        readings: list[ReadingRow] = []
        inventory_get = self.inventory.get
        evaluate = self.engine.evaluate
        observe = self.tracker.observe
        signals: list[AlertSignal] = []
        for record in records:
            device = inventory_get(record.device_id)
            if device is None:  # the validator checks the inventory; this guards a bug
                self.counters.inc("records_for_unknown_devices")
                continue
            if type(record) is Reading:
                readings.append((record.device_id, record.metric, record.ts, record.value))
            elif isinstance(record, DeviceEvent):
                self.store.add_event(
                    record.device_id, record.kind.value, record.name, record.ts, record.attrs
                )
                self.counters.inc("events", record.name)
            if observe(record):
                self._status_changed(record.device_id, transition_cause(record))
            try:
                signals.extend(evaluate(record, device))
            except Exception:
                self._count_failure("rule_errors", record.device_id, "rules failed on a record")
        if readings:
            self.store.add_readings(readings)
            self.counters.inc("readings", amount=len(readings))
        self.counters.inc("records", amount=len(records))
        for signal in signals:
            self._apply(signal)
        changes = self.validator.take_changes()
        if changes:
            self.store.save_sessions(changes)

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None:
        """Dead-letter what a driver could not accept: stored, counted, logged at most once a minute."""
        self.counters.inc("dead_letters", error.reason)
        self.store.add_dead_letter(received_at, source, error.device_id, error.reason, error.detail, payload)
        # Per device only for devices we know: made-up ids and topics are unbounded, so they
        # share one line a minute per reason, however many there are.
        known = bool(error.device_id) and self.inventory.get(error.device_id) is not None
        key = f"{error.device_id}:{error.reason}" if known else error.reason
        if self._log_limiter.allow(key):
            suppressed = self._log_limiter.suppressed.pop(key, 0)
            log.warning(
                "dead-lettered message from %s: %s%s",
                error.device_id or source,
                error,
                f" ({suppressed} more like it since the last line)" if suppressed else "",
            )
        if error.reason == "unknown_device" and error.device_id:
            signal = self._unknown.signal(error.device_id, source, received_at)
            if signal is not None:
                self._apply(signal)

    def _failed_message(self, exc: Exception, source: str, payload: bytes, received_at: float) -> None:
        self.counters.inc("dead_letters", "processing_error")
        self.store.add_dead_letter(received_at, source, "", "processing_error", repr(exc)[:200], payload)
        if self._log_limiter.allow(f"processing_error:{type(exc).__name__}"):
            log.error("processing a message from %s failed; it is dead-lettered", source, exc_info=exc)

    def _count_failure(self, counter: str, key: str, what: str) -> None:
        self.counters.inc(counter)
        if self._log_limiter.allow(f"{counter}:{key}"):
            log.exception("%s (%s); the rest of the batch goes on", what, key)

    def tick(self) -> None:
        """Time-driven rules and the periodic flush of device state; called about once a second."""
        now = self._clock()
        with self.store.unit():
            for signal in self.engine.tick(now):
                if (
                    signal.rule == "device_offline"
                    and signal.raised
                    and self.tracker.mark_offline(signal.subject, now)
                ):
                    self._status_changed(signal.subject, "silence")
                self._apply(signal)
            dirty = self.tracker.take_dirty()
            if dirty:
                self.store.save_device_states(dirty)
            if now - self._last_beat >= HEARTBEAT_S:
                self._last_beat = now
                self.store.beat(self.run_started_at, now)

    def _apply(self, signal: AlertSignal) -> Alert | None:
        try:
            return self._apply_signal(signal)
        except Exception:
            # One signal failing (a listener, a detail the store cannot take) never touches another.
            self._count_failure(
                "signal_errors", f"{signal.rule}:{signal.subject}", "applying a signal failed"
            )
            return None

    def _apply_signal(self, signal: AlertSignal) -> Alert | None:
        if self.modes is not None and signal.raised:
            maintenance = self.modes.maintenance_for(signal.device_id)
            if maintenance is not None:
                # Suppressed, not lost: the readings and events are stored, the verdict is audited.
                self.counters.inc("alerts_suppressed", signal.rule)
                self.store.audit(
                    signal.ts, "system", "maintenance", str(maintenance.id), "suppressed", signal.rule
                )
                return None
            device = self.inventory.get(signal.device_id)
            drill = self.modes.drill_for(device.building if device else "")
            if drill is not None:
                signal = replace(signal, details={**signal.details, "drill": True, "drill_id": drill.id})
        if self.enrich is not None:
            signal = self.enrich(signal)
        changed = self.alerts.apply(signal)
        if changed is not None and changed.count == 1 and changed.condition_active:
            self.counters.inc("alerts_raised", changed.rule)
        return changed

    def _status_changed(self, device_id: str, cause: str) -> None:
        """The one place a transition is known: stored as a `status_changes` row (the uptime
        intervals) in the same commit as what caused it, then published."""
        status = self.tracker.get(device_id)
        if status is not None and status.online is not None and status.state_changed_at is not None:
            self.store.add_status_change(device_id, status.online, status.state_changed_at, cause)
            self.bus.publish(DeviceStatusChanged(status))
