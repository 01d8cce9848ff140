"""Requests an attacker on the campus LAN would send, against a running gateway process."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from typing import Any

import httpx
import psutil
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from api.security_headers import PAGE_POLICY
from api.tickets import REPORT_POLICY
from tests.api.conftest import PROXY_ORIGIN, ServedGateway

BIG = 200 * 1024 * 1024
TOO_BIG_ID = 2**63  # one past SQLite's largest integer
UPLOAD_HEAD = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'


def send_huge_body(
    served: ServedGateway, path: str, headers: dict[str, str], chunked: bool, content_type: str
) -> int:
    """POST a 200 MB body the way a hostile client would; return the status the gateway answered.

    The body goes out in 1 MB pieces until the gateway answers (it should, long before the end)."""
    host, port = served.base_url.removeprefix("http://").split(":")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}"
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    piece = b"x" * (1024 * 1024)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{framing}\r\n{head}\r\n".encode()
        )
        answer = b""
        for n in range(BIG // len(piece)):
            if select.select([sock], [], [], 0)[0]:
                break
            data = (UPLOAD_HEAD if n == 0 and "multipart" in content_type else b"") + piece
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            except OSError:  # the gateway answered and closed: what it said is in the socket
                break
        deadline = time.monotonic() + 10
        while b"\r\n" not in answer and time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    match = re.match(rb"HTTP/1.1 (\d{3})", answer)
    assert match, f"no HTTP answer: {answer[:200]!r}"
    return int(match.group(1))


@pytest.mark.parametrize(
    ("role", "path", "chunked", "expected"),
    [
        ("anonymous", "/api/v1/alerts/1/resolve", False, 401),
        ("anonymous", "/api/v1/alerts/1/resolve", True, 401),
        ("operator", "/api/v1/alerts/1/resolve", False, 413),
        ("operator", "/api/v1/alerts/1/resolve", True, 413),
        ("operator", "/api/v1/tickets/1/photos", True, 413),  # a multipart upload, past the photo size
    ],
)
def test_a_200_mb_body_is_refused_before_it_is_read(
    served: ServedGateway, role: str, path: str, chunked: bool, expected: int
) -> None:
    process = psutil.Process(served.pid)
    before = process.memory_info().rss
    content_type = "multipart/form-data; boundary=b" if path.endswith("photos") else "application/json"
    status = send_huge_body(served, path, served.auth(role), chunked, content_type)
    grown_mb = (process.memory_info().rss - before) / 1e6
    assert (status, grown_mb < 20) == (expected, True), f"answered {status}, RSS grew {grown_mb:.0f} MB"


def test_a_50_mb_note_is_413_and_a_long_one_422(served: ServedGateway) -> None:
    note = {"note": "x" * 50_000_000}
    answer = httpx.post(
        f"{served.base_url}/api/v1/alerts/1/resolve", json=note, headers=served.auth("operator")
    )
    assert answer.status_code == 413
    answer = httpx.post(
        f"{served.base_url}/api/v1/alerts/1/resolve",
        json={"note": "x" * 4001},
        headers=served.auth("operator"),
    )
    assert answer.status_code == 422 and "note" in answer.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/v1/alerts/{TOO_BIG_ID}", None),
        ("POST", f"/api/v1/alerts/{TOO_BIG_ID}/ack", None),
        ("POST", f"/api/v1/alerts/{TOO_BIG_ID}/resolve", {"note": "done"}),
        ("GET", f"/api/v1/alerts/{TOO_BIG_ID}/ticket", None),
        ("GET", f"/api/v1/tickets/{TOO_BIG_ID}", None),
        ("GET", f"/api/v1/tickets/1/photos/{TOO_BIG_ID}", None),
        ("POST", "/api/v1/tickets", {"alert_id": TOO_BIG_ID}),
        ("POST", "/api/v1/tickets/1/alerts", {"alert_id": TOO_BIG_ID}),
        ("PATCH", "/api/v1/tickets/1", {"version": TOO_BIG_ID}),
        ("POST", f"/api/v1/incidents/{TOO_BIG_ID}/ack", None),
    ],
)
def test_ids_beyond_sqlite_integers_are_422(
    served: ServedGateway, method: str, path: str, body: dict[str, Any] | None
) -> None:
    answer = httpx.request(method, f"{served.base_url}{path}", json=body, headers=served.auth("operator"))
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("deadline", ["1e17", "-1", "NaN", "Infinity"])
def test_a_deadline_outside_2000_2100_is_422_and_the_exports_keep_working(
    served: ServedGateway, deadline: str
) -> None:
    body = '{"title": "消防通道堵塞", "category": "fire", "level": "general", "location": "北门", "deadline_ts": %s}'
    answer = httpx.post(
        f"{served.base_url}/api/v1/tickets",
        content=body % deadline,
        headers={**served.auth("operator"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422 and "deadline_ts" in answer.text
    for export in ("hazards.csv", "responsibilities.csv"):
        assert (
            httpx.get(
                f"{served.base_url}/api/v1/tickets/export/{export}", headers=served.auth("operator")
            ).status_code
            == 200
        )


@pytest.mark.parametrize("query", ["from=nan", "from=inf", "to=1e400", "step=1e400", "from=-5"])
def test_times_outside_the_storable_range_are_422(served: ServedGateway, query: str) -> None:
    answer = httpx.get(
        f"{served.base_url}/api/v1/devices/tb-1f-smoke-01/readings?metric=obscuration_pct_m&{query}",
        headers=served.auth("operator"),
    )
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/v1/health", "/api/v1/alerts", "/nothing-here"])
def test_every_answer_carries_the_browser_defences(served: ServedGateway, path: str) -> None:
    headers = httpx.get(f"{served.base_url}{path}").headers
    assert headers["content-security-policy"] == PAGE_POLICY
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_the_page_has_no_inline_script_or_style(served: ServedGateway) -> None:
    page = httpx.get(served.base_url).text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert "<style" not in page and not re.search(r"\son[a-z]+\s*=", page) and " style=" not in page


def test_the_monthly_report_keeps_its_own_scriptless_policy(served: ServedGateway) -> None:
    answer = httpx.get(
        f"{served.base_url}/api/v1/tickets/reports/monthly?month=2026-10", headers=served.auth("operator")
    )
    assert answer.status_code == 200 and answer.headers["content-security-policy"] == REPORT_POLICY


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [(None, True), ("same", True), (PROXY_ORIGIN, True), ("http://evil.example", False), ("null", False)],
)
async def test_the_stream_opens_only_to_pages_of_its_own_or_allowed_origins(
    served: ServedGateway, origin: str | None, allowed: bool
) -> None:
    url = f"{served.base_url.replace('http', 'ws')}/api/v1/stream?token=op-token"
    sent = served.base_url if origin == "same" else origin
    try:
        async with websockets.connect(url, origin=sent) as ws:  # type: ignore[arg-type]
            opened = json.loads(await ws.recv())["type"] == "snapshot"
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
        opened = False
    assert opened is allowed
