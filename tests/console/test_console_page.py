"""The operator's console: plans, alert detail, tickets, sound, liveness, languages and layout."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.conftest import Broker
from tests.console.conftest import Console, console_campus, console_config
from tests.harness import TOKENS, running_gateway

PLAN = '#plan-picker button[data-plan="教学楼|1F"]'
SMOKE_MARKER = '.marker[data-device-id="tb-smoke-1"]'
CJK = re.compile(r"[\u4e00-\u9fff]")


async def test_a_plan_marker_turns_red_on_an_alarm_is_acknowledged_there_and_returns_after_clear(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, gw, fleet):
        await page.open()
        await page.view("plans")
        await page.click(PLAN)
        marker = await page.wait(SMOKE_MARKER + '[data-state="normal"]')
        assert "pulse" not in (marker.get_attribute("class") or "")
        unplaced = page.find("#plan-unplaced").text
        assert "教学楼1层走廊烟感" in unplaced, "a device without x/y is listed beside the plan"

        fleet.smoke("tb-smoke-1").alarm()
        marker = await page.wait(SMOKE_MARKER + '[data-state="alarm"].pulse')
        await page.screenshot(tmp_path / "plan-alarm-1920.png")

        await asyncio.to_thread(marker.click)
        await page.click(".device-detail button.ack")
        await gw.wait_for_alert("fire_alarm", "tb-smoke-1", state="acknowledged")
        await page.wait(SMOKE_MARKER + '[data-state="alarm"]:not(.pulse)')

        fleet.smoke("tb-smoke-1").alarm_clear()
        await gw.wait_for_alert("fire_alarm", "tb-smoke-1", state="cleared")
        await page.wait(SMOKE_MARKER + '[data-state="normal"]')


async def test_an_alerts_detail_shows_the_value_that_raised_it_and_the_readings_around_it(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, gw, fleet):
        await page.open()
        heat = fleet.temperature("tb-heat-1")
        for value in (24.0, 24.5, 25.0, 63.2):
            heat.telemetry(temperature_c=value)
            await asyncio.sleep(0.05)
        await gw.wait_for_alert("heat_high", "tb-heat-1")
        await asyncio.to_thread(gw.flush_store)
        await page.click('tr[data-rule="heat_high"] a.open-detail')
        trigger = await page.wait(".alert-detail .trigger")
        assert "63.2 °C" in trigger.text
        await page.wait(".alert-detail svg.chart polyline")
        detail = page.find(".alert-detail").text
        assert "教学楼1层温感" in detail and "尚未确认" in detail and "报警" in detail
        await page.click(".alert-detail button.ack")
        await page.until(
            lambda: "operator-1" in page.find(".alert-detail .acked-by").text, what="who acknowledged"
        )
        await page.screenshot(tmp_path / "alert-detail-1920.png")


async def test_a_ticket_from_an_alert_is_assigned_verified_by_a_second_operator_and_closed_once_normal(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, gw, fleet):
        await page.open()
        fleet.smoke("tb-smoke-1").alarm()
        await page.click('tr[data-rule="fire_alarm"] a.open-detail')
        await page.click(".alert-detail button.open-ticket")
        await page.wait(".ticket-detail")
        ticket_id = int(page.find(".ticket-detail").get_attribute("data-ticket-id") or 0)

        async def state_is(state: str) -> None:
            await page.wait(f'.ticket-detail[data-state="{state}"]')

        await asyncio.to_thread(page.find(".ticket-detail select.responsible").send_keys, "张伟")
        await page.click(".ticket-detail button.assign")
        await state_is("assigned")
        await asyncio.to_thread(page.find(".ticket-detail textarea[name=measures]").send_keys, "更换探测器")
        await asyncio.to_thread(page.find(".ticket-detail select.verifier").send_keys, "李娜")
        await page.click(".ticket-detail button.save")
        await page.until(
            lambda: page.find(".ticket-detail textarea[name=measures]").get_attribute("data-dirty") is None
        )
        await page.click(".ticket-detail button.to-in_progress")
        await state_is("in_progress")
        photo = tmp_path / "fixed.png"
        photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
        await asyncio.to_thread(page.find(".ticket-detail input.photo-file").send_keys, str(photo))
        await page.click(".ticket-detail button.add-photo")
        await page.wait('.ticket-detail img.photo[alt="fixed.png"]')
        await page.click(".ticket-detail button.to-pending_verification")
        await state_is("pending_verification")

        # The smoke detector is still in alarm: the close is refused, and the page says why.
        blockers = await page.wait('.ticket-detail ul.blockers li[data-code="device_not_normal"]')
        assert "尚未恢复正常" in blockers.text
        await page.click(".ticket-detail button.to-closed")
        toast = await page.wait("#toast.error")
        assert "尚未恢复正常" in toast.text
        ticket = (await gw.get(f"/api/v1/tickets/{ticket_id}"))["ticket"]
        assert ticket["state"] == "pending_verification" and ticket["measures"] == "更换探测器"
        await page.screenshot(tmp_path / "ticket-refused-1920.png")

        fleet.smoke("tb-smoke-1").alarm_clear()
        await gw.wait_for_alert("fire_alarm", "tb-smoke-1", state="cleared")

        # A second operator signs in (Enter submits) and verifies the close.
        await page.click("#sign-out")
        field = await page.wait("#token-input")
        await asyncio.to_thread(field.send_keys, TOKENS["admin"] + Keys.ENTER)
        await page.wait("#conn.live")
        await page.view("tickets")
        await page.click(f'tr[data-ticket-id="{ticket_id}"] a')
        await page.wait('.ticket-detail[data-state="pending_verification"]')
        await page.until(lambda: not page.all(".ticket-detail ul.blockers"), what="no blockers once normal")
        await page.click(".ticket-detail button.to-closed")
        await state_is("closed")
        closed = (await gw.get(f"/api/v1/tickets/{ticket_id}"))["ticket"]
        assert closed["state"] == "closed" and closed["verifier_id"] == "li-na"
        assert closed["responsible_id"] == "zhang-wei"

        await page.click("#detail-close")
        await asyncio.to_thread(Select(page.find("#ticket-state")).select_by_value, "in_progress")
        await page.until(lambda: not page.all(f'tr[data-ticket-id="{ticket_id}"]'), what="filtered out")
        await asyncio.to_thread(Select(page.find("#ticket-state")).select_by_value, "closed")
        await page.wait(f'tr[data-ticket-id="{ticket_id}"]')


@pytest.mark.parametrize(
    ("device_id", "rule", "repeat"),
    [("panic-1", "panic_pressed", "press"), ("gate-1", "gate_forced", "force_open")],
)
async def test_the_alarm_sounds_until_acknowledged_and_again_on_a_repeat(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome, device_id: str, rule: str, repeat: str
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, gw, fleet):
        await page.open()
        await page.click("#sound-enable")  # the click browsers need before audio
        await page.wait('body[data-sound="ready"]')
        device = fleet.device("panic" if rule == "panic_pressed" else "gate", device_id)
        getattr(device, repeat)()
        await page.wait('body[data-sound="playing"]')
        beeps = int(page.js("return document.body.dataset.beeps"))
        await page.until(
            lambda: int(page.js("return document.body.dataset.beeps")) > beeps + 2, what="tones repeat"
        )

        await page.click(f'tr[data-rule="{rule}"] button.ack')
        await page.wait('body[data-sound="ready"]')
        await page.wait(f'tr[data-rule="{rule}"].state-acknowledged:not(.attention)')

        getattr(device, repeat)()  # pressed (forced) again after the acknowledgement
        await page.wait('body[data-sound="playing"]')
        row = await page.wait(f'tr[data-rule="{rule}"].attention')
        assert "确认后再次触发" in row.text and "再次确认" in row.text
        assert page.find("#count-unacked").text == "1"
        await page.click(f'tr[data-rule="{rule}"] button.ack')
        await page.wait('body[data-sound="ready"]')
        alert = await gw.wait_for_alert(rule, device_id, state="acknowledged", min_count=2)
        assert alert["attention"] is False


async def test_mute_silences_for_the_chosen_minutes_and_says_so(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, _gw, fleet):
        await page.open()
        await page.click("#sound-enable")
        fleet.panic("panic-1").press()
        await page.wait('body[data-sound="playing"]')
        await page.click("#sound-mute")
        state = await page.wait('body[data-sound="muted"] #sound-state')
        assert state.text.startswith("静音至")
        await page.click("#sound-mute")  # unmute
        await page.wait('body[data-sound="playing"]')


async def test_lost_gateway_flags_the_board_refuses_actions_and_resyncs_on_return(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    config = console_config(mosquitto, tmp_path / "gw.db")
    async with console_campus(mosquitto, tmp_path, browser, config) as (page, gw, fleet):
        await page.open()
        fleet.panic("panic-1").press()
        await page.wait('tr[data-rule="panic_pressed"] button.ack')
        gw.gateway.stop()
        await gw.task
        banner = await page.wait("#offline-banner")
        assert "连接已断开" in banner.text and re.search(r"\d\d:\d\d:\d\d", banner.text)
        await page.wait("body.offline")
        assert not page.find('tr[data-rule="panic_pressed"] button.ack').is_enabled()
        await page.screenshot(tmp_path / "offline-1920.png")
    async with running_gateway(config) as again:
        alert = await again.wait_for_alert("panic_pressed")
        await page.until(lambda: not page.find("#offline-banner").is_displayed(), 15, "reconnected")
        row = await page.wait(f'tr[data-alert-id="{alert["id"]}"] button.ack')
        assert row.is_enabled()


async def test_a_typed_note_survives_live_updates_and_rows_hold_still_under_the_pointer(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, gw, fleet):
        await page.open()
        fleet.gate("gate-1").force_open()
        await page.wait('tr[data-rule="gate_forced"]')
        note = page.find('tr[data-rule="gate_forced"] input.note')
        await asyncio.to_thread(note.send_keys, "保安已到场")
        fleet.gate("gate-1").force_open()  # a live update of the same row
        await gw.wait_for_alert("gate_forced", min_count=2)
        await asyncio.sleep(0.5)
        assert page.find('tr[data-rule="gate_forced"] input.note').get_attribute("value") == "保安已到场"

        # With the pointer over the table, a new (more urgent) alert does not push rows down.
        await asyncio.to_thread(
            ActionChains(page.driver).move_to_element(page.find('tr[data-rule="gate_forced"]')).perform
        )
        fleet.panic("panic-1").press()
        await page.wait('tr[data-rule="panic_pressed"]')
        rules = [tr.get_attribute("data-rule") for tr in page.all("#alerts tr")]
        assert rules == ["gate_forced", "panic_pressed"]
        await page.click("header h1")  # pointer away, and the note no longer focused
        await page.until(
            lambda: next(tr.get_attribute("data-rule") for tr in page.all("#alerts tr")) == "panic_pressed",
            what="re-sorted once the pointer left",
        )
        assert page.find('tr[data-rule="gate_forced"] input.note').get_attribute("value") == "保安已到场"


async def test_login_says_when_a_token_is_wrong_and_enter_submits(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, _gw, _fleet):
        await page.open(token=None)
        field = await page.wait("#token-input")
        await asyncio.to_thread(field.send_keys, "not-a-token" + Keys.ENTER)
        error = await page.wait("#login-error")
        assert "令牌不正确" in error.text
        await asyncio.to_thread(field.clear)
        await asyncio.to_thread(field.send_keys, TOKENS["bureau"] + Keys.ENTER)
        await page.until(lambda: "无权" in page.find("#login-error").text, what="bureau refused")
        await asyncio.to_thread(field.clear)
        await asyncio.to_thread(field.send_keys, TOKENS["operator"] + Keys.ENTER)
        await page.wait("#conn.live")


async def _tour(page: Console) -> None:
    """Every view and every kind of detail, so each string gets drawn."""
    await page.view("alerts")
    await page.click('tr[data-rule="fire_alarm"] a.open-detail')
    await page.wait(".alert-detail")
    await page.click(".alert-detail button.open-ticket")
    await page.wait(".ticket-detail")
    await page.click("#detail-close")
    for view in ("plans", "devices", "tickets"):
        await page.view(view)
        await asyncio.sleep(0.3)
    await page.view("alerts")


async def test_no_horizontal_overflow_at_390_px_in_any_view(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, _gw, fleet):
        page.size(390, 844)
        await page.open()
        fleet.smoke("tb-smoke-1").alarm()
        fleet.smoke("tb-smoke-2").alarm()
        fleet.panic("panic-1").press()
        await page.wait('tr[data-rule="panic_pressed"]')
        await page.screenshot(tmp_path / "alerts-390.png")

        def overflow() -> int:
            return int(page.js("return document.documentElement.scrollWidth - window.innerWidth"))

        assert overflow() <= 0
        for view in ("plans", "devices", "tickets"):
            await page.view(view)
            await asyncio.sleep(0.4)
            assert overflow() <= 0, view
        await page.view("plans")
        await page.click(PLAN)
        await page.screenshot(tmp_path / "plans-390.png")
        await page.view("alerts")
        await page.click('tr[data-rule="panic_pressed"] a.open-detail')
        await page.wait(".alert-detail")
        assert overflow() <= 0
        await page.screenshot(tmp_path / "detail-390.png")


async def test_every_ui_string_exists_in_both_languages_and_the_english_view_is_english(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    async with console_campus(mosquitto, tmp_path, browser) as (page, _gw, fleet):
        await page.open()
        missing = page.js(
            """
            const keys = (o, p) => Object.entries(o).flatMap(([k, v]) =>
              typeof v === "object" ? keys(v, p + k + ".") : [p + k]);
            const zh = keys(I18N["zh-CN"], ""), en = keys(I18N.en, "");
            return [zh.filter((k) => !en.includes(k)), en.filter((k) => !zh.includes(k))];
            """
        )
        assert missing == [[], []]
        await page.click("#lang")
        fleet.smoke("tb-smoke-1").alarm()
        fleet.smoke("tb-smoke-2").alarm()
        await page.wait("tr.incident")
        await page.click("tr.incident button.toggle")
        await _tour(page)
        assert page.js("return window.missingText") == []
        for css in (
            "header h1",
            "#sound-enable",
            "#tabs",
            "#summary",
            "#alert-table thead",
            "#alerts tr.incident td.state",
        ):
            assert not CJK.search(page.find(css).text.replace("测试学校", "")), css
        incident = page.find("#alerts tr.incident").text
        assert "alerts" in incident and "devices" in incident and "、" not in incident
        await page.screenshot(tmp_path / "english-1920.png")
