"""The poller against a real HTTP server that fails the ways school gateways do: each failure is
named, retried when asking again may help, and none stops the poll."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from gateway.broker import free_port
from gateway.config import ConfigError
from gateway.district import DistrictConfig, GatewayEntry, load_district, poll_district

ANSWER = {
    "window": "7d",
    "start": 0.0,
    "end": 604800.0,
    "campus": {
        "id": "s", "name": "s", "registered": 2, "online_now": 1, "reported_in_window": 2,
        "online_rate": 0.5, "networked_rate": 1.0, "mean_availability": 0.75, "overdue_major_hazards": 1,
    },
    "by_kind": {},
    "devices": [
        {
            "device_id": "d1", "kind": "smoke", "location": "A", "online_now": False, "last_seen": 10.0,
            "reported_in_window": True, "availability": 0.5, "online_s": 10.0, "offline_s": 10.0,
            "unknown_s": 5.0, "outage_count": 1,
            "outages": [{"start": 10.0, "end": None, "cause": "silence", "offline_s": 10.0}],
        }
    ],
}  # fmt: skip


class Gateways(BaseHTTPRequestHandler):
    """`/<behaviour>/api/v1/uptime`; `flaky` answers 503 once, then the answer."""

    hits: ClassVar[Counter[str]] = Counter()

    def do_GET(self) -> None:
        behaviour = self.path.split("/")[1]
        self.hits[behaviour] += 1
        if behaviour == "slow":
            threading.Event().wait(2.0)
        status, body = {
            "ok": (200, json.dumps(ANSWER).encode()),
            "flaky": (503, b"{}") if self.hits[behaviour] == 1 else (200, json.dumps(ANSWER).encode()),
            "down": (502, b"bad gateway"),
            "token": (401, b'{"detail": "unknown bearer token"}'),
            "portal": (200, b"<html>login</html>"),
            "shape": (200, b'{"devices": 3}'),
        }.get(behaviour, (200, b""))
        try:
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the poller gave up on `slow` first

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Gateways.hits = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Gateways)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_every_failure_is_named_and_none_stops_the_poll(server: str) -> None:
    behaviours = ["ok", "flaky", "down", "token", "portal", "shape", "slow"]
    entries = [GatewayEntry(school=b, url=f"{server}/{b}", token="t") for b in behaviours]
    entries.append(GatewayEntry(school="refused", url=f"http://127.0.0.1:{free_port()}", token="t"))
    config = DistrictConfig(gateways=entries, timeout_s=0.5, retries=1, backoff_s=0.01, concurrency=3)
    results = {r.entry.school: r for r in asyncio.run(poll_district(config))}
    assert {school: r.reason for school, r in results.items()} == {
        "ok": None, "flaky": None, "down": "5xx", "token": "401", "portal": "bad JSON",
        "shape": "bad JSON", "slow": "timeout", "refused": "refused",
    }  # fmt: skip
    # Retried: what may pass (5xx, timeout, refused); not: a wrong token or a wrong body.
    attempts = {school: r.attempts for school, r in results.items()}
    assert attempts == {
        "ok": 1, "flaky": 2, "down": 2, "token": 1, "portal": 1, "shape": 1, "slow": 2, "refused": 2,
    }  # fmt: skip
    ok = results["ok"].uptime
    assert ok is not None and ok.outage_count == 1 and ok.campus.overdue_major_hazards == 1
    assert ok.outages[0].device_id == "d1" and ok.outages[0].outage.end is None


def test_a_timeout_is_retried_at_once_and_a_refusal_after_its_backoff(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout has already waited `timeout_s` on the gateway: another wait before asking
    again only lengthens the poll (in a 500-school poll, its longest chain)."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay: float) -> None:
        slept.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr("gateway.district.asyncio.sleep", recorded)
    entries = [
        GatewayEntry(school="slow", url=f"{server}/slow", token="t"),
        GatewayEntry(school="refused", url=f"http://127.0.0.1:{free_port()}", token="t"),
    ]
    config = DistrictConfig(gateways=entries, timeout_s=0.5, retries=1, backoff_s=0.2, concurrency=2)
    results = {r.entry.school: r for r in asyncio.run(poll_district(config))}
    assert (results["slow"].reason, results["slow"].attempts) == ("timeout", 2)
    assert (results["refused"].reason, results["refused"].attempts) == ("refused", 2)
    (backoff_s,) = slept  # the refusal's only
    assert 0.1 <= backoff_s <= 0.3


def test_the_gateway_list_is_checked_with_file_key_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "district.yaml"
    path.write_text("gateways:\n  - {school: 一中, url: 10.0.0.5:8080, token: t}\nconcurrency: 0\n")
    with pytest.raises(ConfigError) as error:
        load_district(path)
    message = str(error.value)
    assert f"{path}: gateways.0.url:" in message and f"{path}: concurrency:" in message
