"""Tickets inside the running gateway: opened from a live alert, linked both ways, repeats attach."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

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
