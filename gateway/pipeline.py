"""The ingest pipeline: records from any driver -> device state, store, rules -> alerts.

Runs on the event loop. Drivers call `submit` with decoded records and `reject` with what they
could not decode; the MQTT path enters through `handle_mqtt_batch`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from analytics.alerts import Alert, AlertService, AlertSignal, Severity
from analytics.device_tracker import DeviceStatus, DeviceTracker
from analytics.devices import Inventory
from analytics.modes import ModeBook
from analytics.records import DeviceEvent, DeviceState, Reading, Record
from analytics.rules.engine import RuleEngine
from drivers.errors import PayloadError
from drivers.mqtt.client import InboundMessage
from drivers.mqtt.codec import Duplicate, ProtocolV1Decoder
from gateway.counters import Counters, LogLimiter
from storage.sqlite import ReadingRow, SqliteStore

log = logging.getLogger(__name__)

StatusListener = Callable[[DeviceStatus], None]


class Pipeline:
    """Owns the hot path; every collaborator is injected by gateway.runtime."""

    def __init__(
        self,
        inventory: Inventory,
        decoder: ProtocolV1Decoder,
        engine: RuleEngine,
        alerts: AlertService,
        tracker: DeviceTracker,
        store: SqliteStore,
        counters: Counters,
        modes: ModeBook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inventory = inventory
        self.decoder = decoder
        self.engine = engine
        self.alerts = alerts
        self.tracker = tracker
        self.store = store
        self.counters = counters
        self.modes = modes
        self._clock = clock
        self._log_limiter = LogLimiter()
        self._status_listeners: list[StatusListener] = []

    def on_status_change(self, listener: StatusListener) -> None:
        self._status_listeners.append(listener)

    def handle_mqtt_batch(self, batch: list[InboundMessage]) -> None:
        decode = self.decoder.decode
        records: list[Record] = []
        for topic, payload, _mid, _qos, received_at in batch:
            try:
                decoded = decode(topic, payload, received_at)
            except PayloadError as error:
                self.reject(error, topic, payload, received_at)
                continue
            except Exception as exc:  # a decoder bug must not take the gateway down
                self.reject(PayloadError("decoder_error", repr(exc)[:200]), topic, payload, received_at)
                log.exception("decoder failed on %s", topic)
                continue
            if isinstance(decoded, Duplicate):
                self.counters.inc("duplicates_dropped")
                continue
            records.extend(decoded)
        self.counters.inc("mqtt_messages", amount=len(batch))
        if records:
            self.submit(records)

    def submit(self, records: Sequence[Record]) -> None:
        """Store, track and evaluate records from any driver (RecordSink)."""
        readings: list[ReadingRow] = []
        inventory_get = self.inventory.get
        evaluate = self.engine.evaluate
        observe = self.tracker.observe
        signals: list[AlertSignal] = []
        for record in records:
            device = inventory_get(record.device_id)
            if device is None:  # drivers check the inventory; this guards a driver bug
                self.counters.inc("records_for_unknown_devices")
                continue
            if isinstance(record, Reading):
                readings.append((record.device_id, record.metric, record.ts, record.value))
            elif isinstance(record, DeviceEvent):
                self.store.add_event(
                    record.device_id, record.kind.value, record.name, record.ts, record.attrs
                )
                self.counters.inc("events", record.name)
            else:
                online = record.state is DeviceState.ONLINE
                self.store.add_status_change(record.device_id, online, record.ts, record.reason)
            if observe(record):
                self._status_changed(record.device_id)
            signals.extend(evaluate(record, device))
        if readings:
            self.store.add_readings(readings)
            self.counters.inc("readings", amount=len(readings))
        self.counters.inc("records", amount=len(records))
        for signal in signals:
            self._apply(signal)

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None:
        """Dead-letter what a driver could not accept: stored, counted, logged at most once a minute."""
        self.counters.inc("dead_letters", error.reason)
        self.store.add_dead_letter(received_at, source, error.device_id, error.reason, error.detail, payload)
        key = f"{error.device_id or source}:{error.reason}"
        if self._log_limiter.allow(key):
            log.warning("dead-lettered message from %s: %s", error.device_id or source, error)
        if error.reason == "unknown_device" and error.device_id:
            details = {"topic": source}
            self._apply(
                AlertSignal(
                    "unknown_device",
                    error.device_id,
                    True,
                    received_at,
                    Severity.WARNING,
                    error.device_id,
                    details,
                )
            )

    def tick(self) -> None:
        """Time-driven rules and the periodic flush of device state; called about once a second."""
        now = self._clock()
        for signal in self.engine.tick(now):
            if (
                signal.rule == "device_offline"
                and signal.raised
                and self.tracker.mark_offline(signal.subject, now)
            ):
                self._status_changed(signal.subject)
            self._apply(signal)
        dirty = self.tracker.take_dirty()
        for status in dirty:
            status.last_seq = self.decoder.seq_of(status.device_id)
        if dirty:
            self.store.save_device_states(dirty)

    def _apply(self, signal: AlertSignal) -> Alert | None:
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
        changed = self.alerts.apply(signal)
        if changed is not None and changed.count == 1 and changed.condition_active:
            self.counters.inc("alerts_raised", changed.rule)
        return changed

    def _status_changed(self, device_id: str) -> None:
        status = self.tracker.get(device_id)
        if status is None:
            return
        for listener in self._status_listeners:
            listener(status)
