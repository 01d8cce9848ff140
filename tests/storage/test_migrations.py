"""Schema upgrades from databases older versions wrote (fixtures/schema-vN.sql); no downgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from analytics.alerts import AlertState
from storage.schema import SCHEMA_VERSION, SchemaTooNewError
from storage.sqlite import SqliteStore
from tests.gateway.support import cli
from tests.storage.fixtures.make_fixture import T0

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = sorted(int(path.stem.removeprefix("schema-v")) for path in FIXTURES.glob("schema-v*.sql"))


def database_from(version: int, path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / f"schema-v{version}.sql").read_text(encoding="utf-8"))
    conn.close()
    return path


def test_there_is_a_fixture_of_the_current_schema() -> None:
    # A new migration makes this fail until the fixture of the schema it changes is added
    # (make_fixture.py, run with this version's code before the migration lands).
    assert VERSIONS[0] == 1
    assert VERSIONS[-1] == SCHEMA_VERSION


@pytest.mark.parametrize("version", VERSIONS)
def test_a_database_of_an_older_version_upgrades_and_keeps_its_data(version: int, tmp_path: Path) -> None:
    db = database_from(version, tmp_path / "gateway.db")
    store = SqliteStore(db)
    store.open()
    try:
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        samples = store.readings("t1", "temperature_c", T0 - 1, T0 + 7200)
        assert len(samples) == 120 and samples[0]["value"] == 20.0
        alert = store.alert(1)
        assert alert is not None and alert.rule == "fire_alarm" and alert.state is AlertState.ACTIVE
        assert alert.details == {"zone": "后厨"}
        assert [entry.action for entry in store.audit_trail("alert", "1")] == ["acknowledge"]
        assert store.events("s1")[0]["name"] == "alarm"
        assert [d.reason for d in store.dead_letters()] == ["unknown_device"]
        # ...and it takes new writes in the new schema.
        store.add_readings([("t1", "temperature_c", T0 + 9000, 25.0)])
        store.flush()
        assert store.readings("t1", "temperature_c", T0 + 8999, T0 + 9001)[0]["value"] == 25.0
    finally:
        store.close()


def test_a_database_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNewError):
        SqliteStore(db).open()
    (tmp_path / "gateway.yaml").write_text("campus: {id: c}\nstorage: {sqlite_path: gateway.db}\n")
    result = cli("run", "--config", str(tmp_path / "gateway.yaml"))
    assert result.returncode == 2
    assert f"schema version {SCHEMA_VERSION + 1} was written by a newer gateway" in result.stderr
    assert "a downgrade is not supported" in result.stderr and "Traceback" not in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1  # left as it was
