"""Schema upgrades from databases older versions wrote (fixtures/schema-vN.sql); no downgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from analytics.alerts import AlertState
from storage.schema import SCHEMA_VERSION, SchemaTooNewError, migrate
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


def live_indexes(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'readings'"
        ).fetchall()


def test_a_version_8_live_table_gets_the_covering_index_of_later_chunks(tmp_path: Path) -> None:
    db = database_from(8, tmp_path / "gateway.db")
    assert [name for name, _ in live_indexes(db)] == ["readings_device_metric_ts"]
    with sqlite3.connect(db, isolation_level=None) as conn:
        migrate(conn)
    assert live_indexes(db) == [
        (
            "readings_000000000000_device_metric_ts",
            "CREATE INDEX readings_000000000000_device_metric_ts ON readings (device_id, metric, ts, value)",
        )
    ]


def test_a_live_table_larger_than_a_chunk_is_not_reindexed_at_the_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # History from before chunks: maintenance seals it on its next pass, the next table is covering.
    monkeypatch.setattr("storage.schema._REINDEX_MAX_ROWS", 100)  # the fixture's live table has 120 rows
    db = database_from(8, tmp_path / "gateway.db")
    with sqlite3.connect(db, isolation_level=None) as conn:
        assert migrate(conn) == SCHEMA_VERSION
    assert [name for name, _ in live_indexes(db)] == ["readings_device_metric_ts"]
