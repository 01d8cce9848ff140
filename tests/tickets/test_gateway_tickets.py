"""Tickets inside the running gateway: opened from a live alert, linked both ways, repeats attach."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from analytics.tickets.config import TicketsConfig
from simulators.campus import demo_campus
from simulators.fleet import Fleet
from tests.conftest import Broker
from tests.harness import RunningGateway, gateway_config, running_gateway


async def test_ticket_from_a_live_alert_collects_repeats_of_the_same_condition(
    mosquitto: Broker, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", demo_campus())
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="tickets-fleet")
    try:
        async with running_gateway(config) as gw:
            fleet.gate("gate-north").force_open()
            first = await gw.wait_for_alert("gate_forced", "gate-north")
            created = await gw.http.post(
                "/api/v1/tickets", headers=gw.headers(), json={"alert_id": first["id"]}
            )
            assert created.status_code == 201, created.text
            ticket = created.json()
            assert (ticket["state"], ticket["alert_ids"], ticket["device_id"]) == (
                "registered",
                [first["id"]],
                "gate-north",
            )
            assert "北门" in ticket["location"]
            linked = await gw.get(f"/api/v1/alerts/{first['id']}/ticket")
            assert linked["id"] == ticket["id"]

            fleet.gate("gate-north").close()
            await gw.wait_for_alert("gate_forced", "gate-north", state="cleared")
            resolved = await gw.http.post(
                f"/api/v1/alerts/{first['id']}/resolve", headers=gw.headers(), json={"note": "门锁已修"}
            )
            assert resolved.status_code == 200
            fleet.gate("gate-north").force_open()  # the hazard is back before the ticket is closed
            second = await gw.wait_for_alert("gate_forced", "gate-north", state="active")
            assert second["id"] != first["id"]
            # Linked on the ticket desk a commit after the alert is raised: wait for it.
            again = await _linked_ticket(gw, second["id"])
            assert again["id"] == ticket["id"] and sorted(again["alert_ids"]) == [first["id"], second["id"]]
            bureau = await gw.http.get(
                "/api/v1/tickets", headers=gw.headers("bureau"), params={"overdue": "true", "level": "major"}
            )
            assert bureau.status_code == 200
            assert (
                await gw.http.post("/api/v1/tickets", headers=gw.headers("bureau"), json={"alert_id": 1})
            ).status_code == 403
    finally:
        fleet.close()


async def _linked_ticket(gw: RunningGateway, alert_id: int, timeout_s: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = await gw.http.get(f"/api/v1/alerts/{alert_id}/ticket", headers=gw.headers())
        if response.status_code == 200 or time.monotonic() > deadline:
            response.raise_for_status()
            return dict(response.json())
        await asyncio.sleep(0.05)


async def test_an_alert_committed_without_its_auto_ticket_gets_it_after_a_restart(
    mosquitto: Broker, tmp_path: Path
) -> None:
    """Auto-tickets open on the ticket desk a commit after their alert, so a crash between the two
    commits leaves a committed alert without its ticket. The first sweep after the restart opens
    it, and later sweeps never open a second one."""
    base = gateway_config(mosquitto, tmp_path / "gw.db", demo_campus())
    crashed = base.model_copy(
        update={"tickets": TicketsConfig(policies={"electrical_leakage": {"enabled": False}})}
    )
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="tickets-fleet")
    try:
        async with running_gateway(crashed) as gw:
            meter = fleet.electrical_fire("efm-main-01")
            for _ in range(4):
                meter.telemetry(residual_current_ma=650.0)
                await asyncio.sleep(0.05)
            leak = await gw.wait_for_alert("electrical_leakage", "efm-main-01", state="active")
            orphan = await gw.http.get(f"/api/v1/alerts/{leak['id']}/ticket", headers=gw.headers())
            assert orphan.status_code == 404  # the state a crash between the two commits leaves
        restarted = base.model_copy(update={"tickets": TicketsConfig(sweep_interval_s=0.5)})
        async with running_gateway(restarted) as gw:
            ticket = await _linked_ticket(gw, leak["id"], timeout_s=10.0)
            assert (ticket["device_id"], ticket["level"], ticket["alert_ids"]) == (
                "efm-main-01",
                "major",
                [leak["id"]],
            )
            await asyncio.sleep(2.0)  # four more sweeps
            tickets = await gw.get("/api/v1/tickets")
            assert [t["id"] for t in tickets if leak["id"] in t["alert_ids"]] == [ticket["id"]]
    finally:
        fleet.close()
