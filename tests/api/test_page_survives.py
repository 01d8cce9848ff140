"""The security-room page in a real Chromium, under the strict CSP, facing what blanked it:
an alert with NaN in its details (in the snapshot) and a live message that does not parse."""

from __future__ import annotations

import asyncio
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By

from simulators.campus import demo_campus
from simulators.fleet import Fleet
from tests.api.test_stream_json import raise_hostile_alert
from tests.browser import wait_css
from tests.conftest import Broker
from tests.harness import TOKENS, gateway_config, running_gateway
from tests.spine.test_live_page import browser

__all__ = ["browser"]  # the Chromium fixture


async def test_a_hostile_alert_and_an_unreadable_message_leave_the_board_standing(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="page-hostile")
    try:
        async with running_gateway(gateway_config(mosquitto, tmp_path / "gw.db", demo_campus())) as gw:
            raise_hostile_alert(gw, "panic-office-01")  # open before the page loads: in its snapshot
            await asyncio.to_thread(browser.get, f"{gw.base_url}/#token={TOKENS['operator']}")
            await asyncio.to_thread(wait_css, browser, "#conn.live")
            await asyncio.to_thread(wait_css, browser, 'tr[data-rule="panic_pressed"]')
            assert not browser.find_element(By.ID, "empty").is_displayed()
            assert not browser.find_element(By.ID, "warning").is_displayed()

            # The gateway never sends this any more; a proxy or a future bug might. Pushed
            # straight into the page's queue (the broadcaster's private set of subscribers).
            for queue in list(gw.gateway.broadcaster._subscribers):
                queue.put_nowait('{"type": "alert", "alert": {"id": 99, "count": NaN}}')
            await asyncio.to_thread(wait_css, browser, "#warning:not([hidden])")
            assert browser.find_elements(By.CSS_SELECTOR, 'tr[data-rule="panic_pressed"]')
            assert not browser.find_element(By.ID, "empty").is_displayed()

            fleet.smoke("tb-1f-smoke-01").alarm()  # and the page goes on showing what comes
            await asyncio.to_thread(wait_css, browser, 'tr[data-rule="fire_alarm"]')
    finally:
        fleet.close()
