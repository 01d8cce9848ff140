"""District poll benchmark: `campus-gateway district poll` over 500 gateways at concurrency 50.

Two real gateways (`campus-gateway run`, each with its own mosquitto and 100 simulated devices,
some of them dropped off) answer for themselves; their `GET /api/v1/uptime?window=7d` answers are
recorded, and a small replay server (a separate process) stands in for the other 498 schools:
it answers each with one of the recorded bodies after 20-300 ms, except for a share of schools
that fail the ways real ones do (5xx, 401, bad JSON, never answering); 10 more addresses have
nothing listening (refused). The poll runs as the real command in its own process: its wall time,
CPU time and peak RSS (wait4) are the figures (on a shared machine, wall time is mostly waiting).

Usage: python bench/district_poll.py [--schools 500] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from gateway.broker import free_port, start_local_broker
from gateway.config import hash_token
from simulators.fleet import Fleet

REPO = Path(__file__).resolve().parents[1]
DEVICES = 100
# Out of every 100 replayed schools: how many fail, and how.
FAILURES = {"5xx": 2, "401": 2, "bad JSON": 1, "timeout": 2}


def start_real_gateway(workdir: Path, key: str) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """A real gateway with its own broker and 100 devices, 5 of them dropped off."""
    workdir.mkdir(parents=True)
    broker = start_local_broker(workdir / "mosquitto", prefer="mosquitto")
    token, port = f"bureau-{key}", free_port()
    devices = "\n".join(
        f"  - {{id: {key}-{n:03d}, kind: smoke, building: B{n % 5}, reporting_interval_s: 3600}}"
        for n in range(DEVICES)
    )
    (workdir / "inventory.yaml").write_text(f"devices:\n{devices}\n")
    (workdir / "gateway.yaml").write_text(
        f"""
campus: {{id: {key}, name: 实验学校{key}}}
broker: {{host: 127.0.0.1, port: {broker.port}, client_id: gw-{key}}}
storage: {{sqlite_path: gw.db}}
api: {{host: 127.0.0.1, port: {port}, tokens: [{{name: b, role: bureau, sha256: "{hash_token(token)}"}}]}}
inventory: inventory.yaml
"""
    )
    with (workdir / "gateway.log").open("wb") as log:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(workdir / "gateway.yaml")],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or gateway.poll() is not None:
            raise RuntimeError((workdir / "gateway.log").read_text()[-2000:])
        time.sleep(0.2)
    time.sleep(1.0)  # subscribed
    fleet = Fleet(key, "127.0.0.1", broker.port, client_id=f"fleet-{key}")
    now = time.time()
    for n in range(DEVICES):
        fleet.smoke(f"{key}-{n:03d}").publish("status", {"ts": now, "state": "online"}, retain=True)
    fleet.flush()
    time.sleep(1.0)
    for n in range(5):
        fleet.smoke(f"{key}-{n:03d}").publish("status", {"ts": time.time(), "state": "offline"}, retain=True)
    fleet.flush()
    fleet.close()
    time.sleep(1.5)
    return [gateway, broker.process], url, token


async def serve_replay(port: int, bodies: list[bytes], schools: int) -> None:
    """HTTP/1.1 with keep-alive; the school number is the first path segment (`/17/api/v1/uptime`)."""
    rng = random.Random(13)
    plan: dict[int, str] = {}
    for school in range(schools):
        draw, behaviour = rng.randrange(100), "ok"
        for name, share in FAILURES.items():
            if draw < share:
                behaviour = name
                break
            draw -= share
        plan[school] = behaviour

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                school = int(path.split("/")[1])
                behaviour = plan.get(school, "ok")
                if behaviour == "timeout":
                    await asyncio.sleep(3600)
                await asyncio.sleep(rng.uniform(0.02, 0.3))
                status, body = {
                    "5xx": (b"503 Service Unavailable", b'{"detail": "starting"}'),
                    "401": (b"401 Unauthorized", b'{"detail": "unknown bearer token"}'),
                    "bad JSON": (b"200 OK", b"<html>captive portal</html>"),
                }.get(behaviour, (b"200 OK", bodies[school % len(bodies)]))
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "BODIES_DIR", "SCHOOLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, folder, schools = int(args.serve[0]), Path(args.serve[1]), int(args.serve[2])
        bodies = [path.read_bytes() for path in sorted(folder.glob("*.json"))]
        asyncio.run(serve_replay(port, bodies, schools))
        return
    with tempfile.TemporaryDirectory(prefix="district-bench-") as tmp:
        work = Path(tmp)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            real = []
            for key in ("r1", "r2"):
                started, url, token = start_real_gateway(work / key, key)
                processes += started
                real.append((key, url, token))
            recorded = work / "recorded"
            recorded.mkdir()
            for key, url, token in real:
                response = httpx.get(
                    f"{url}/api/v1/uptime",
                    params={"window": "7d"},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                response.raise_for_status()
                (recorded / f"{key}.json").write_bytes(response.content)
            size_kb = sum(p.stat().st_size for p in recorded.glob("*.json")) / 2 / 1000
            replay_port = free_port()
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--serve", str(replay_port), str(recorded), str(args.schools)],
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )
            )
            time.sleep(1.0)
            refused = 10
            entries = [{"school": f"实验学校{key}", "url": url, "token": token} for key, url, token in real]
            entries += [
                {"school": f"学校{n:03d}", "url": f"http://127.0.0.1:{replay_port}/{n}", "token": "t"}
                for n in range(args.schools - len(real) - refused)
            ]
            entries += [
                {"school": f"断网学校{n}", "url": f"http://127.0.0.1:{free_port()}", "token": "t"}
                for n in range(refused)
            ]
            district = work / "district.yaml"
            district.write_text(
                json.dumps(
                    {
                        "district": "基准区",
                        "window": "7d",
                        "concurrency": args.concurrency,
                        "timeout_s": 3,
                        "retries": 1,
                        "backoff_s": 0.5,
                        "gateways": entries,
                    },
                    ensure_ascii=False,
                )
            )
            started_at = time.perf_counter()
            command = ["district", "poll", "--gateways", str(district), "--out", str(work / "out")]
            poll = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *command],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            _, status, usage = os.wait4(poll.pid, 0)
            elapsed_s = time.perf_counter() - started_at
            poll.returncode = os.waitstatus_to_exitcode(status)
            text = (work / "out" / "district-schools.csv").read_bytes().decode("utf-8-sig")
            rows = list(csv.DictReader(io.StringIO(text)))
            reasons = Counter(
                row["原因 reason"].split(":")[0] if row["原因 reason"] else "ok" for row in rows
            )
            print(
                f"{len(entries)} gateways ({len(real)} real, {len(entries) - len(real) - refused} replayed, "
                f"{refused} refused), recorded body {size_kb:.0f} kB, concurrency {args.concurrency}, "
                "timeout 3 s, 1 retry"
            )
            print(
                f"district poll: {elapsed_s:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s CPU, "
                f"peak RSS {usage.ru_maxrss / 1024:.0f} MB, "
                f"exit {poll.returncode}; {dict(sorted(reasons.items()))}"
            )
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
