"""Tickets inside the running gateway: opened from a live alert, linked both ways, repeats attach."""

from __future__ import annotations

from pathlib import Path

from simulators.campus import demo_campus
from simulators.fleet import Fleet
from tests.conftest import Broker
from tests.harness import gateway_config, running_gateway


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
            again = await gw.get(f"/api/v1/alerts/{second['id']}/ticket")
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
