"""Console benchmark (issue 15): the live page in Chromium during bench/engine.py's storm.

500 smoke detectors of one building alarm within 10 s (one every 20 ms) while the page is open in
headless Chromium. The page stamps each stream message on arrival (performance.now) and again
when the DOM update that includes it is done; this prints the p50/p99/max of that delay (target
p99 < 100 ms) and checks the storm is drawn as one incident line.

    python bench/console.py

Needs /usr/sbin/mosquitto, chromium and chromium-driver (as the tests do).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from engine import STORM_DETECTORS, STORM_SPACING_S, storm_inventory
from ingest import CAMPUS_ID, TOKEN, GatewayProcess, mosquitto, percentile, verdict
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simulators.fleet import Fleet


def browser(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1920,1080"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def open_incidents(api_port: int) -> list[dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/api/v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        return [i for i in json.load(reply) if i["building"] == "Library"]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        workdir = Path(tmp)
        with mosquitto(workdir) as (port, _):
            gateway = GatewayProcess(workdir, "console", port, 1, 0, 0, {"inventory": storm_inventory()})
            try:
                gateway.start()
                gateway.wait_ready()
                gateway.wait_subscribed("127.0.0.1", port)
                driver = browser(str(workdir / "chromium"))
                fleet = Fleet(CAMPUS_ID, "127.0.0.1", port, qos=1, client_id="bench-console")
                try:
                    driver.get(f"http://127.0.0.1:{gateway.api_port}/#token={TOKEN}")
                    deadline = time.time() + 15
                    while not driver.execute_script("return document.querySelector('#conn.live') !== null"):
                        if time.time() > deadline:
                            raise SystemExit("the page did not connect")
                        time.sleep(0.1)
                    driver.execute_script("window.renderLatencies.length = 0")
                    started = time.time()
                    for n in range(STORM_DETECTORS):
                        fleet.smoke(f"storm-smoke-{n:03d}").event("alarm", ts=time.time())
                        time.sleep(max(0.0, started + (n + 1) * STORM_SPACING_S - time.time()))
                    deadline = time.time() + 30
                    count_open = "return Number(document.getElementById('count-open').textContent)"
                    while driver.execute_script(count_open) < STORM_DETECTORS:
                        if time.time() > deadline:
                            shown = driver.execute_script(count_open)
                            raise SystemExit(f"the page shows {shown} of {STORM_DETECTORS} alerts after 30 s")
                        time.sleep(0.1)
                    time.sleep(1.0)
                    latencies = sorted(driver.execute_script("return window.renderLatencies"))
                    lines = driver.execute_script(
                        "return document.querySelectorAll('#alerts tr.incident').length"
                    )
                    single = driver.execute_script(
                        "return document.querySelectorAll('#alerts tr[data-rule=fire_alarm]').length"
                    )
                finally:
                    fleet.close()
                    driver.quit()
                incidents = open_incidents(gateway.api_port)
            finally:
                gateway.stop()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"storm: {STORM_DETECTORS} alarms; {len(latencies)} stream messages drawn; message to DOM update "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")  # fmt: skip
    print(f"  board: {lines} incident line(s), {single} separate fire_alarm rows; incidents for the building: "
          f"{len(incidents)}")  # fmt: skip
    ok = p99 < 100 and lines == 1 and single == 0 and len(incidents) == 1
    print(f"  p99 < 100 ms and the storm is one incident line: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
