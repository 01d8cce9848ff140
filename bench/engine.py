"""Alert-engine benchmark (issue 4): what the full rule set costs, and alert latency in a storm.

Reuses bench/ingest.py's broker, gateway process and drain method.
  1. Rule evaluation cost per record, in-process: RuleEngine with every default rule versus
     none, on the bench's telemetry mix (temperature_c and humidity_pct of 1,000 devices).
  2. Ingest throughput of `campus-gateway run` draining a held backlog (QoS 1), with all rules
     versus every rule disabled in config; cost = 1 - with/without (target < 30 %).
  3. Storm: 500 smoke detectors of one building alarm within 10 s (one every 20 ms, each
     stamped with its publish time) while a telemetry load runs; latency = arrival of each
     fire_alarm alert on WS /api/v1/stream - publish time (target p99 < 200 ms). The storm must
     be one incident.

    python bench/engine.py [--messages 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ingest import (
    CAMPUS_ID,
    TOKEN,
    GatewayProcess,
    device_ids,
    load_publisher,
    mosquitto,
    percentile,
    throughput,
    verdict,
)
from websockets.asyncio.client import connect as ws_connect

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind, Reading
from analytics.rules.defaults import default_rules
from analytics.rules.engine import RuleEngine
from simulators.fleet import Fleet

STORM_DETECTORS = 500
STORM_SPACING_S = 0.02  # 500 alarms in 10 s


def rule_cost_in_process(records: int = 200_000) -> tuple[float, float]:
    """Microseconds per record through RuleEngine: every default rule, then none."""
    devices = [
        DeviceSpec(id=d, kind=DeviceKind.TEMPERATURE, zone=f"room-{n}")
        for n, d in enumerate(device_ids(1000))
    ]
    now = time.time()
    stream = [
        (Reading(device.id, DeviceKind.TEMPERATURE, metric, now + n * 0.001, 20 + (n % 70) / 10), device)
        for n in range(records // 2)
        for device in (devices[n % 1000],)
        for metric in ("temperature_c", "humidity_pct")
    ]
    costs = []
    for engine in (RuleEngine(default_rules()), RuleEngine([])):
        evaluate = engine.evaluate
        started = time.perf_counter()
        for record, device in stream:
            evaluate(record, device)
        costs.append((time.perf_counter() - started) / len(stream) * 1e6)
    return costs[0], costs[1]


def all_rules_disabled() -> dict[str, Any]:
    return {"rules": {rule.name: {"enabled": False} for rule in default_rules()}}


def storm_inventory() -> list[dict[str, Any]]:
    return [
        {"id": f"storm-smoke-{n:03d}", "kind": "smoke", "building": "Library", "zone": f"reading-{n // 25}",
         "reporting_interval_s": 3600}
        for n in range(STORM_DETECTORS)
    ]  # fmt: skip


async def storm_latency(gateway: GatewayProcess, port: int, load_messages: int) -> dict[str, Any]:
    published: dict[str, float] = {}
    received: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    loader = context.Process(target=load_publisher, args=(port, 1000, load_messages, None, sender))
    fleet = Fleet(CAMPUS_ID, "127.0.0.1", port, qos=1, client_id="bench-storm")
    url = f"ws://127.0.0.1:{gateway.api_port}/api/v1/stream?token={TOKEN}"
    loader.start()
    try:
        async with ws_connect(url, max_size=None, ping_interval=None) as websocket:
            await websocket.recv()  # the snapshot

            async def collect() -> None:
                async for text in websocket:
                    now = time.time()
                    message = json.loads(text)
                    alert = message.get("alert") or {}
                    if alert.get("rule") == "fire_alarm" and alert["device_id"] not in received:
                        received[alert["device_id"]] = now
                    if len(received) == STORM_DETECTORS:
                        return

            collector = asyncio.create_task(collect())
            await asyncio.sleep(1.0)  # the load is running
            started = time.time()
            for n in range(STORM_DETECTORS):
                device_id = f"storm-smoke-{n:03d}"
                published[device_id] = sent = time.time()
                fleet.smoke(device_id).event("alarm", ts=sent)
                await asyncio.sleep(max(0.0, started + (n + 1) * STORM_SPACING_S - time.time()))
            storm_s = time.time() - started
            await asyncio.wait_for(collector, 60)
        with urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{gateway.api_port}/api/v1/incidents",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ),
            timeout=5,
        ) as reply:
            incidents = [i for i in json.load(reply) if i["building"] == "Library"]
        latencies = sorted((received[d] - published[d]) * 1000 for d in received)
        return {"latencies_ms": latencies, "storm_s": storm_s, "incidents": incidents}
    finally:
        fleet.close()
        loader.join(5)
        if loader.is_alive():
            loader.kill()
        receiver.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000, help="backlog per throughput run")
    args = parser.parse_args()
    print("Campus Safety Gateway - alert engine benchmark", flush=True)

    with_rules_us, without_us = rule_cost_in_process()
    print(f"\n[1] rule evaluation in-process: all {len(default_rules())} rules {with_rules_us:.2f} us/record, "
          f"no rules {without_us:.2f} us/record", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        workdir = Path(tmp)
        rates = {}
        for label, extra in (("all rules", None), ("no rules", all_rules_disabled())):
            run_dir = workdir / label.replace(" ", "-")
            run_dir.mkdir()
            with mosquitto(run_dir) as (port, _):
                result = throughput(
                    run_dir, port, 1, 1000, args.messages, 1, extra, name=label.replace(" ", "-")
                )
            rates[label] = result.gateway_rate
            print(f"[2] {label:9s}: gateway drained {args.messages:,} QoS 1 messages at {result.gateway_rate:,.0f} msg/s "
                  f"(bare paho {result.bare_rate:,.0f} msg/s)", flush=True)  # fmt: skip
        cost = 1 - rates["all rules"] / rates["no rules"]

        storm_dir = workdir / "storm"
        storm_dir.mkdir()
        with mosquitto(storm_dir) as (port, _):
            gateway = GatewayProcess(storm_dir, "storm", port, 1, 1000, 1, {"inventory": storm_inventory()})
            try:
                gateway.start()
                gateway.wait_ready()
                gateway.wait_subscribed("127.0.0.1", port)
                storm = asyncio.run(storm_latency(gateway, port, load_messages=200_000))
            finally:
                gateway.stop()
    latencies = storm["latencies_ms"]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"[3] storm: {STORM_DETECTORS} alarms in {storm['storm_s']:.1f} s under a telemetry load; "
          f"{len(latencies)} fire_alarm alerts on the stream; latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {latencies[-1]:.1f} ms; incidents for the building: {len(storm['incidents'])}")  # fmt: skip

    cost_ok = cost < 0.30
    storm_ok = p99 < 200 and len(latencies) == STORM_DETECTORS and len(storm["incidents"]) == 1
    print("\nSummary")
    print(f"  full rule set costs {cost:.1%} of ingest throughput ({rates['all rules']:,.0f} vs "
          f"{rates['no rules']:,.0f} msg/s; target < 30 %): {verdict(cost_ok)}")  # fmt: skip
    print(f"  storm alert latency p99 {p99:.1f} ms (target < 200 ms), one incident: {verdict(storm_ok)}")
    return 0 if cost_ok and storm_ok else 1


if __name__ == "__main__":
    sys.exit(main())
