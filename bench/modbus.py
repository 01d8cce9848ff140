"""Modbus polling benchmark: 200 simulated TCP devices, a 40-register map, a 1 s poll interval.

The simulator runs in its own process (200 pymodbus TCP servers, one port and unit id 1 each, as
with devices that have their own Ethernet port); the driver runs in this process, so its CPU is
measured alone. Phases:
  1. target load: every device polled each 1 s; cycle time p50/p99, reads/s, gateway CPU;
  2. saturation: the driver polls back to back; the most reads/s it achieves;
  3. bare loop: plain pymodbus clients reading back to back on the same 200 connections.
The ratio compares 2 with 3: what the driver (coalescing, decoding, records) costs over pymodbus.

Usage: python bench/modbus.py [--devices 200] [--seconds 30] [--saturation-seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from analytics.devices import DeviceSpec, Inventory  # noqa: E402
from analytics.records import DeviceKind, Reading, Record  # noqa: E402
from drivers.errors import PayloadError  # noqa: E402
from drivers.modbus import ModbusDriver, ModbusSettings  # noqa: E402

REGISTERS = 40
MODEL_NAME = "bench_40reg"


class PollTimes:
    """Sink that keeps the timestamp of each poll (its first metric) per device."""

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = defaultdict(list)

    def submit(self, records: Sequence[Record]) -> None:
        for record in records:
            if isinstance(record, Reading) and record.metric == "r00":
                self.starts[record.device_id].append(record.ts)

    def reject(self, error: PayloadError, source: str, payload: bytes, received_at: float) -> None:
        raise AssertionError(f"the bench model decodes to finite values only: {error}")


def write_model(directory: Path) -> None:
    lines = [f"model: {MODEL_NAME}", "kind: temperature", "values:"]
    for address in range(REGISTERS):
        kind = "i16" if address % 2 else "u16"
        lines.append(
            f"  - {{metric: r{address:02d}, function: holding, address: {address}, type: {kind}, scale: 0.1}}"
        )
    (directory / f"{MODEL_NAME}.yaml").write_text("\n".join(lines) + "\n")


def start_simulator(models_dir: Path, devices: int) -> tuple[subprocess.Popen[str], list[int]]:
    command = [sys.executable, "-m", "simulators.modbus_sim", "--model", MODEL_NAME]
    command += ["--models-dir", str(models_dir), "--servers", str(devices), "--units", "1"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    ports: list[int] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        message = json.loads(line)
        if message.get("ready"):
            return proc, ports
        ports.append(int(message["port"]))
    raise RuntimeError(f"simulator exited with {proc.wait()}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class CpuMeter:
    """CPU seconds used by one process between start() and stop()."""

    def __init__(self, pid: int | None = None) -> None:
        self.process = psutil.Process(pid)

    def __enter__(self) -> CpuMeter:
        self.cpu_start = self._cpu()
        self.wall_start = time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cpu_s = self._cpu() - self.cpu_start
        self.wall_s = time.monotonic() - self.wall_start

    @property
    def pct(self) -> float:
        return 100 * self.cpu_s / self.wall_s

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


def settings_for(ports: list[int], interval_s: float, models_dir: Path) -> ModbusSettings:
    devices = [
        {
            "id": f"bench-{index:03d}",
            "model": MODEL_NAME,
            "transport": {"type": "tcp", "host": "127.0.0.1", "port": port},
            "poll_interval_s": interval_s,
            "timeout_s": 2.0,
        }
        for index, port in enumerate(ports)
    ]
    return ModbusSettings.model_validate({"models_dir": models_dir, "devices": devices})


async def run_driver(
    settings: ModbusSettings, seconds: float, warmup_s: float
) -> tuple[PollTimes, dict[str, dict[str, int | float | bool]], CpuMeter, int]:
    inventory = Inventory(DeviceSpec(id=d.id, kind=DeviceKind.TEMPERATURE) for d in settings.devices)
    sink = PollTimes()
    driver = ModbusDriver(settings, inventory, sink)
    task = asyncio.create_task(driver.run())
    await asyncio.sleep(warmup_s)
    before = sum(int(s["requests"]) for s in driver.stats().values())
    sink.starts.clear()
    with CpuMeter() as cpu:
        await asyncio.sleep(seconds)
    stats = driver.stats()
    requests = sum(int(s["requests"]) for s in stats.values()) - before
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return sink, stats, cpu, requests


async def run_bare_loop(ports: list[int], seconds: float) -> tuple[int, CpuMeter]:
    clients = [AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0, retries=0) for port in ports]
    await asyncio.gather(*(client.connect() for client in clients))
    reads = 0
    stop_at = 0.0

    async def loop(client: AsyncModbusTcpClient) -> None:
        nonlocal reads
        while time.monotonic() < stop_at:
            response = await client.read_holding_registers(0, count=REGISTERS, device_id=1)
            if not response.isError():
                reads += 1

    stop_at = time.monotonic() + 1.0
    await asyncio.gather(*(loop(client) for client in clients))  # warm-up
    reads = 0
    with CpuMeter() as cpu:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(loop(client) for client in clients))
    for client in clients:
        client.close()
    return reads, cpu


async def bench(args: argparse.Namespace, models_dir: Path, ports: list[int], sim_pid: int) -> None:
    interval_s = 1.0
    devices = len(ports)
    print(f"devices: {devices} TCP devices (one simulator port each, unit id 1), {REGISTERS}-register map")
    print(f"simulator: separate process; driver and bare loop: this process ({os.cpu_count()} CPUs)")
    print("machine load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    sim_cpu = CpuMeter(sim_pid)
    with sim_cpu:
        sink, stats, cpu, requests = await run_driver(
            settings_for(ports, interval_s, models_dir), args.seconds, 2.0
        )
    cycles = [b - a for starts in sink.starts.values() for a, b in pairwise(starts)]
    late_devices = sum(
        1 for starts in sink.starts.values() if any(b - a > 1.2 * interval_s for a, b in pairwise(starts))
    )
    failures = sum(int(s["failed_polls"]) for s in stats.values())
    polled = sum(1 for starts in sink.starts.values() if starts)
    # A device "missed" an interval if it got fewer polls than whole intervals in the window.
    expected_polls = int(args.seconds / interval_s)
    missed = sum(max(0, expected_polls - len(starts)) for starts in sink.starts.values())
    print(f"\n[1] target load: {interval_s:.1f} s interval for {args.seconds:.0f} s")
    print(f"  devices polled: {polled}/{devices}, failed polls: {failures}, missed intervals: {missed}")
    print(
        f"  poll cycle time: p50 {statistics.median(cycles):.3f} s, p99 {percentile(cycles, 0.99):.3f} s, max {max(cycles):.3f} s ({len(cycles)} cycles)"
    )
    print(f"  devices with any cycle > 1.2 s: {late_devices}")
    print(f"  reads/s: {requests / cpu.wall_s:.1f} (expected {devices / interval_s:.0f})")
    print(
        f"  gateway CPU: {cpu.pct:.1f} % of one core ({1e6 * cpu.cpu_s / max(requests, 1):.0f} us CPU per poll incl. {REGISTERS} readings)"
    )
    print(f"  simulator CPU: {sim_cpu.pct:.1f} % of one core")

    _, _, sat_cpu, sat_requests = await run_driver(
        settings_for(ports, 0.001, models_dir), args.saturation_seconds, 1.0
    )
    sat_rate = sat_requests / sat_cpu.wall_s
    print(f"\n[2] driver saturation (back-to-back polls) for {args.saturation_seconds:.0f} s")
    print(
        f"  reads/s: {sat_rate:.0f}, gateway CPU: {sat_cpu.pct:.1f} % ({1e6 * sat_cpu.cpu_s / max(sat_requests, 1):.0f} us per poll)"
    )

    bare_reads, bare_cpu = await run_bare_loop(ports, args.saturation_seconds)
    bare_rate = bare_reads / bare_cpu.wall_s
    print(f"\n[3] bare pymodbus client loop (same connections) for {args.saturation_seconds:.0f} s")
    print(
        f"  reads/s: {bare_rate:.0f}, CPU: {bare_cpu.pct:.1f} % ({1e6 * bare_cpu.cpu_s / max(bare_reads, 1):.0f} us per read)"
    )

    ok = polled == devices and missed == 0 and percentile(cycles, 0.99) < 1.2 and cpu.pct < 50
    print("\nsummary")
    print(
        f"  p99 cycle {percentile(cycles, 0.99):.3f} s (target < 1.2 s), gateway CPU {cpu.pct:.1f} % (target < 50 %)"
    )
    print(f"  driver/bare reads/s ratio at saturation: {sat_rate / bare_rate:.2f}")
    driver_us = 1e6 * sat_cpu.cpu_s / max(sat_requests, 1)
    bare_us = 1e6 * bare_cpu.cpu_s / max(bare_reads, 1)
    print(
        f"  CPU per read: driver {driver_us:.0f} us, bare loop {bare_us:.0f} us ({driver_us / bare_us:.1f}x)"
    )
    print(f"  target met: {'yes' if ok else 'NO'}")
    print(
        "machine load average at end: {:.2f} {:.2f} {:.2f} (other processes compete for the CPUs)".format(
            *os.getloadavg()
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--saturation-seconds", type=float, default=8.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Turn SIGTERM (e.g. from `timeout`) into SystemExit so the simulator process is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(tmp)
        write_model(models_dir)
        proc, ports = start_simulator(models_dir, args.devices)
        try:
            asyncio.run(bench(args, models_dir, ports, proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
