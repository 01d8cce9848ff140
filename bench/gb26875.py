"""GB/T 26875.3 receiver benchmark: decode rate on one core, receive->record and alarm latency.

Phases:
  1. decode: a stream of N component-status frames (78 bytes each, as the standard's example)
     fed through the stream framer alone, then through the whole centre (framer, data unit,
     mapping, confirm encoding); frames/s of process CPU time on this one core.
  2. latency: the receiver in this process with 100 transmission devices connected over loopback
     TCP from a second process (the simulator, so it does not share this event loop); each device
     sends one component status a second (alarm and restore in turn, waiting for each confirm),
     its description carrying a sequence number. Latency = the record reaching the sink minus
     the simulator's time just before the write; p50/p99/max.
  3. alarm latency: `campus-gateway run` (with mosquitto, as in production) and the same 100
     devices driven from a second process; every other frame is a smoke detector's fire alarm
     (the ones between restore it). Latency = the `fire_alarm` alert's arrival on
     WS /api/v1/stream (raised or reactivated) minus the simulator's time just before the write
     (target p99 < 100 ms; the standard allows 10 s for the confirm alone). Confirms go out
     only after the commit, so this is the path a real panel sees.

Usage: python bench/gb26875.py [--frames 100000] [--devices 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest import TOKEN, GatewayProcess, mosquitto, percentile  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

from analytics.devices import DeviceSpec, Inventory, PanelPoint  # noqa: E402
from analytics.ingest import Envelope  # noqa: E402
from analytics.records import DeviceEvent, DeviceKind  # noqa: E402
from drivers.errors import PayloadError  # noqa: E402
from drivers.gb26875.config import Gb26875Settings  # noqa: E402
from drivers.gb26875.frame import Command, Frame, TimeLabel, encode_frame  # noqa: E402
from drivers.gb26875.framer import StreamFramer  # noqa: E402
from drivers.gb26875.receiver import Gb26875Receiver  # noqa: E402
from drivers.gb26875.units import ComponentStatus, encode_unit, unit_of  # noqa: E402
from gateway.broker import free_port  # noqa: E402

BASE_ADDRESS = 10_000
SMOKE_ADDRESS = 10 | 2 << 16  # zone 10, position 2


def inventory(devices: int) -> tuple[Inventory, Gb26875Settings]:
    specs: list[DeviceSpec] = []
    transmitters = []
    for n in range(devices):
        tid = f"uitd-{n}"
        specs.append(
            DeviceSpec(id=tid, kind=DeviceKind.FIRE_PANEL, protocol="gb26875", reporting_interval_s=30)
        )
        specs.append(
            DeviceSpec(
                id=f"{tid}-smoke",
                kind=DeviceKind.SMOKE,
                protocol="gb26875",
                gb26875=PanelPoint(transmitter=tid, system_address=1, component_address=SMOKE_ADDRESS),
            )
        )
        transmitters.append({"id": tid, "address": BASE_ADDRESS + n})
    settings = Gb26875Settings.model_validate({"host": "127.0.0.1", "port": 0, "transmitters": transmitters})
    return Inventory(specs), settings


class Sink:
    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], float] = {}
        self.records = 0
        self.rejected = 0

    def submit_envelopes(self, envelopes: Sequence[Envelope]) -> Future[None]:
        now = time.time()
        records = [record for envelope in envelopes for record in envelope.records]
        self.records += len(records)
        for record in records:
            if isinstance(record, DeviceEvent) and record.name in ("alarm", "alarm_clear"):
                self.arrivals.setdefault((record.device_id, str(record.attrs["description"])), now)
        committed: Future[None] = Future()
        committed.set_result(None)
        return committed

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None:
        self.rejected += 1


def decode_phase(count: int) -> None:
    now = time.time()
    label = TimeLabel.from_timestamp(now, ZoneInfo("Asia/Shanghai"))
    frames = [
        encode_frame(
            Frame(
                n & 0xFFFF,
                BASE_ADDRESS + n % 100,
                0,
                Command.SEND,
                encode_unit(
                    unit_of(ComponentStatus(1, 1, 40, SMOKE_ADDRESS, 2 if n % 2 else 1, "三楼走廊", label))
                ),
                label.to_bytes(),
            )
        )
        for n in range(count)
    ]
    stream = b"".join(frames)
    segments = [stream[i : i + 1460] for i in range(0, len(stream), 1460)]  # one TCP MSS at a time

    started = time.process_time()
    framer = StreamFramer()
    found = sum(len(framer.feed(segment)) for segment in segments)
    framer_s = time.process_time() - started
    assert found == count

    inv, settings = inventory(100)
    receiver = Gb26875Receiver(settings, inv, Sink(), Sink())
    started = time.process_time()
    framer = StreamFramer()
    replies = 0
    for segment in segments:
        replies += len(receiver.handle(framer.feed(segment), "bench", now).confirms)
    full_s = time.process_time() - started
    assert replies == count
    print(f"decode: {count} frames of {len(frames[0])} bytes in {len(segments)} segments of 1460 bytes")
    print(f"  framer only:                       {count / framer_s:>10,.0f} frames/s (one core, CPU time)")
    print(f"  framer + unit + mapping + confirm: {count / full_s:>10,.0f} frames/s (one core, CPU time)")


async def latency_phase(devices: int, seconds: float) -> None:
    inv, settings = inventory(devices)
    sink = Sink()
    receiver = Gb26875Receiver(settings, inv, sink, sink)
    await receiver.start()
    sent = await drive_from_another_process(receiver.tcp_port, devices, seconds)
    await asyncio.sleep(0.2)
    latencies_ms = []
    for key, sent_at in sent.items():
        tid, seq = key.split("|")
        arrival = sink.arrivals.get((f"{tid}-smoke", seq))
        if arrival is not None:
            latencies_ms.append((arrival - sent_at) * 1000)
    await receiver.stop()
    latencies_ms.sort()
    p50, p99 = percentile(latencies_ms, 0.5), percentile(latencies_ms, 0.99)
    stats = receiver.stats()
    print(
        f"latency: {devices} transmission devices connected, one status frame each per second, {seconds:.0f} s"
    )
    print(
        f"  frames sent {len(sent)}, records matched {len(latencies_ms)}, confirms {stats['confirms']}, rejected {sink.rejected}"
    )
    print(f"  receive->record latency ms: p50 {p50:.2f}  p99 {p99:.2f}  max {latencies_ms[-1]:.2f}")


def gateway_extra_config(devices: int, panel_port: int) -> dict[str, Any]:
    """The bench's panels for `campus-gateway run`: one detector per transmitter, each its own zone."""
    inventory: list[dict[str, Any]] = []
    for n in range(devices):
        tid = f"uitd-{n}"
        inventory.append({"id": tid, "kind": "fire_panel", "protocol": "gb26875", "reporting_interval_s": 30})
        inventory.append(
            {"id": f"{tid}-smoke", "kind": "smoke", "protocol": "gb26875", "building": "Library",
             "zone": f"room-{n}",  # one detector a zone: no fire_confirmed to muddle the stream
             "gb26875": {"transmitter": tid, "system_address": 1, "component_address": SMOKE_ADDRESS}}
        )  # fmt: skip
    transmitters = [{"id": f"uitd-{n}", "address": BASE_ADDRESS + n} for n in range(devices)]
    return {
        "inventory": inventory,
        "gb26875": {"host": "127.0.0.1", "port": panel_port, "transmitters": transmitters},
    }


def wait_listening(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def alarm_latency_phase(devices: int, seconds: float) -> bool:
    panel_port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-gb26875-") as tmp, mosquitto(Path(tmp)) as (broker, _):
        gateway = GatewayProcess(
            Path(tmp), "panels", broker, 1, 1, 0, gateway_extra_config(devices, panel_port)
        )
        try:
            gateway.start()
            await asyncio.to_thread(gateway.wait_ready)
            await asyncio.to_thread(wait_listening, panel_port)
            raises: dict[str, list[float]] = {}
            seen: set[tuple[int, int]] = set()
            url = f"ws://127.0.0.1:{gateway.api_port}/api/v1/stream?token={TOKEN}"
            async with ws_connect(url, max_size=None, ping_interval=None) as websocket:
                await websocket.recv()  # the snapshot

                async def collect() -> None:
                    async for text in websocket:
                        now = time.time()
                        alert = json.loads(text).get("alert") or {}
                        key = (alert.get("id", 0), alert.get("count", 0))
                        if (
                            alert.get("rule") == "fire_alarm"
                            and alert["state"] == "active"
                            and key not in seen
                        ):
                            seen.add(key)
                            raises.setdefault(alert["device_id"], []).append(now)

                collector = asyncio.create_task(collect())
                sent = await drive_from_another_process(panel_port, devices, seconds)
                await asyncio.sleep(1.0)
                collector.cancel()
            health = gateway.health() or {}
        finally:
            gateway.stop()
    latencies_ms = []
    alarms = 0
    for key, sent_at in sent.items():
        tid, seq = key.split("|")
        if int(seq) % 2:
            continue  # a restore
        alarms += 1
        arrivals = raises.get(f"{tid}-smoke", [])
        if int(seq) // 2 < len(arrivals):
            latencies_ms.append((arrivals[int(seq) // 2] - sent_at) * 1000)
    latencies_ms.sort()
    panels = health.get("gb26875", {})
    p50, p99 = percentile(latencies_ms, 0.5), percentile(latencies_ms, 0.99)
    print(
        f"alarm latency: campus-gateway run, {devices} transmission devices connected, one status frame "
        f"each per second (fire alarm and restore in turn), {seconds:.0f} s"
    )
    print(
        f"  fire alarms sent {alarms}, fire_alarm alerts on the WebSocket {len(latencies_ms)}, "
        f"confirms {panels.get('confirms')}, withheld {panels.get('confirms_withheld', 0)}"
    )
    print(f"  send->WebSocket latency ms: p50 {p50:.2f}  p99 {p99:.2f}  max {latencies_ms[-1]:.2f}")
    ok = p99 < 100 and len(latencies_ms) == alarms
    print(f"  target p99 < 100 ms, every alarm on the stream: {'PASS' if ok else 'FAIL'}")
    return ok


async def drive_from_another_process(port: int, devices: int, seconds: float) -> dict[str, float]:
    """Run `drive` in a child process; the send time of every frame, by `uitd-<n>|<seq>`."""
    driver = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--drive",
        str(port),
        "--devices",
        str(devices),
        "--seconds",
        str(seconds),
        stdout=subprocess.PIPE,
    )
    out, _ = await driver.communicate()
    sent: dict[str, float] = json.loads(out)
    return sent


async def drive(port: int, devices: int, seconds: float) -> None:
    from simulators.gb26875_sim import SimulatedTransmitter

    fleet = [SimulatedTransmitter(BASE_ADDRESS + n, "127.0.0.1", port) for n in range(devices)]
    await asyncio.gather(*(sim.connect() for sim in fleet))
    sent: dict[str, float] = {}
    deadline = time.monotonic() + seconds

    async def run(n: int, sim: SimulatedTransmitter) -> None:
        await asyncio.sleep(n / devices)  # spread the devices over the second
        seq = 0
        while time.monotonic() < deadline:
            flags = 0x0002 if seq % 2 == 0 else 0x0001
            frame = sim.frame(
                unit_of(ComponentStatus(1, 1, 40, SMOKE_ADDRESS, flags, str(seq), sim.now_label()))
            )
            sent[f"uitd-{n}|{seq}"] = time.time()
            await sim.send_frame_bytes(frame)
            seq += 1
            await asyncio.sleep(1.0)

    await asyncio.gather(*(run(n, sim) for n, sim in enumerate(fleet)))
    await asyncio.gather(*(sim.close() for sim in fleet))
    print(json.dumps(sent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--drive", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        asyncio.run(drive(args.drive, args.devices, args.seconds))
        return
    decode_phase(args.frames)
    asyncio.run(latency_phase(args.devices, args.seconds))
    if not asyncio.run(alarm_latency_phase(args.devices, args.seconds)):
        sys.exit(1)


if __name__ == "__main__":
    main()
