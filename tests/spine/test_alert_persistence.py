"""An alert's acknowledge, clear and resolve are stored, and come back after a reopen or a restart.

Finding 11: with alert updates written as `INSERT OR IGNORE` (so only the raise was ever stored)
every test but one browser test passed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics.alerts import Alert, AlertService, AlertSignal, AlertState, Severity
from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from simulators.fleet import Fleet
from storage.sqlite import SqliteStore
from tests.conftest import Broker
from tests.harness import RunningGateway, gateway_config, running_gateway

T0 = 1_763_860_000.0


def reopened(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    store.open()
    return store


def raise_heat_high(alerts: AlertService, ts: float) -> Alert:
    alert = alerts.apply(AlertSignal("heat_high", "k1", True, ts, Severity.CRITICAL, "k1", {"value": 61.0}))
    assert alert is not None
    return alert


def acknowledge(alerts: AlertService, alert: Alert) -> None:
    alerts.acknowledge(alert.id, "duty-1")


def clear(alerts: AlertService, alert: Alert) -> None:
    alerts.apply(AlertSignal("heat_high", "k1", False, T0 + 5, Severity.CRITICAL, "k1"))


def resolve(alerts: AlertService, alert: Alert) -> None:
    alerts.resolve(alert.id, "duty-1", "检查后确认为误报")


CHANGES: dict[str, tuple[Callable[[AlertService, Alert], None], AlertState, dict[str, Any]]] = {
    "acknowledge": (acknowledge, AlertState.ACKNOWLEDGED, {"acknowledged_by": "duty-1", "condition_active": True}),
    "clear": (clear, AlertState.CLEARED, {"cleared_at": T0 + 5, "condition_active": False}),
    "resolve": (resolve, AlertState.RESOLVED, {"resolved_by": "duty-1", "resolution_note": "检查后确认为误报"}),
}  # fmt: skip


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_an_alert_change_is_stored_and_read_back_after_reopening_the_store(
    tmp_path: Path, change: tuple[Callable[[AlertService, Alert], None], AlertState, dict[str, Any]]
) -> None:
    apply_change, state, fields = change
    path = tmp_path / "gw.db"
    store = reopened(path)
    alerts = AlertService(store, lambda: T0 + 10)
    alert = raise_heat_high(alerts, T0)
    apply_change(alerts, alert)
    store.flush()
    store.close()

    store = reopened(path)
    try:
        stored = store.alert(alert.id)
        assert stored is not None and stored.state is state
        assert {name: getattr(stored, name) for name in fields} == fields
        listed = store.alerts(states=[state])
        assert [a.id for a in listed] == [alert.id]
        assert (alert.id in {a.id for a in store.open_alerts()}) is (state is not AlertState.RESOLVED)
    finally:
        store.close()


SMOKE = DeviceSpec(id="s1", kind=DeviceKind.SMOKE, building="教学楼", zone="3F")


async def the_alert(gw: RunningGateway, alert_id: int) -> dict[str, Any]:
    found = [a for a in await gw.get("/api/v1/alerts") if a["id"] == alert_id]
    assert len(found) == 1, f"alert {alert_id} not listed after the restart"
    return dict(found[0])


async def test_acknowledge_clear_and_resolve_each_survive_a_gateway_restart(
    mosquitto: Broker, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", [SMOKE])
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="persistence-fleet")
    try:
        async with running_gateway(config) as gw:
            fleet.smoke("s1").alarm()
            alert_id = (await gw.wait_for_alert("fire_alarm", "s1"))["id"]
            (await gw.http.post(f"/api/v1/alerts/{alert_id}/ack", headers=gw.headers())).raise_for_status()
        async with running_gateway(config) as gw:
            after_ack = await the_alert(gw, alert_id)
            assert (after_ack["state"], after_ack["acknowledged_by"]) == ("acknowledged", "operator-1")
            fleet.smoke("s1").alarm_clear()
            await gw.wait_for_alert("fire_alarm", "s1", state="cleared")
        async with running_gateway(config) as gw:
            after_clear = await the_alert(gw, alert_id)
            assert after_clear["state"] == "cleared" and after_clear["cleared_at"] is not None
            assert after_clear["acknowledged_by"] == "operator-1"
            response = await gw.http.post(
                f"/api/v1/alerts/{alert_id}/resolve", headers=gw.headers(), json={"note": "烟雾测试"}
            )
            response.raise_for_status()
        async with running_gateway(config) as gw:
            resolved = await gw.get("/api/v1/alerts", state="resolved")
            assert [(a["id"], a["resolution_note"]) for a in resolved] == [(alert_id, "烟雾测试")]
            assert all(a["id"] != alert_id for a in await gw.get("/api/v1/alerts", state="open"))
    finally:
        fleet.close()
