"""The gateway's own topics on the campus broker, for a bridge to carry to a district broker.

    campus/{campus_id}/gateway/status                    online / offline (retained, our last will)
    campus/{campus_id}/gateway/alerts/{alert_id}         the alert's current state (retained)
    campus/{campus_id}/gateway/incidents/{incident_id}   the incident's current state (retained)
    campus/{campus_id}/gateway/devices/{device_id}/state the device's online state (retained)

All QoS 1. A resolved alert or a closed incident is published once more (not retained) and its
retained copy is then cleared, so the broker keeps the open ones only. Messages wait in paho's
memory while the broker is away: this path is live, not durable (the TSDB sink and the webhook
outbox are the durable ones; docs/forwarding.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from analytics.alerts import Alert, AlertChanged, AlertState
from analytics.bus import MessageBus
from analytics.device_tracker import DeviceStatusChanged
from analytics.devices import Inventory
from analytics.incidents import IncidentChanged
from sinks.config import MqttPublishConfig

log = logging.getLogger(__name__)

QOS = 1


class GatewayPublisher:
    """Publishes alert changes, incidents and device status; `subscribe` it to the bus.

    Args:
        host, port, username, password: the campus broker (the gateway's own credentials).
        campus_id: the topics' campus.
        inventory: a device's building and zone go with its alerts.
    """

    def __init__(
        self,
        config: MqttPublishConfig,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        campus_id: str,
        inventory: Inventory,
    ) -> None:
        self._host, self._port = host, port
        self._inventory = inventory
        self.prefix = f"campus/{campus_id}/gateway"
        self.published = 0
        self.failed = 0
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=config.client_id, clean_session=False
        )
        if username:
            self._client.username_pw_set(username, password)
        self._client.max_queued_messages_set(100_000)  # bounded memory while the broker is away
        self._client.will_set(f"{self.prefix}/status", "offline", qos=QOS, retain=True)
        self._client.on_connect = self._on_connect

    def subscribe(self, bus: MessageBus) -> None:
        bus.subscribe(AlertChanged, lambda message: self.alert(message.alert))
        bus.subscribe(IncidentChanged, self._incident)
        bus.subscribe(DeviceStatusChanged, self._device)

    def start(self) -> None:
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        info = self._publish(f"{self.prefix}/status", "offline", retain=True)
        if self._client.is_connected():
            with contextlib.suppress(RuntimeError, ValueError):  # not sent: the will says it instead
                info.wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("gateway publisher: the campus broker refused the connection (%s)", reason)
            return
        self._publish(f"{self.prefix}/status", "online", retain=True)

    def alert(self, alert: Alert) -> None:
        device = self._inventory.get(alert.device_id)
        body = {
            "id": alert.id,
            "rule": alert.rule,
            "subject": alert.subject,
            "device_id": alert.device_id,
            "building": device.building if device else "",
            "zone": device.zone if device else "",
            "severity": alert.severity.value,
            "state": alert.state.value,
            "count": alert.count,
            "first_seen": alert.first_seen,
            "last_seen": alert.last_seen,
            "acknowledged_at": alert.acknowledged_at,
            "cleared_at": alert.cleared_at,
            "resolved_at": alert.resolved_at,
        }
        self._current(f"{self.prefix}/alerts/{alert.id}", body, open_=alert.state is not AlertState.RESOLVED)

    def _incident(self, message: IncidentChanged) -> None:
        incident = message.incident
        body = {
            "id": incident.id,
            "building": incident.building,
            "severity": incident.severity.value,
            "opened_at": incident.opened_at,
            "last_alert_at": incident.last_alert_at,
            "closed_at": incident.closed_at,
            "alert_ids": list(incident.alert_ids),
            "devices": len(incident.device_ids),
            "storm": incident.storm,
        }
        self._current(f"{self.prefix}/incidents/{incident.id}", body, open_=incident.is_open)

    def _device(self, message: DeviceStatusChanged) -> None:
        status = message.status
        body = {"device_id": status.device_id, "online": status.online, "since": status.state_changed_at}
        # Six levels: never matched by the gateway's own ingest filters (campus/{id}/+/+/status).
        self._publish(f"{self.prefix}/devices/{status.device_id}/state", json.dumps(body), retain=True)

    def _current(self, topic: str, body: dict[str, Any], open_: bool) -> None:
        payload = json.dumps(body, ensure_ascii=False)
        if open_:
            self._publish(topic, payload, retain=True)
        else:
            self._publish(topic, payload, retain=False)
            self._publish(topic, b"", retain=True)  # an empty retained message clears the retained one

    def _publish(self, topic: str, payload: str | bytes, retain: bool) -> paho.MQTTMessageInfo:
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        # Not connected yet is fine: paho sends the queued message once it is.
        if info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            self.published += 1
        else:
            self.failed += 1
            log.warning("gateway publisher: %s not queued (paho rc %s)", topic, info.rc)
        return info

    def health(self) -> dict[str, Any]:
        return {"connected": self._client.is_connected(), "published": self.published, "failed": self.failed}
