"""The notifier against a real HTTP receiver: signatures, retries with backoff, the outbox across
a restart, and the robot formats."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from analytics.alerts import Alert, AlertService, AlertSignal, Severity
from analytics.tickets.model import HazardCategory, HazardLevel, Ticket, TicketState
from gateway.broker import free_port
from gateway.notify import ChannelConfig, EscalationPolicy, Notifier, NotifyConfig, Outbox, OutboxState
from gateway.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from storage.sqlite import SqliteStore
from tests.notify.receiver import Received, Receiver, http_receiver
from tests.rules.scenario import MemoryJournal

SECRET = "s3cret-for-tests"


def notify_config(url: str, fmt: str = "json", message: str = "markdown", **extra: Any) -> NotifyConfig:
    channel = ChannelConfig.model_validate(
        {"name": "room", "url": url, "format": fmt, "message": message, "secret": SECRET}
    )
    return NotifyConfig.model_validate(
        {"channels": [channel], "tiers": [["room"]], "retry_base_s": 0.2, "retry_max_s": 1.0, **extra}
    )


def open_store(db_path: Path) -> SqliteStore:
    store = SqliteStore(db_path)
    store.open()
    return store


def make_notifier(config: NotifyConfig, db_path: Path) -> Notifier:
    """A notifier whose outbox lives in a gateway store at `db_path` (closed by `running`)."""
    store = open_store(db_path)
    notifier = Notifier(
        config,
        Outbox(store),
        EscalationPolicy(config),
        campus="实验中学",
        locate=lambda device_id: f"1号楼 3层 {device_id}",
        poll_s=0.05,
    )
    _stores[notifier] = store
    return notifier


_stores: dict[Notifier, SqliteStore] = {}


@asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _stores.pop(notifier).close()


def raise_alert(notifier: Notifier, rule: str = "fire_alarm", **details: Any) -> Alert:
    """Raise through a real alert service the notifier listens to (one per notifier)."""
    service = _services.get(notifier)
    if service is None:
        service = _services[notifier] = AlertService(MemoryJournal(), time.time)
        service.subscribe(notifier.on_alert)
    alert = service.apply(AlertSignal(rule, "s1", True, time.time(), Severity.CRITICAL, "s1", details))
    assert alert is not None
    return alert


_services: dict[Notifier, AlertService] = {}


async def wait_for(receiver: Receiver, count: int) -> list[Received]:
    return await asyncio.to_thread(receiver.wait_for, count)


def verify(request: Received) -> bool:
    """What a receiver does: recompute the HMAC over timestamp and body."""
    timestamp = request.headers[TIMESTAMP_HEADER]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers[SIGNATURE_HEADER], f"sha256={expected}")


async def test_generic_webhook_is_hmac_signed(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        async with running(make_notifier(notify_config(receiver.url), tmp_path / "outbox.db")) as notifier:
            alert = raise_alert(notifier)
            [request] = await wait_for(receiver, 1)
    assert verify(request)
    assert abs(int(request.headers[TIMESTAMP_HEADER]) - time.time()) < 5
    payload = json.loads(request.body)
    assert payload["alert"]["id"] == alert.id and payload["alert"]["rule"] == "fire_alarm"
    assert payload["title"] == "火灾报警" and payload["location"] == "1号楼 3层 s1"
    tampered = Received(request.at, request.path, request.headers, request.body.replace(b"s1", b"s2"))
    assert not verify(tampered)


async def test_retries_with_exponential_backoff_until_the_receiver_recovers(tmp_path: Path) -> None:
    script = [(500, b"down"), (503, b"still down"), (200, b"{}")]
    with http_receiver(script) as receiver:
        notifier = make_notifier(notify_config(receiver.url), tmp_path / "outbox.db")
        async with running(notifier):
            raise_alert(notifier)
            requests = await wait_for(receiver, 3)
            await asyncio.sleep(0.1)
            entries = notifier.outbox.entries()
    assert [r.headers["X-Campus-Delivery"] for r in requests] == ["1", "1", "1"]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert 0.2 <= gaps[0] < 0.6, gaps  # retry_base_s
    assert 0.4 <= gaps[1] < 0.9, gaps  # doubled
    assert [(e.state, e.attempts) for e in entries] == [(OutboxState.SENT, 3)]
    assert all(verify(request) for request in requests), "each retry is signed afresh"


async def test_a_refusal_is_not_retried(tmp_path: Path) -> None:
    with http_receiver([(400, b"bad request")]) as receiver:
        notifier = make_notifier(notify_config(receiver.url), tmp_path / "outbox.db")
        async with running(notifier):
            raise_alert(notifier)
            await wait_for(receiver, 1)
            await asyncio.sleep(0.5)
            entries = notifier.outbox.entries()
    assert len(receiver.received) == 1
    assert [(e.state, e.attempts) for e in entries] == [(OutboxState.DEAD, 1)]
    assert "HTTP 400" in entries[0].last_error


async def test_the_outbox_survives_a_restart(tmp_path: Path) -> None:
    outbox_path = tmp_path / "outbox.db"
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: connection refused
    first = make_notifier(notify_config(dead_url), outbox_path)
    async with running(first):
        raise_alert(first, rule="panic_pressed")
        raise_alert(first, rule="fire_alarm")
        await asyncio.sleep(0.3)
    store = open_store(outbox_path)
    try:
        entries = Outbox(store).entries(OutboxState.PENDING)
    finally:
        store.close()
    assert len(entries) == 2 and all(e.attempts >= 1 for e in entries)
    with http_receiver() as receiver:
        # The restarted gateway's channel URL points at the receiver that is back.
        second = make_notifier(notify_config(receiver.url, retry_base_s=0.05), outbox_path)
        async with running(second):
            requests = await wait_for(receiver, 2)
            await asyncio.sleep(0.1)
            assert [e.state for e in second.outbox.entries()] == [OutboxState.SENT, OutboxState.SENT]
    assert sorted(json.loads(r.body)["alert"]["rule"] for r in requests) == ["fire_alarm", "panic_pressed"]


async def test_dingtalk_markdown_with_signed_url_and_errcode_retry(tmp_path: Path) -> None:
    script = [(200, b'{"errcode":130101,"errmsg":"send too fast"}')]
    with http_receiver(script) as receiver:
        notifier = make_notifier(notify_config(receiver.url, fmt="dingtalk"), tmp_path / "outbox.db")
        async with running(notifier):
            raise_alert(notifier)
            _, second = await wait_for(receiver, 2)
            await asyncio.sleep(0.1)
            assert [e.state for e in notifier.outbox.entries()] == [OutboxState.SENT]
    body = json.loads(second.body)
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "【紧急】火灾报警"
    assert "位置：1号楼 3层 s1" in body["markdown"]["text"]
    query = parse_qs(urlsplit(second.path).query)
    timestamp = query["timestamp"][0]
    digest = hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert query["sign"][0] == base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    ("fmt", "message", "check"),
    [
        (
            "wecom",
            "markdown",
            lambda b: b["msgtype"] == "markdown" and "火灾报警" in b["markdown"]["content"],
        ),
        ("wecom", "text", lambda b: b["msgtype"] == "text" and "位置：" in b["text"]["content"]),
        (
            "dingtalk",
            "text",
            lambda b: b["msgtype"] == "text" and b["text"]["content"].startswith("【紧急】"),
        ),
    ],
)
async def test_robot_formats(tmp_path: Path, fmt: str, message: str, check: Any) -> None:
    with http_receiver() as receiver:
        notifier = make_notifier(
            notify_config(receiver.url, fmt=fmt, message=message), tmp_path / "outbox.db"
        )
        async with running(notifier):
            raise_alert(notifier)
            [request] = await wait_for(receiver, 1)
    assert check(json.loads(request.body))
    assert SIGNATURE_HEADER not in request.headers, "robots are not HMAC-header signed"


async def test_escalation_reaches_the_next_tier_over_http(tmp_path: Path) -> None:
    with http_receiver() as room, http_receiver() as leaders:
        config = NotifyConfig.model_validate(
            {
                "channels": [
                    {"name": "room", "url": room.url, "outside": False},
                    {"name": "leaders", "url": leaders.url, "format": "wecom"},
                ],
                "tiers": [["room"], ["leaders"]],
                "escalate_after_s": 0.3,
            }
        )
        notifier = make_notifier(config, tmp_path / "outbox.db")
        async with running(notifier):
            raise_alert(notifier)
            await wait_for(room, 1)
            [escalated] = await wait_for(leaders, 1)
    assert "升级至第 2 级" in json.loads(escalated.body)["markdown"]["content"]


async def test_a_notification_is_durable_once_its_alert_change_is(tmp_path: Path) -> None:
    """The outbox row commits in the alert's unit of work: one transaction, one fsync, no write on
    the event loop (it had its own file and a synchronous insert per message)."""
    store = open_store(tmp_path / "gw.db")
    try:
        notifier = Notifier.from_config(
            notify_config("http://127.0.0.1:9/hook"), store, "实验中学", locate=str
        )
        service = AlertService(store, time.time)
        service.subscribe(notifier.on_alert)
        with store.unit() as unit:
            service.apply(AlertSignal("fire_alarm", "s1", True, time.time(), Severity.CRITICAL, "s1", {}))
            assert notifier.outbox.entries() == []  # nothing is written before the unit commits
        unit.future.result(timeout=5)
        [entry] = notifier.outbox.entries()
        assert entry.alert_id == 1 and store.alert(1) is not None
    finally:
        store.close()


async def test_overdue_major_hazard_goes_to_the_bureau(tmp_path: Path) -> None:
    ticket = Ticket(
        id=7, version=3, title="化学实验室危化品柜漏液", category=HazardCategory.CHEMICAL, level=HazardLevel.MAJOR,
        state=TicketState.IN_PROGRESS, location="2号楼 化学实验室", discovered_at=1_700_000_000.0,
        discovered_by="policy", deadline_ts=1_700_086_400.0,
    )  # fmt: skip
    with http_receiver() as room, http_receiver() as bureau:
        config = NotifyConfig.model_validate(
            {
                "channels": [
                    {"name": "room", "url": room.url, "outside": False},
                    {"name": "bureau", "url": bureau.url, "format": "dingtalk", "message": "text"},
                ],
                "tiers": [["room"], ["bureau"]],
            }
        )
        notifier = make_notifier(config, tmp_path / "outbox.db")
        async with running(notifier):
            notifier.escalate(ticket, "重大隐患逾期 2.0 小时未销号（挂牌督办）")
            [request] = await wait_for(bureau, 1)
    content = json.loads(request.body)["text"]["content"]
    assert content.startswith("【挂牌督办】化学实验室危化品柜漏液") and "隐患编号：7" in content
    assert room.received == []
