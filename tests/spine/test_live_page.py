"""The security room's live page in a real headless Chromium: alerts appear, ack and resolve work."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from simulators.campus import demo_campus
from simulators.fleet import Fleet
from tests.browser import chromium, wait_css
from tests.conftest import Broker
from tests.harness import TOKENS, gateway_config, running_gateway


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with chromium(1280, 900) as driver:
        yield driver


async def test_operator_sees_a_panic_alert_live_and_acknowledges_then_resolves_it(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    devices = demo_campus()
    config = gateway_config(mosquitto, tmp_path / "gw.db", devices)
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="page-fleet")
    try:
        async with running_gateway(config) as gw:
            url = f"{gw.base_url}/#token={TOKENS['operator']}"
            await asyncio.to_thread(browser.get, url)
            await asyncio.to_thread(wait_css, browser, "#conn.live")
            assert browser.find_element(By.ID, "empty").is_displayed()

            fleet.panic("panic-office-01").press()
            await asyncio.to_thread(wait_css, browser, 'tr[data-rule="panic_pressed"]')
            row = browser.find_element(By.CSS_SELECTOR, 'tr[data-rule="panic_pressed"]')
            assert "一键报警" in row.text and "校长室" in row.text and "报警中" in row.text
            screenshot = tmp_path / "live-page.png"
            browser.save_screenshot(str(screenshot))
            assert screenshot.stat().st_size > 10_000

            row.find_element(By.CSS_SELECTOR, "button.ack").click()
            alert_id = int(row.get_attribute("data-alert-id") or 0)
            await gw.wait_for_alert("panic_pressed", state="acknowledged")
            await asyncio.to_thread(wait_css, browser, 'tr[data-rule="panic_pressed"].state-acknowledged')

            browser.find_element(By.ID, "lang").click()
            row = browser.find_element(By.CSS_SELECTOR, 'tr[data-rule="panic_pressed"]')
            assert "Panic button pressed" in row.text and "acknowledged" in row.text

            row.find_element(By.CSS_SELECTOR, "button.resolve").click()  # no note yet: refused in the page
            await asyncio.sleep(0.3)
            assert (await gw.get(f"/api/v1/alerts/{alert_id}"))["alert"]["state"] == "acknowledged"
            row.find_element(By.CSS_SELECTOR, "input.note").send_keys("false press, reset the button")
            row.find_element(By.CSS_SELECTOR, "button.resolve").click()
            await gw.wait_for(
                lambda: gw.gateway.pipeline is not None and not gw.gateway.pipeline.alerts.open_alerts()
            )
            await asyncio.to_thread(
                WebDriverWait(browser, 10).until,
                expected_conditions.invisibility_of_element_located(
                    (By.CSS_SELECTOR, 'tr[data-rule="panic_pressed"]')
                ),
            )
            detail = await gw.get(f"/api/v1/alerts/{alert_id}")
            assert detail["alert"]["resolution_note"] == "false press, reset the button"
    finally:
        fleet.close()


async def test_page_without_token_asks_for_one(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", demo_campus())
    async with running_gateway(config) as gw:
        await asyncio.to_thread(browser.get, gw.base_url + "/")
        await asyncio.to_thread(wait_css, browser, "#login:not([hidden])")
        browser.find_element(By.ID, "token-input").send_keys(TOKENS["operator"])
        browser.find_element(By.ID, "token-save").click()
        await asyncio.to_thread(wait_css, browser, "#conn.live")


async def test_a_storm_is_one_incident_line_that_expands_and_is_acknowledged_at_once(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    devices = [
        DeviceSpec(id=f"dorm-smoke-{n:02d}", kind=DeviceKind.SMOKE, building="宿舍楼", zone=f"{n}号房")
        for n in range(20)
    ]
    config = gateway_config(mosquitto, tmp_path / "gw.db", devices)
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="page-storm")
    try:
        async with running_gateway(config) as gw:
            await asyncio.to_thread(browser.get, f"{gw.base_url}/#token={TOKENS['operator']}")
            await asyncio.to_thread(wait_css, browser, "#conn.live")
            for device in devices:
                fleet.smoke(device.id).alarm()
            await gw.wait_for(lambda: gw.gateway.counters.get("alerts_raised", "fire_alarm") == 20)
            await asyncio.to_thread(wait_css, browser, "tr.incident")
            await asyncio.sleep(0.5)
            assert len(browser.find_elements(By.CSS_SELECTOR, "tr.incident")) == 1
            assert browser.find_elements(By.CSS_SELECTOR, 'tr[data-rule="fire_alarm"]') == []
            header = browser.find_element(By.CSS_SELECTOR, "tr.incident")
            assert "宿舍楼" in header.text and "20 个报警" in header.text and "报警风暴" in header.text
            assert browser.find_element(By.ID, "count-open").text == "20"
            header.find_element(By.CSS_SELECTOR, "button.toggle").click()
            await asyncio.sleep(0.3)
            assert len(browser.find_elements(By.CSS_SELECTOR, 'tr.member[data-rule="fire_alarm"]')) == 20
            browser.find_element(By.CSS_SELECTOR, "tr.incident button.ack-all").click()
            await gw.wait_for(
                lambda: (
                    gw.gateway.pipeline is not None
                    and all(a.acknowledged_at is not None for a in gw.gateway.pipeline.alerts.open_alerts())
                )
            )
            await asyncio.to_thread(
                WebDriverWait(browser, 10).until,
                lambda driver: driver.find_element(By.ID, "count-unacked").text == "0",
            )
    finally:
        fleet.close()
