"""A panic press in a camera's zone, watched in the console: the alert's detail plays the clip's
frames in a real headless Chromium, from before the press to after it.

Real mosquitto, the real gateway and fire-lane worker, a scene video played in real time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from selenium import webdriver

from simulators.firelane_scene import SceneSpec, write_scene
from tests.conftest import Broker
from tests.console.conftest import Console
from tests.firelane.test_gateway_evidence import evidence_gateway, press, published_online, wait_for_state
from tests.harness import running_gateway
from tests.notify.receiver import http_receiver

BEFORE_S, AFTER_S = 8.0, 3.0  # short, so the test waits seconds, not the 40 of the default


async def test_the_alert_detail_plays_the_clip_from_before_the_press(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    video, _, _ = write_scene(SceneSpec("gate", seed=4, duration_s=90.0), tmp_path / "scene")
    with http_receiver() as police:
        config = evidence_gateway(
            tmp_path, mosquitto, str(video), police.url, before_s=BEFORE_S, after_s=AFTER_S
        )
        async with running_gateway(config) as gw:
            await gw.wait_for(lambda: gw.is_online("cam1") is True, 30, "camera online")
            await asyncio.sleep(BEFORE_S + 6)  # the worker's first frames, then the seconds before
            await asyncio.to_thread(press, mosquitto)
            alert = await gw.wait_for_alert("panic_pressed", device_id="p1")
            (entry,) = alert["details"]["evidence"]

            page = Console(browser, gw)
            await page.open()
            await page.click('tr[data-rule="panic_pressed"] a.open-detail')
            player = await page.wait(f'.evidence-player[data-evidence-id="{entry["id"]}"]')
            assert "录像生成中" in player.text  # the snapshot shows until the clip is written
            await wait_for_state(gw, entry["id"], "ready", timeout_s=AFTER_S + 10)
            await page.wait(".evidence-player.ready", timeout_s=10)

            def shown_offset() -> float:
                return float(page.find(".evidence-player").get_attribute("data-offset") or "nan")

            def frame_drawn() -> bool:
                return bool(page.js("const i = document.querySelector('.evidence-frame');"
                                    "return i.complete && i.naturalWidth > 0 && i.src.includes('/frames/');"))  # fmt: skip

            await page.until(frame_drawn, 10, "the first frame drawn")
            assert shown_offset() <= -(BEFORE_S - 2.0)  # it opens on the seconds before the press
            assert "报警前" in page.find(".evidence-offset").text
            await page.screenshot(tmp_path / "evidence-player-before-1920.png")

            started = time.monotonic()
            await page.click(".evidence-player button.evidence-play")
            assert page.find(".evidence-player button.evidence-play").text == "暂停"
            await page.until(lambda: shown_offset() > 0, BEFORE_S + AFTER_S + 10, "past the press")
            # Stepped at the frames' own times (1 fps), not flipped through at once.
            assert time.monotonic() - started >= BEFORE_S - 3.0
            await page.until(frame_drawn, 10, "a frame after the press drawn")
            assert "报警后" in page.find(".evidence-offset").text
            await page.screenshot(tmp_path / "evidence-player-after-1920.png")

            # The slider goes back to the start, and the AVI is still there to download.
            page.js("const s = document.querySelector('.evidence-slider'); s.value = '0';"
                    "s.dispatchEvent(new Event('input'));")  # fmt: skip
            assert shown_offset() <= -(BEFORE_S - 2.0)
            href = page.find(".evidence-clip").get_attribute("href") or ""
            assert href.endswith(f"/api/v1/evidence/{entry['id']}/clip.avi?token=op-token")


async def test_the_open_alert_detail_turns_to_video_unavailable_when_the_worker_never_answers(
    mosquitto: Broker, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    """cam1 says it is online but no worker runs it: the detail first waits for the clip, then,
    told over the stream, says the video is unavailable and why."""
    with http_receiver() as police:
        config = evidence_gateway(
            tmp_path, mosquitto, str(tmp_path / "no-such-video.avi"), police.url, worker_camera="cam2"
        )
        # Long enough to open the detail while the gateway still waits for the answer.
        config.evidence = config.evidence.model_copy(update={"answer_timeout_s": 6.0})
        async with running_gateway(config) as gw:
            await asyncio.to_thread(published_online, mosquitto, "cam1")
            await gw.wait_for(lambda: gw.is_online("cam1") is True, 10, "cam1 online")
            page = Console(browser, gw)
            await page.open()
            await asyncio.to_thread(press, mosquitto)
            await page.click('tr[data-rule="panic_pressed"] a.open-detail')
            await page.wait(".alert-detail .evidence-player")
            unavailable = await page.wait(".alert-detail .evidence-unavailable", timeout_s=15)
            assert unavailable.text == "视频不可用：视频服务未响应"
            assert not page.all(".alert-detail .evidence-player")
            await page.screenshot(tmp_path / "evidence-unavailable-1920.png")
