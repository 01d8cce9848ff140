"""The security room's console in a real headless Chromium against a real running gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from analytics.tickets.config import TicketsConfig
from analytics.tickets.people import PersonConfig
from gateway.config import GatewayConfig
from simulators.fleet import Fleet
from tests.browser import chromium
from tests.conftest import Broker
from tests.harness import TOKENS, RunningGateway, gateway_config, running_gateway

K = DeviceKind

# A small campus: a floor with a plan (one device without a position), a panic button, a gate.
DEVICES = [
    DeviceSpec(id="tb-smoke-1", kind=K.SMOKE, name="教学楼1层烟感", building="教学楼", floor="1F", zone="101教室",
               x=200, y=150),
    DeviceSpec(id="tb-heat-1", kind=K.TEMPERATURE, name="教学楼1层温感", building="教学楼", floor="1F", zone="配电间",
               x=600, y=150),
    DeviceSpec(id="tb-smoke-2", kind=K.SMOKE, name="教学楼1层走廊烟感", building="教学楼", floor="1F", zone="走廊"),
    DeviceSpec(id="panic-1", kind=K.PANIC, name="校长室一键报警", building="综合楼", floor="3F", zone="校长室"),
    DeviceSpec(id="gate-1", kind=K.GATE, name="南门门禁", building="南门", zone="校门"),
]  # fmt: skip
PEOPLE = [
    PersonConfig(id="zhang-wei", name="张伟", role="总务主任"),
    PersonConfig(id="li-na", name="李娜", role="安全办主任"),
]
PLAN_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="300" viewBox="0 0 800 300">'
    b'<rect width="800" height="300" fill="#eef"/><rect x="20" y="20" width="760" height="260" fill="none" '
    b'stroke="#333" stroke-width="4"/></svg>'
)


def console_config(broker: Broker, db_path: Path) -> GatewayConfig:
    config = gateway_config(broker, db_path, DEVICES)
    return config.model_copy(update={"tickets": TicketsConfig(people=PEOPLE)})


class Console:
    """The page, driven from async tests: every blocking browser call runs off the event loop
    (the gateway under test runs on it)."""

    def __init__(self, driver: webdriver.Chrome, gw: RunningGateway) -> None:
        self.driver = driver
        self.gw = gw

    async def open(self, token: str | None = TOKENS["operator"]) -> None:
        url = self.gw.base_url + "/" + (f"#token={token}" if token else "")
        await asyncio.to_thread(self.driver.get, url)
        if token:
            await self.wait("#conn.live")

    async def until(self, condition: Callable[[], Any], timeout_s: float = 15, what: str = "") -> Any:
        def check(_: Any) -> Any:
            try:
                return condition()
            except StaleElementReferenceException:
                return False

        wait = WebDriverWait(self.driver, timeout_s, ignored_exceptions=(StaleElementReferenceException,))
        return await asyncio.to_thread(wait.until, check, what)

    async def wait(self, css: str, timeout_s: float = 15) -> WebElement:
        def visible() -> WebElement | bool:
            found = self.driver.find_elements(By.CSS_SELECTOR, css)
            return found[0] if found and found[0].is_displayed() else False

        element: WebElement = await self.until(visible, timeout_s, f"{css} visible")
        return element

    async def click(self, css: str) -> None:
        element = await self.wait(css)
        await asyncio.to_thread(element.click)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    async def view(self, name: str) -> None:
        await self.click(f'#tabs button[data-view="{name}"]')

    async def screenshot(self, path: Path) -> None:
        await asyncio.to_thread(self.driver.save_screenshot, str(path))
        assert path.stat().st_size > 10_000

    def size(self, width: int, height: int) -> None:
        """The viewport exactly (a headless window has a minimum width above a phone's)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700},
        )


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with chromium(1920, 1080) as driver:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver


@asynccontextmanager
async def console_campus(
    broker: Broker, tmp_path: Path, driver: webdriver.Chrome, config: GatewayConfig | None = None
) -> AsyncIterator[tuple[Console, RunningGateway, Fleet]]:
    """A running gateway of `DEVICES` with the 教学楼 1F plan uploaded, its fleet online, the page."""
    config = config or console_config(broker, tmp_path / "gw.db")
    fleet = Fleet("test", broker.host, broker.port, client_id=f"console-fleet-{tmp_path.name}"[:60])
    try:
        async with running_gateway(config) as gw:
            response = await gw.http.put(
                "/api/v1/plans/image",
                params={"building": "教学楼", "floor": "1F"},
                files={"file": ("plan.svg", PLAN_SVG, "image/svg+xml")},
                headers=gw.headers("admin"),
            )
            assert response.status_code == 201, response.text
            for device in DEVICES:
                fleet.device(device.kind.value, device.id).status("online")
            await gw.wait_for(lambda: all(gw.is_online(d.id) for d in DEVICES), what="devices online")
            yield Console(driver, gw), gw, fleet
    finally:
        fleet.close()
