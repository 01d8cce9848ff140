"""`campus-gateway init`: fresh secrets, and a broker that lets only the inventory's devices in."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
import stat
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from analytics.evidence import EvidenceRequest, new_evidence_id, request_topic
from gateway.broker import free_port
from gateway.broker_accounts import GATEWAY_USERS
from gateway.config import hash_token, load_config
from gateway.evidence import EvidenceRequester
from gateway.safety import config_warnings
from tests.conftest import start_mosquitto, stop_process
from tests.gateway.support import cli, start_gateway, wait_for, wait_ready

CSV = "设备编号,设备类型,设备名称,楼栋,房间/区域\r\ns1,烟感,101烟感,教学楼,101\r\npanic-1,一键报警,南门报警,南门,门卫室\r\n"


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "school.csv").write_bytes(CSV.encode("gb18030"))
    result = cli("init", str(tmp_path / "etc"), "--campus", "school-9", "--name", "第九中学",
                 "--inventory", str(tmp_path / "school.csv"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    tokens = dict(line.split() for line in result.stdout.splitlines() if line.startswith("  "))
    return tmp_path / "etc", tokens


def _connect(port: int, user: str | None, password: str | None) -> tuple[paho.Client, ReasonCode]:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}", protocol=paho.MQTTv5
    )
    outcome: list[ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: outcome.append(reason)
    if user is not None:
        client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(lambda: bool(outcome), 10, "CONNACK")
    return client, outcome[0]


def test_init_writes_fresh_tokens_and_no_example_secret(school: tuple[Path, dict[str, str]]) -> None:
    etc, tokens = school
    assert set(tokens) == {"operator", "bureau", "admin"} and len(set(tokens.values())) == 3
    config = load_config(etc / "gateway.yaml", environ={})
    assert {t.role: t.sha256 for t in config.api.tokens} == {r: hash_token(t) for r, t in tokens.items()}
    text = (etc / "gateway.yaml").read_text()
    assert not any(token in text for token in tokens.values())  # shown once, stored hashed
    assert config_warnings(config) == []
    assert [d.id for d in config.devices] == ["s1", "panic-1"]
    for secret in ("gateway.yaml", "mosquitto/passwd", "mosquitto/device-passwords.csv"):
        assert stat.S_IMODE((etc / secret).stat().st_mode) == 0o600, secret
    checked = cli("check-config", "--config", str(etc / "gateway.yaml"))
    assert checked.returncode == 0 and "WARNING" not in checked.stderr
    again = cli("init", str(etc), "--campus", "school-9")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_the_broker_lets_in_only_the_inventory_and_each_device_under_its_own_topic(
    school: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    etc, _ = school
    proc, broker = start_mosquitto(
        tmp_path / "broker",
        f"allow_anonymous false\npassword_file {etc}/mosquitto/passwd\nacl_file {etc}/mosquitto/acl\n",
    )
    api_port = free_port()
    env = {"CAMPUS_GATEWAY__BROKER__PORT": str(broker.port), "CAMPUS_GATEWAY__API__PORT": str(api_port)}
    gateway = start_gateway(etc / "gateway.yaml", env, log=tmp_path / "gateway.log")
    clients: list[paho.Client] = []
    try:
        with (etc / "mosquitto" / "device-passwords.csv").open() as handle:
            passwords = {row["mqtt_username"]: row["mqtt_password"] for row in csv.DictReader(handle)}
        for user, password in ((None, None), ("s1", "wrong"), ("intruder", "x")):
            client, reason = _connect(broker.port, user, password)
            client.loop_stop()
            assert reason.is_failure, user
        db = etc / "data" / "gateway.db"
        wait_ready(api_port)  # connected with the password init wrote into its config
        time.sleep(0.3)  # its SUBSCRIBE, sent on connect, reaches the broker before our PUBLISH
        smoke, reason = _connect(broker.port, "s1", passwords["s1"])
        clients.append(smoke)
        assert not reason.is_failure
        alarm = {"ts": time.time(), "event": "alarm", "attrs": {}}
        spoof = {"ts": time.time(), "event": "pressed", "attrs": {"button": 1}}
        smoke.publish("campus/school-9/panic/panic-1/event", json.dumps(spoof), qos=1).wait_for_publish(10)
        smoke.publish("campus/school-9/smoke/s1/event", json.dumps(alarm), qos=1).wait_for_publish(10)

        def events() -> list[tuple[str, str]]:
            with sqlite3.connect(db, timeout=10) as conn:
                return conn.execute("SELECT device_id, name FROM events ORDER BY id").fetchall()

        wait_for(lambda: ("s1", "alarm") in events(), 30, "the smoke alarm stored")
        time.sleep(0.5)
        assert events() == [("s1", "alarm")]  # the press s1 forged for panic-1 never reached the gateway
    finally:
        for client in clients:
            client.loop_stop()
            client.disconnect()
        gateway.terminate()
        gateway.wait(20)
        stop_process(proc)


def test_a_service_install_writes_only_below_its_data_directory(tmp_path: Path) -> None:
    # The unit makes everything but /var/lib/campus-gateway read-only (ProtectSystem=strict).
    var = tmp_path / "var" / "lib" / "campus-gateway"
    result = cli("init", str(tmp_path / "etc"), "--campus", "c1", "--data-dir", str(var))
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path / "etc" / "gateway.yaml", environ={})
    writable = [config.storage.sqlite_path, config.tickets.photo_dir]
    assert all(path.is_relative_to(var) for path in writable), writable


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--campus", "school 9"], "--campus 'school 9': letters, digits, - and _ only"),
        (["--campus", "c1", "--inventory", "missing.csv"], "missing.csv: cannot read it: No such file"),
    ],
)
def test_bad_init_arguments_are_a_message_and_write_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = cli("init", str(tmp_path / "etc"), *args, cwd=tmp_path)
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "etc").exists()


def test_an_import_updates_the_broker_logins_for_added_and_removed_devices(
    school: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    etc, _ = school
    broker_dir = etc / "mosquitto"
    before = dict(line.split(":", 1) for line in (broker_dir / "passwd").read_text().splitlines())
    (tmp_path / "new.csv").write_text("id,kind\ns1,smoke\ngate-1,gate\n")  # panic-1 gone, gate-1 new
    result = cli("inventory", "import", str(tmp_path / "new.csv"), "--config", str(etc / "gateway.yaml"),
                 "--broker-dir", str(broker_dir))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "broker logins: 1 added, 1 removed" in result.stdout
    after = dict(line.split(":", 1) for line in (broker_dir / "passwd").read_text().splitlines())
    assert set(after) == {*GATEWAY_USERS, "s1", "gate-1"}
    for kept in (*GATEWAY_USERS, "s1"):
        assert after[kept] == before[kept], kept  # kept, not regenerated
    acl = (broker_dir / "acl").read_text()
    assert "topic write campus/school-9/gate/gate-1/#" in acl and "panic-1" not in acl
    with (broker_dir / "device-passwords.csv").open() as handle:
        passwords = {row["mqtt_username"]: row["mqtt_password"] for row in csv.DictReader(handle)}
    assert set(passwords) == {"s1", "gate-1"}
    proc, broker = start_mosquitto(
        tmp_path / "broker",
        f"allow_anonymous false\npassword_file {broker_dir}/passwd\nacl_file {broker_dir}/acl\n",
    )
    try:
        for user, password, refused in (("gate-1", passwords["gate-1"], False), ("s1", passwords["s1"], False),
                                        ("panic-1", "anything", True)):  # fmt: skip
            client, reason = _connect(broker.port, user, password)
            client.loop_stop()
            assert reason.is_failure is refused, user
    finally:
        stop_process(proc)


def test_an_initd_broker_lets_the_gateways_evidence_requests_reach_the_camera(tmp_path: Path) -> None:
    """With `username_per_lane` (init's default) the gateway asks for video as gateway-evidence:
    init writes that login and its ACL, and the camera's own login reads its requests."""
    school = (
        CSV.replace("房间/区域\r\n", "房间/区域,覆盖区域\r\n", 1)
        + "cam1,摄像头,南门摄像头,南门,校门,门卫室\r\n"
    )
    (tmp_path / "school.csv").write_bytes(school.encode("gb18030"))
    result = cli(
        "init", str(tmp_path / "etc"), "--campus", "school-9", "--inventory", str(tmp_path / "school.csv")
    )
    assert result.returncode == 0, result.stderr
    etc = tmp_path / "etc"
    config = load_config(etc / "gateway.yaml", environ={})
    assert config.broker.username_per_lane and config.devices[-1].covers_zones == ["门卫室"]
    with (etc / "mosquitto" / "device-passwords.csv").open() as handle:
        passwords = {row["mqtt_username"]: row["mqtt_password"] for row in csv.DictReader(handle)}
    proc, broker = start_mosquitto(
        tmp_path / "broker",
        f"allow_anonymous false\npassword_file {etc}/mosquitto/passwd\nacl_file {etc}/mosquitto/acl\n"
        "use_username_as_clientid true\n",  # as the shipped mosquitto.conf
    )
    received: list[bytes] = []
    camera, reason = _connect(broker.port, "cam1", passwords["cam1"])
    try:
        assert not reason.is_failure
        camera.on_message = lambda _c, _u, message: received.append(bytes(message.payload))
        camera.subscribe(request_topic("school-9", "cam1"), qos=1)
        time.sleep(0.3)  # the SUBSCRIBE reaches the broker before the request

        async def ask() -> None:
            requester = EvidenceRequester(
                "school-9", tmp_path / "evidence", "127.0.0.1", broker.port,
                f"{config.broker.client_id}-evidence", config.broker.lane_username("evidence"),
                config.broker.password,
            )  # fmt: skip
            await requester.start()
            try:
                requester.ask("cam1", EvidenceRequest(new_evidence_id(), time.time()))
                await asyncio.to_thread(wait_for, lambda: bool(received), 10, "the request at the camera")
            finally:
                await requester.stop()

        asyncio.run(ask())
        assert EvidenceRequest.from_json(received[0]).requested_at <= time.time()
    finally:
        camera.loop_stop()
        camera.disconnect()
        stop_process(proc)
