"""The bureau's question, end to end: which devices in which schools were down, for how long, and
which schools did not answer. Three real gateway processes, each with its own mosquitto and
simulated devices that drop off on a schedule; one gateway is killed with SIGKILL and restarted
(its gap is unknown, not offline); one address has nothing listening; one token is wrong."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from analytics.uptime import HEARTBEAT_S
from gateway.broker import free_port
from gateway.config import hash_token
from simulators.fleet import Fleet, SimulatedDevice
from tests.conftest import start_mosquitto, stop_process

REPO = Path(__file__).resolve().parents[2]


@dataclass
class School:
    """One school: its broker, its gateway process and its devices."""

    name: str
    key: str
    workdir: Path
    reporting_interval_s: float = 3600
    api_port: int = field(default_factory=free_port)
    token: str = ""
    process: subprocess.Popen[bytes] | None = None
    broker: subprocess.Popen[bytes] | None = None
    fleet: Fleet | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_broker(self) -> None:
        self.broker, broker = start_mosquitto(self.workdir / "mosquitto")
        self.token = f"bureau-{self.key}"
        (self.workdir / "inventory.yaml").write_text(
            "devices:\n"
            f"  - {{id: {self.key}1, kind: smoke, building: 教学楼, reporting_interval_s: 3600}}\n"
            f"  - {{id: {self.key}2, kind: temperature, building: 食堂, reporting_interval_s: {self.reporting_interval_s}}}\n"
        )
        (self.workdir / "gateway.yaml").write_text(
            f"""
campus: {{id: {self.key}, name: {self.name}}}
broker: {{host: 127.0.0.1, port: {broker.port}, client_id: gw-{self.key}}}
storage: {{sqlite_path: gw.db}}
api:
  host: 127.0.0.1
  port: {self.api_port}
  tokens: [{{name: bureau, role: bureau, sha256: "{hash_token(self.token)}"}}]
inventory: inventory.yaml
"""
        )
        self.fleet = Fleet(self.key, "127.0.0.1", broker.port, client_id=f"fleet-{self.key}")

    def start_gateway(self) -> float:
        """Start the gateway process; returns when its API answers, the time it was spawned."""
        spawned = time.time()
        with (self.workdir / "gateway.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "--config", str(self.workdir / "gateway.yaml")],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.workdir / "gateway.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    time.sleep(0.5)  # subscribed to its broker
                    return spawned
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gateway {self.key} did not answer in 30 s")

    def device(self, number: int) -> SimulatedDevice:
        assert self.fleet is not None
        kind = "smoke" if number == 1 else "temperature"
        return self.fleet.device(kind, f"{self.key}{number}")

    def status(self, number: int, state: str, ts: float) -> None:
        self.device(number).publish("status", {"ts": ts, "state": state}, retain=True)

    def online(self, number: int) -> bool | None:
        response = httpx.get(
            f"{self.url}/api/v1/uptime", headers={"Authorization": f"Bearer {self.token}"}, timeout=5
        )
        by_id = {d["device_id"]: d for d in response.json()["devices"]}
        return bool(by_id[f"{self.key}{number}"]["online_now"])

    def wait_online(self, number: int, online: bool, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.online(number) is not online:
            assert time.monotonic() < deadline, f"{self.key}{number} not {'on' if online else 'off'}line"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.close()
        for proc in (self.process, self.broker):
            if proc is not None and proc.poll() is None:
                stop_process(proc)


@pytest.fixture
def schools(tmp_path: Path) -> Iterator[list[School]]:
    # 二中's b2 reports every second, so its silence is an outage.
    started = [
        School("一中", "a", tmp_path / "a"),
        School("二中", "b", tmp_path / "b", reporting_interval_s=1),
        School("三中", "c", tmp_path / "c"),
    ]
    try:
        for school in started:
            school.workdir.mkdir()
            school.start_broker()
            school.start_gateway()
        yield started
    finally:
        for school in started:
            school.stop()


def _keep_reporting(device: SimulatedDevice, stop: threading.Event) -> None:
    while not stop.wait(0.4):
        device.telemetry(temperature_c=21.0)


def _read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return list(csv.DictReader(io.StringIO(text.decode("utf-8-sig"))))


def test_the_district_report_answers_who_was_down_for_how_long_and_who_did_not_answer(
    schools: list[School], tmp_path: Path
) -> None:
    a, b, c = schools
    t0 = time.time()
    for school in schools:
        school.status(1, "online", t0)
        school.status(2, "online", t0)
    # 一中: a2 loses power (its broker publishes its last will) for exactly 3 s, by its own clock.
    a_off = time.time()
    a.status(2, "offline", a_off)
    a.wait_online(2, False)
    time.sleep(max(0.0, a_off + 3.0 - time.time()))
    a.status(2, "online", a_off + 3.0)
    # 二中: b2 reports every second, then falls silent (offline after 3 s), then reports again.
    for _ in range(3):
        b.device(2).telemetry(temperature_c=21.0)
        time.sleep(0.4)
    b_last = time.time()
    b.device(2).telemetry(ts=b_last, temperature_c=21.0)
    b.wait_online(2, False)
    time.sleep(2.0)
    b_back = time.time()
    b.device(2).telemetry(ts=b_back, temperature_c=21.0)
    reporting = threading.Event()
    threading.Thread(target=_keep_reporting, args=(b.device(2), reporting), daemon=True).start()
    # 三中: c2 goes offline; the gateway is killed, stays down 4 s, restarts; c2 comes back.
    c_off = time.time()
    c.status(2, "offline", c_off)
    c.wait_online(2, False)
    time.sleep(1.5)  # its device state is flushed (once a second)
    assert c.process is not None
    killed = time.time()
    c.process.send_signal(signal.SIGKILL)
    c.process.wait(10)
    time.sleep(4.0)
    respawned = c.start_gateway()
    c_on = time.time()
    c.status(2, "online", c_on)
    c.wait_online(2, True)
    a.wait_online(2, True)
    b.wait_online(2, True)

    district = tmp_path / "district.yaml"
    district.write_text(
        f"""
district: 测试区
window: 7d
concurrency: 4
timeout_s: 3
retries: 1
backoff_s: 0.1
gateways:
  - {{school: 一中, url: "{a.url}", token: {a.token}}}
  - {{school: 二中, url: "{b.url}", token: {b.token}}}
  - {{school: 三中, url: "{c.url}", token: {c.token}}}
  - {{school: 四中, url: "http://127.0.0.1:{free_port()}", token: x}}
  - {{school: 五中, url: "{a.url}", token: not-the-token}}
"""
    )
    before = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "district",
            "poll",
            "--gateways",
            str(district),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    after = time.time()
    reporting.set()
    assert done.returncode == 0, done.stderr.decode()
    assert "unreachable: 四中" in done.stderr.decode() and "unreachable: 五中" in done.stderr.decode()

    summary = {row["学校 school"]: row for row in _read_csv(tmp_path / "out" / "district-schools.csv")}
    outages: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in _read_csv(tmp_path / "out" / "district-outages.csv"):
        outages.setdefault((row["学校 school"], row["设备 device"]), []).append(row)
    assert set(outages) == {("一中", "a2"), ("二中", "b2"), ("三中", "c2")}

    def mean_pct(school: str) -> float:
        return float(summary[school]["平均可用率 mean availability (%)"])

    def between(low: float, value: float, high: float) -> bool:
        return low - 0.01 <= value <= high + 0.01  # the CSV rounds to 0.01

    # 一中 by hand: a2 off exactly 3 s (its own clock) of the time known since t0; a1 never off.
    (a2,) = outages[("一中", "a2")]
    assert a2["原因 cause"] == "status"  # its last will is an offline status
    assert float(a2["时长(秒) offline (s)"]) == pytest.approx(3.0, abs=0.05)
    known_min, known_max = before - t0, after - t0  # the gateway answered in between
    assert between(50 * (2 - 3.0 / known_min), mean_pct("一中"), 50 * (2 - 3.0 / known_max))
    assert summary["一中"]["在线率 online rate (%)"] == "100.00"
    assert summary["一中"]["联网率 networked rate (%)"] == "100.00"
    assert summary["一中"]["中断次数 outages"] == "1"

    # 二中: silence counts from detection (3 s after the last report, on a 1 s tick) to the return.
    # (It may also have an outage before: silent from the gateway's start until its first report,
    # as a registered device, when the gateway took longer than 3 s to see it.)
    *at_start, b2 = outages[("二中", "b2")]
    assert len(at_start) <= 1 and all(o["原因 cause"] == "silence" for o in at_start)
    assert b2["原因 cause"] == "silence"
    assert b_back - b_last - 3.0 - 1.5 <= float(b2["时长(秒) offline (s)"]) <= b_back - b_last - 3.0 + 0.2

    # 三中: the gateway's gap (kill to restart, plus at most one heartbeat) is unknown and counts
    # neither way: c1 stays at 100 %, and c2's outage holds only the time the gateway watched.
    (c2,) = outages[("三中", "c2")]
    gap_min, gap_max = respawned - killed, c_on - killed + HEARTBEAT_S
    offline_s = float(c2["时长(秒) offline (s)"])
    assert (c_on - c_off) - gap_max - 0.2 <= offline_s <= (c_on - c_off) - gap_min + 0.2
    low, high = before - t0 - gap_max, after - t0 - gap_min  # c2's known time
    assert between(50 * (2 - offline_s / low), mean_pct("三中"), 50 * (2 - offline_s / high))
    # Unknown: the 7-day window before t0 (no gateway yet), plus the gap.
    unknown_s = 3600 * float(summary["三中"]["状态未知(小时) unknown (h)"])
    assert 7 * 86400 - (after - t0) + gap_min - 36 <= unknown_s <= 7 * 86400 - (before - t0) + gap_max + 36

    assert summary["四中"]["状态 status"] == "无应答 unreachable" and summary["四中"][
        "原因 reason"
    ].startswith("refused")
    assert summary["五中"]["原因 reason"].startswith("401")
    page = (tmp_path / "out" / "district.html").read_text(encoding="utf-8")
    assert "无应答网关 Unreachable gateways (2)" in page and "四中" in page and "a2" in page
