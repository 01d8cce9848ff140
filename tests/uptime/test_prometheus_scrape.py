"""A real Prometheus (Debian's `prometheus`) scrapes a real gateway; PromQL gives the availability
a hand computation expects, and the exposition follows Prometheus' conventions."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from gateway.broker import free_port
from simulators.fleet import Fleet
from tests.conftest import Broker, stop_process
from tests.harness import TOKENS, RunningGateway, gateway_config, running_gateway

DEVICES = [
    DeviceSpec(id="smoke-1", kind=DeviceKind.SMOKE, building="A", reporting_interval_s=3600),
    DeviceSpec(id="smoke-2", kind=DeviceKind.SMOKE, building="A", reporting_interval_s=3600),
    DeviceSpec(id="efm-1", kind=DeviceKind.ELECTRICAL_FIRE, building="B", reporting_interval_s=3600),
]


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for(self, promql: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if result := self.query(promql):
                return result
            time.sleep(0.2)
        raise AssertionError(f"Prometheus has no {promql} after {timeout_s} s")


def start_prometheus(workdir: Path, target: str, token: str) -> tuple[subprocess.Popen[bytes], Prometheus]:
    """Prometheus on a free port, scraping `target` every second with a bearer token."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed; .ci/run installs it with apt-get")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: campus-gateway
    authorization: {{type: Bearer, credentials: {token}}}
    static_configs: [{{targets: ["{target}"]}}]
"""
    )
    port = free_port()
    with (workdir / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "prometheus.log").read_text(errors="replace")[-2000:])
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, Prometheus(url)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("prometheus did not become ready in 30 s")


@pytest.fixture
def fleet(mosquitto: Broker) -> Iterator[Fleet]:
    fleet = Fleet("test", mosquitto.host, mosquitto.port, client_id="uptime-fleet")
    yield fleet
    fleet.close()


async def _went_offline(gw: RunningGateway, fleet: Fleet) -> tuple[float, float]:
    """smoke-1 stays online; smoke-2 goes offline (its last will) 2 s after it came online."""
    came_online = time.time()
    for smoke in ("smoke-1", "smoke-2"):
        fleet.smoke(smoke).publish("status", {"ts": came_online, "state": "online"}, retain=True)
    await gw.wait_for(lambda: gw.is_online("smoke-2") is True, what="smoke-2 online")
    await asyncio.sleep(2.0)
    went_offline = time.time()
    fleet.smoke("smoke-2").publish("status", {"ts": went_offline, "state": "offline"}, retain=True)
    await gw.wait_for(lambda: gw.is_online("smoke-2") is False, what="smoke-2 offline")
    gw.flush_store()
    return came_online, went_offline


async def test_prometheus_scrapes_the_availability_a_hand_computation_expects(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    config = gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)
    async with running_gateway(config) as gw:
        came_online, went_offline = await _went_offline(gw, fleet)
        target = f"127.0.0.1:{config.api.port}"
        proc, prometheus = start_prometheus(tmp_path / "prometheus", target, TOKENS["bureau"])
        try:
            selector = 'campus_gateway_device_availability_ratio{device="smoke-2",window="24h"}'
            await asyncio.to_thread(prometheus.wait_for, selector)
            # timestamp() is when Prometheus scraped the sample: the hand computation's "now".
            (sample,) = await asyncio.to_thread(prometheus.query, selector)
            (stamp,) = await asyncio.to_thread(prometheus.query, f"timestamp({selector})")
            now = float(stamp["value"][1])
            expected = (went_offline - came_online) / (now - came_online)
            assert float(sample["value"][1]) == pytest.approx(expected, abs=0.02)
            assert sample["metric"]["campus"] == "test" and sample["metric"]["kind"] == "smoke"

            (one,) = await asyncio.to_thread(
                prometheus.query, 'campus_gateway_device_availability_ratio{device="smoke-1"}'
            )
            assert float(one["value"][1]) == 1.0
            # efm-1 never reported: its state is unknown, so it has no availability, and it is down.
            assert (
                await asyncio.to_thread(
                    prometheus.query, 'campus_gateway_device_availability_ratio{device="efm-1"}'
                )
                == []
            )
            (campus,) = await asyncio.to_thread(prometheus.query, "campus_gateway_campus_online_ratio")
            assert float(campus["value"][1]) == pytest.approx(1 / 3)
            (kind,) = await asyncio.to_thread(
                prometheus.query, 'campus_gateway_kind_online_ratio{kind="smoke"}'
            )
            assert float(kind["value"][1]) == 0.5
            down = await asyncio.to_thread(prometheus.query, "campus_gateway_device_up == 0")
            assert sorted(s["metric"]["device"] for s in down) == ["efm-1", "smoke-2"]
            (up,) = await asyncio.to_thread(prometheus.query, 'up{job="campus-gateway"}')
            assert up["value"][1] == "1"
        finally:
            stop_process(proc)


async def test_the_exposition_follows_prometheus_conventions(
    mosquitto: Broker, fleet: Fleet, tmp_path: Path
) -> None:
    async with running_gateway(gateway_config(mosquitto, tmp_path / "gw.db", DEVICES)) as gw:
        await _went_offline(gw, fleet)
        fleet.smoke("smoke-1").publish("event", b"not json")
        await gw.wait_for(lambda: gw.gateway.counters.total("dead_letters") == 1, what="a dead letter")
        response = await gw.http.get("/metrics", headers=gw.headers("bureau"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert (await gw.http.get("/metrics")).status_code == 401
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    for family in families.values():
        assert family.documentation, f"{family.name} has no HELP"
        for sample in family.samples:
            assert sample.timestamp is None
            assert "label" not in sample.labels
            if family.name.endswith("_ratio"):
                assert 0.0 <= sample.value <= 1.0
    assert families["campus_gateway_dead_letters"].type == "counter"
    (dead,) = families["campus_gateway_dead_letters"].samples
    assert dead.name == "campus_gateway_dead_letters_total" and dead.labels["reason"] and dead.value == 1
    (build,) = families["campus_gateway_build_info"].samples
    assert build.value == 1 and build.labels["version"]
    assert {s.labels["severity"] for s in families["campus_gateway_open_alerts"].samples} >= {
        "major",
        "critical",
    }
    unknown = {s.labels["device"]: s.value for s in families["campus_gateway_device_unknown_seconds"].samples}
    assert unknown["efm-1"] > 0 and unknown["smoke-1"] < unknown["efm-1"]
