"""Config validation messages, env overrides, and the SQLite store's durability helpers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analytics.alerts import Alert, Severity
from gateway.config import ConfigError, load_config
from storage.schema import MIGRATIONS
from storage.sqlite import SqliteStore

GOOD = """
campus: {id: school-1, name: 第一中学}
broker: {host: 127.0.0.1, port: 1883}
api: {tokens: [{name: duty, role: operator, sha256: "%s"}]}
inventory: devices.yaml
rules: {heat_high: {raise_at: 60}}
""" % ("a" * 64)

DEVICES = """
devices:
  - {id: s1, kind: smoke, building: 教学楼, reporting_interval_s: 30}
  - {id: p1, kind: panic}
"""


def write(tmp_path: Path, gateway: str = GOOD, devices: str = DEVICES) -> Path:
    (tmp_path / "devices.yaml").write_text(devices, encoding="utf-8")
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway, encoding="utf-8")
    return path


def test_valid_config_loads_inventory_file_and_resolves_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path), environ={})
    assert [d.id for d in config.devices] == ["s1", "p1"]
    assert config.storage.sqlite_path == tmp_path / "data" / "gateway.db"
    heat = next(rule for rule in config.build_rules() if rule.name == "heat_high")
    assert heat.raise_at == 60.0


def test_environment_overrides_keys(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path),
        environ={"CAMPUS_GATEWAY__BROKER__PORT": "1884", "CAMPUS_GATEWAY__API__HOST": "0.0.0.0"},
    )
    assert (config.broker.port, config.api.host) == (1884, "0.0.0.0")


@pytest.mark.parametrize(
    ("gateway", "devices", "expected"),
    [
        (
            GOOD.replace("port: 1883", "port: abc"),
            DEVICES,
            "gateway.yaml: broker.port: Input should be a valid integer",
        ),
        (
            GOOD.replace("host:", "hostname:"),
            DEVICES,
            "gateway.yaml: broker.hostname: Extra inputs are not permitted",
        ),
        (
            GOOD,
            DEVICES.replace("kind: panic", "kind: doorbell"),
            "devices.yaml: devices.1.kind: Input should be",
        ),
        (GOOD, DEVICES.replace("p1", "s1"), "device id 's1' appears twice"),
        (
            GOOD,
            DEVICES.replace("30}", "-5}"),
            "devices.yaml: devices.0.reporting_interval_s: Input should be greater",
        ),
        (GOOD.replace("raise_at: 60", "raise_at: hot"), DEVICES, "rules.heat_high.raise_at: expected float"),
        (
            GOOD.replace("campus: {id: school-1, name: 第一中学}", ""),
            DEVICES,
            "gateway.yaml: campus: Field required",
        ),
        ("campus: [", DEVICES, "gateway.yaml: not valid YAML"),
        (
            GOOD
            + "modbus: {devices: [{id: nope, model: generic_efm4, transport: {type: tcp, host: h, port: 502}}]}",
            DEVICES,
            "modbus.devices[0] (nope).id: no device with this id in the inventory",
        ),
        (
            GOOD.replace("port: 1883}", "port: 1883, username_per_lane: true}"),
            DEVICES,
            "gateway.yaml: broker: username_per_lane needs a username",
        ),
        (
            GOOD + "chem_cabinets: {c1: oops}",
            DEVICES,
            "gateway.yaml: chem_cabinets.c1: Input should be a valid list",
        ),
    ],
)
def test_config_errors_name_the_file_the_key_and_the_expectation(
    tmp_path: Path, gateway: str, devices: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, gateway, devices), environ={})
    assert expected in str(error.value)


def test_check_config_command_exits_non_zero_with_the_message(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("port: 1883", "port: 99999"))
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "broker.port: Input should be less than or equal to 65535" in result.stderr


def test_migrations_version_the_schema(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    SqliteStore(tmp_path / "s.db").open()  # opening again migrates nothing and succeeds


def test_a_unit_completes_once_its_writes_are_durable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    with store.unit() as unit:
        store.add_readings([("d", "m", 1.0, 1.0), ("d", "m", 2.0, 2.0)])
        store.add_event("d", "smoke", "alarm", 2.0, {})
    unit.future.result(timeout=5)
    with sqlite3.connect(tmp_path / "s.db") as db:  # another connection: committed, not just queued
        assert db.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    store.close()


def test_rollups_and_retention(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", retention_days=1)
    store.open()
    now = time.time()
    old_minute = (now - 2 * 86400) // 60 * 60
    rows = [("t1", "temperature_c", old_minute + s, float(v)) for s, v in ((1, 20), (20, 24), (50, 22))]
    rows += [("t1", "temperature_c", now - 120, 30.0)]
    store.add_readings(rows)
    store.maintain(now)
    store.flush()
    assert store.count("readings") == 1  # the two-day-old samples are past retention...
    points = store.readings("t1", "temperature_c", old_minute, old_minute + 60, step_s=60)
    assert points == [
        {"ts": old_minute, "min": 20.0, "max": 24.0, "avg": 22.0, "last": 22.0}
    ]  # ...kept as a rollup
    store.close()


def test_alert_round_trip(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    alert = Alert(
        7, "heat_high", "k1", "k1", Severity.CRITICAL, True, 1.0, 2.0, count=3, details={"value": 61.0}
    )
    store.save_alert(alert)
    store.flush()
    assert store.alert(7) == alert
    assert store.open_alerts() == [alert] and store.max_alert_id() == 7
    store.close()


def test_rollups_merge_passes_that_split_a_minute(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    minute = (time.time() // 60 - 5) * 60
    store.add_readings([("t", "m", minute + 1, 10.0), ("t", "m", minute + 30, 30.0)])
    store.maintain(time.time())
    store.add_readings([("t", "m", minute + 50, 20.0), ("t", "m", minute + 10, 99.0)])  # one arrives late
    store.maintain(time.time())
    store.flush()
    [(low, high, avg, last, n)] = store._read("SELECT min, max, avg, last, n FROM rollups_1m")
    assert (low, high, avg, last, n) == (10.0, 99.0, 39.75, 20.0, 4)
    store.close()
