"""The SQLite repository: round trip, history with old and new values, optimistic versioning."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from analytics.tickets import TicketState, VersionConflict
from analytics.tickets.model import changed_fields
from storage.schema import MIGRATIONS, migrate
from storage.tickets import SqliteTicketRepository
from tests.tickets.support import DRAFT, T0


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[SqliteTicketRepository]:
    repository = SqliteTicketRepository(tmp_path / "gateway.db")
    yield repository
    repository.close()


def test_the_migration_applies_on_top_of_the_spine(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "gateway.db")
    assert migrate(conn) == len(MIGRATIONS)
    conn.close()
    conn = sqlite3.connect(tmp_path / "gateway.db")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"alerts", "tickets", "ticket_alerts", "ticket_history", "ticket_photos"} <= tables


def test_create_get_and_links(repo: SqliteTicketRepository) -> None:
    created = repo.create(DRAFT, "system", [4, 9])
    assert repo.get(created.id) == created
    assert created.version == 1 and created.state is TicketState.REGISTERED
    assert repo.alert_ids(created.id) == [4, 9]
    assert repo.ticket_id_for_alert(9) == created.id
    assert repo.ticket_id_for_alert(5) is None
    assert repo.attach_alert(created.id, 9, T0, "system") is False


def test_every_save_is_audited_with_old_and_new_values(repo: SqliteTicketRepository) -> None:
    created = repo.create(DRAFT, "system", [])
    updated = replace(created, measures="加装双人刷卡联锁", funds_cny=3000.0, updated_at=T0 + 5)
    saved = repo.save(updated, created.version, "operator-a", "update", changed_fields(created, updated))
    assert saved.version == 2
    last = repo.history(created.id)[-1]
    assert (last.actor, last.ts, last.action) == ("operator-a", T0 + 5, "update")
    assert last.changes == {"measures": ("", "加装双人刷卡联锁"), "funds_cny": (None, 3000.0)}
    assert repo.history(created.id)[0].changes["state"] == (None, "registered")


def test_a_stale_version_is_refused(repo: SqliteTicketRepository) -> None:
    created = repo.create(DRAFT, "system", [])
    repo.save(replace(created, measures="a"), 1, "op-a", "update", {})
    with pytest.raises(VersionConflict) as conflict:
        repo.save(replace(created, measures="b"), 1, "op-b", "update", {})
    assert (conflict.value.expected, conflict.value.current) == (1, 2)
    stored = repo.get(created.id)
    assert stored is not None and stored.measures == "a"


def test_concurrent_read_modify_write_loses_no_update(tmp_path: Path) -> None:
    """Eight operators (each its own connection) add 100 yuan each, retrying on conflict."""
    path = tmp_path / "gateway.db"
    first = SqliteTicketRepository(path)
    ticket_id = first.create(DRAFT, "system", []).id

    def operator(name: str) -> None:
        repo = SqliteTicketRepository(path)
        try:
            while True:
                current = repo.get(ticket_id)
                assert current is not None
                updated = replace(current, funds_cny=(current.funds_cny or 0.0) + 100.0)
                try:
                    repo.save(updated, current.version, name, "update", changed_fields(current, updated))
                    return
                except VersionConflict:
                    continue
        finally:
            repo.close()

    threads = [threading.Thread(target=operator, args=(f"op-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = first.get(ticket_id)
    first.close()
    assert final is not None
    assert (final.funds_cny, final.version) == (800.0, 9)
