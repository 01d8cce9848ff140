"""backup while the gateway runs (no stopped service, no torn copy); restore checks the schema."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from storage.schema import SCHEMA_VERSION
from storage.sqlite import SqliteStore
from tests.conftest import Broker
from tests.gateway.support import api_port, cli, readings, start_gateway, wait_for, wait_ready, write_config

DEVICES = 5
PER_DEVICE = 600


def _publish(broker: Broker, done: threading.Event) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="backup-fleet")
    client.connect(broker.host, broker.port)
    client.loop_start()
    base = time.time() - 3600
    infos = []
    for seq in range(1, PER_DEVICE + 1):
        for device in range(DEVICES):
            body = {"ts": base + seq, "seq": seq, "values": {"temperature_c": 20.0 + seq % 10}}
            infos.append(
                client.publish(f"campus/ops/temperature/t{device}/telemetry", json.dumps(body), qos=1)
            )
        time.sleep(0.002)  # a stream, not one burst: the backups land in the middle of it
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()
    done.set()


def _check(backup: Path) -> int:
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        return int(conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])


def test_backup_while_the_gateway_writes_is_a_consistent_complete_copy(
    mosquitto: Broker, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "etc", mosquitto, DEVICES)
    db = tmp_path / "etc" / "data" / "gateway.db"
    gateway = start_gateway(config)
    try:
        wait_ready(api_port(config))
        time.sleep(0.3)  # its SUBSCRIBE, sent on connect, reaches the broker before the fleet's PUBLISH
        done = threading.Event()
        threading.Thread(target=_publish, args=(mosquitto, done), daemon=True).start()
        counts = []
        for n in range(3):
            wait_for(lambda n=n: readings(db) > (n + 1) * 400, what="readings arriving")
            result = cli("backup", "--to", str(tmp_path / f"b{n}.db"), "--config", str(config))
            assert result.returncode == 0, result.stderr
            assert "integrity ok" in result.stdout
            counts.append(_check(tmp_path / f"b{n}.db"))
        assert counts == sorted(counts) and counts[0] > 0
        assert done.wait(60)
        wait_for(lambda: readings(db) == DEVICES * PER_DEVICE, what="every reading stored")
        # Still running, so the latest commits sit in the WAL, not yet in the main file: a copy of
        # the file alone would miss them; the online backup has them all.
        result = cli("backup", "--to", str(tmp_path / "final.db"), "--config", str(config))
        assert result.returncode == 0, result.stderr
        assert _check(tmp_path / "final.db") == DEVICES * PER_DEVICE
        assert gateway.poll() is None  # the gateway never stopped

        refused = cli("restore", "--from", str(tmp_path / "b0.db"), "--config", str(config))
        assert refused.returncode == 2
        assert "is running on it" in refused.stderr and "stop it first" in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        gateway.terminate()
        gateway.wait(20)

    # Stopped: restore the first backup, and the gateway starts on it.
    restored = cli("restore", "--from", str(tmp_path / "b0.db"), "--config", str(config))
    assert restored.returncode == 0, restored.stderr
    assert readings(db) == counts[0]
    assert readings(db.with_name("gateway.db.before-restore")) == DEVICES * PER_DEVICE
    gateway = start_gateway(config)
    try:
        wait_ready(api_port(config))
        assert gateway.poll() is None
    finally:
        gateway.terminate()
        gateway.wait(20)


def test_backup_refuses_to_overwrite_and_names_a_missing_database(tmp_path: Path) -> None:
    missing = cli("backup", "--to", str(tmp_path / "b.db"), "--db", str(tmp_path / "nothing.db"))
    assert missing.returncode == 2
    assert "nothing.db: no such database file" in missing.stderr
    store = SqliteStore(tmp_path / "g.db")
    store.open()
    store.close()
    (tmp_path / "b.db").write_bytes(b"keep me")
    exists = cli("backup", "--to", str(tmp_path / "b.db"), "--db", str(tmp_path / "g.db"))
    assert exists.returncode == 2 and "already exists" in exists.stderr
    assert (tmp_path / "b.db").read_bytes() == b"keep me"


def test_restore_refuses_a_backup_from_a_newer_gateway(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    result = cli("restore", "--from", str(newer), "--db", str(tmp_path / "g.db"))
    assert result.returncode == 2
    assert f"schema version {SCHEMA_VERSION + 1} was written by a newer gateway" in result.stderr
    assert not (tmp_path / "g.db").exists()


def test_restore_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not sqlite " * 100)
    result = cli("restore", "--from", str(tmp_path / "notes.db"), "--db", str(tmp_path / "g.db"))
    assert result.returncode == 2
    assert "not a gateway database" in result.stderr
