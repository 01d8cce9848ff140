"""The ticket API with the real bearer-token auth, against a real SQLite file."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import Principal, Role, TokenBook
from api.tickets import TicketApiContext, tickets_router
from gateway.config import hash_token
from tests.tickets.support import DAY_S, TicketWorld

TOKENS: dict[str, Role] = {"op-a": "operator", "op-b": "operator", "bureau": "bureau"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MAX_PHOTO_BYTES = 1024


@pytest.fixture
def client(world: TicketWorld, tmp_path: Path) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.tokens = TokenBook({hash_token(name): Principal(name, role) for name, role in TOKENS.items()})
    ctx = TicketApiContext(
        service=world.service,
        clock=world.clock,
        photo_dir=tmp_path / "photos",
        timezone=ZoneInfo("Asia/Shanghai"),
        campus_name="实验中学",
        photo_max_bytes=MAX_PHOTO_BYTES,
        availability_pct=lambda start, end: 99.5,
    )
    app.include_router(tickets_router(ctx))
    with TestClient(app) as test_client:
        yield test_client


def as_(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}"}


def open_ticket(world: TicketWorld, client: TestClient, rule: str = "electrical_leakage") -> dict[str, Any]:
    alert = world.alerts.raise_alert(rule, "efm-1", world.clock.now)
    response = client.post("/api/v1/tickets", json={"alert_id": alert.id}, headers=as_("op-a"))
    assert response.status_code == 201, response.text
    return dict(response.json())


def move(client: TestClient, ticket: dict[str, Any], to: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/tickets/{ticket['id']}/transition",
        json={"version": ticket["version"], "to": to, **extra},
        headers=as_("op-a"),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def to_pending(client: TestClient, ticket: dict[str, Any]) -> dict[str, Any]:
    assigned = client.post(
        f"/api/v1/tickets/{ticket['id']}/assign",
        json={"version": ticket["version"], "responsible_id": "wang"},
        headers=as_("op-a"),
    ).json()
    return move(client, move(client, assigned, "in_progress"), "pending_verification")


def test_tokens_and_roles(world: TicketWorld, client: TestClient) -> None:
    assert client.get("/api/v1/tickets").status_code == 401
    assert client.get("/api/v1/tickets", headers=as_("nobody")).status_code == 401
    assert client.post("/api/v1/tickets", json={}, headers=as_("bureau")).status_code == 403
    refused = client.get("/api/v1/tickets", headers=as_("bureau"))
    assert refused.status_code == 403 and "overdue=true&level=major" in refused.json()["detail"]


def test_create_from_alert_then_the_same_condition_attaches(world: TicketWorld, client: TestClient) -> None:
    ticket = open_ticket(world, client)
    assert (ticket["state"], ticket["allowed_transitions"], ticket["level"]) == (
        "registered",
        ["assigned"],
        "major",
    )
    second = world.alerts.raise_alert("electrical_leakage", "efm-1", world.clock.now)
    attached = client.post("/api/v1/tickets", json={"alert_id": second.id}, headers=as_("op-a"))
    assert attached.status_code == 200 and attached.json()["id"] == ticket["id"]
    assert attached.json()["alert_ids"] == [1, 2]
    assert client.get("/api/v1/alerts/2/ticket", headers=as_("op-a")).json()["id"] == ticket["id"]
    assert client.get("/api/v1/alerts/99/ticket", headers=as_("op-a")).status_code == 404


def test_inspection_tickets_need_a_description(client: TestClient) -> None:
    assert client.post("/api/v1/tickets", json={"title": "x"}, headers=as_("op-a")).status_code == 422
    created = client.post(
        "/api/v1/tickets",
        json={"title": "灭火器过期", "category": "fire", "level": "general", "location": "食堂"},
        headers=as_("op-a"),
    )
    assert created.status_code == 201 and created.json()["device_id"] == ""


def test_an_illegal_transition_is_409_naming_the_allowed_ones(world: TicketWorld, client: TestClient) -> None:
    ticket = open_ticket(world, client)
    response = client.post(
        f"/api/v1/tickets/{ticket['id']}/transition",
        json={"version": ticket["version"], "to": "closed"},
        headers=as_("op-a"),
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["allowed"] == ["assigned"]
    assert "allowed from registered: assigned" in detail["message"]


def test_close_says_which_condition_blocks(world: TicketWorld, client: TestClient) -> None:
    pending = to_pending(client, open_ticket(world, client))
    url = f"/api/v1/tickets/{pending['id']}"
    detail = client.get(url, headers=as_("op-a")).json()
    assert {b["code"] for b in detail["close_blockers"]} == {"no_verifier", "device_not_normal"}
    refused = client.post(
        f"{url}/transition",
        json={"version": pending["version"], "to": "closed", "verifier_id": "wang"},
        headers=as_("op-a"),
    )
    assert refused.status_code == 409
    codes = [b["code"] for b in refused.json()["detail"]["blockers"]]
    assert codes == ["verifier_is_responsible", "device_not_normal"]
    assert refused.json()["detail"]["uncleared_alert_ids"] == [1]
    world.alerts.clear(1, world.clock.advance(60))
    closed = move(client, pending, "closed", verifier_id="li")
    assert (closed["state"], closed["verifier"]["name"], closed["allowed_transitions"]) == (
        "closed",
        "李红",
        [],
    )
    history = client.get(url, headers=as_("op-a")).json()["history"]
    assert history[-1]["actor"] == "op-a"
    assert history[-1]["changes"]["state"] == ["pending_verification", "closed"]


def test_update_the_five_fields_and_unknown_people(world: TicketWorld, client: TestClient) -> None:
    ticket = open_ticket(world, client)
    url = f"/api/v1/tickets/{ticket['id']}"
    unknown = client.post(
        f"{url}/assign", json={"version": 1, "responsible_id": "ghost"}, headers=as_("op-a")
    )
    assert unknown.status_code == 422 and "ghost" in unknown.json()["detail"]
    fields = {
        "measures": "更换漏电保护器",
        "funds_cny": 800.0,
        "deadline_ts": world.clock.now + 3 * DAY_S,
        "contingency_plan": "断电并挂警示牌",
    }
    updated = client.patch(url, json={"version": 1, **fields}, headers=as_("op-a"))
    assert updated.status_code == 200
    assert {key: updated.json()[key] for key in fields} == fields
    assert client.patch(url, json={"version": 1, "funds_cny": -1}, headers=as_("op-a")).status_code == 422


def test_two_operators_at_once_one_wins_the_other_gets_409(world: TicketWorld, client: TestClient) -> None:
    ticket = open_ticket(world, client)
    url = f"/api/v1/tickets/{ticket['id']}"
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def operator(name: str, measures: str) -> None:
        barrier.wait()
        response = client.patch(
            url, json={"version": ticket["version"], "measures": measures}, headers=as_(name)
        )
        results[name] = response.status_code

    threads = [
        threading.Thread(target=operator, args=("op-a", "甲方案")),
        threading.Thread(target=operator, args=("op-b", "乙方案")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [200, 409]
    winner = next(name for name, status in results.items() if status == 200)
    final = client.get(url, headers=as_("op-a")).json()["ticket"]
    assert final["version"] == 2
    assert final["measures"] == {"op-a": "甲方案", "op-b": "乙方案"}[winner]


def test_comments_and_photos(world: TicketWorld, client: TestClient) -> None:
    ticket = open_ticket(world, client)
    url = f"/api/v1/tickets/{ticket['id']}"
    assert client.post(f"{url}/comments", json={"text": "已断电"}, headers=as_("op-a")).status_code == 201
    stored = client.post(f"{url}/photos", files={"file": ("现场.png", PNG, "image/png")}, headers=as_("op-a"))
    assert stored.status_code == 201, stored.text
    photo = client.get(stored.json()["url"], headers=as_("op-a"))
    assert photo.content == PNG and photo.headers["content-type"] == "image/png"
    too_big = PNG + b"\x00" * MAX_PHOTO_BYTES
    assert (
        client.post(
            f"{url}/photos", files={"file": ("a.png", too_big, "image/png")}, headers=as_("op-a")
        ).status_code
        == 413
    )
    assert (
        client.post(
            f"{url}/photos", files={"file": ("a.pdf", b"%PDF", "application/pdf")}, headers=as_("op-a")
        ).status_code
        == 415
    )
    assert (
        client.post(
            f"{url}/photos", files={"file": ("a.png", b"GIF89a", "image/png")}, headers=as_("op-a")
        ).status_code
        == 415
    )
    detail = client.get(url, headers=as_("op-a")).json()
    assert [c["text"] for c in detail["comments"]] == ["已断电"]
    assert [p["filename"] for p in detail["photos"]] == ["现场.png"]


def test_the_bureau_lists_overdue_major_hazards(world: TicketWorld, client: TestClient) -> None:
    major = open_ticket(world, client)
    general = client.post(
        "/api/v1/tickets",
        json={
            "title": "门禁故障",
            "category": "access",
            "level": "general",
            "location": "北门",
            "deadline_ts": world.clock.now + DAY_S,
        },
        headers=as_("op-a"),
    ).json()
    client.patch(
        f"/api/v1/tickets/{major['id']}",
        json={"version": major["version"], "deadline_ts": world.clock.now + DAY_S},
        headers=as_("op-a"),
    )
    query = "/api/v1/tickets?overdue=true&level=major"
    assert client.get(query, headers=as_("bureau")).json() == []
    world.clock.advance(DAY_S + 1)
    listed = client.get(query, headers=as_("bureau")).json()
    assert [t["id"] for t in listed] == [major["id"]] and listed[0]["overdue"] is True
    assert client.get(f"/api/v1/tickets/{major['id']}", headers=as_("bureau")).status_code == 200
    assert client.get(f"/api/v1/tickets/{general['id']}", headers=as_("bureau")).status_code == 403
    everything = client.get("/api/v1/tickets?overdue=true", headers=as_("op-a")).json()
    assert {t["id"] for t in everything} == {major["id"], general["id"]}


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_the_two_lists_open_back_as_csv(world: TicketWorld, client: TestClient) -> None:
    ticket = open_ticket(world, client)
    client.post(
        f"/api/v1/tickets/{ticket['id']}/assign",
        json={"version": 1, "responsible_id": "wang"},
        headers=as_("op-a"),
    )
    client.patch(
        f"/api/v1/tickets/{ticket['id']}",
        json={"version": 2, "measures": "更换漏保, 复测", "funds_cny": 800},
        headers=as_("op-a"),
    )
    hazards = client.get("/api/v1/tickets/export/hazards.csv", headers=as_("op-a"))
    assert hazards.headers["content-disposition"].startswith('attachment; filename="hazards-')
    header, row = read_csv(hazards.content)
    record = dict(zip(header, row, strict=True))
    assert record["隐患名称 title"] == "电气剩余电流超限"
    assert (record["等级 level"], record["类别 category"], record["状态 state"]) == ("重大", "电气", "已分派")
    assert (record["整改措施 measures"], record["资金(元) funds_cny"]) == ("更换漏保, 复测", "800.00")
    assert (record["责任人 responsible"], record["关联告警 alert_ids"]) == ("王建国", "1")
    header, row = read_csv(
        client.get("/api/v1/tickets/export/responsibilities.csv", headers=as_("op-a")).content
    )
    record = dict(zip(header, row, strict=True))
    assert (record["责任人 responsible"], record["职务 role"], record["电话 phone"]) == (
        "王建国",
        "总务主任",
        "13800000001",
    )
    assert client.get("/api/v1/tickets/export/hazards.csv", headers=as_("bureau")).status_code == 403


def test_monthly_report_over_the_api(world: TicketWorld, client: TestClient) -> None:
    open_ticket(world, client)
    month = "2026-09"  # the support clock starts on 2026-09-21
    html = client.get(f"/api/v1/tickets/reports/monthly?month={month}", headers=as_("bureau"))
    assert html.status_code == 200 and "隐患排查治理月报 2026-09" in html.text and "99.50" in html.text
    rows = read_csv(
        client.get(f"/api/v1/tickets/reports/monthly?month={month}&format=csv", headers=as_("op-a")).content
    )
    assert ["summary", "新增隐患 opened", "1"] in rows
    assert client.get("/api/v1/tickets/reports/monthly?month=2026-13", headers=as_("op-a")).status_code == 422
