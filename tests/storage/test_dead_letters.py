"""Dead letters are bounded: a device flooding garbage cannot fill the disk (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

import storage.sqlite
from storage.sqlite import SqliteStore


def test_only_the_newest_dead_letters_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage.sqlite, "MAX_DEAD_LETTER_ROWS", 50)
    monkeypatch.setattr(storage.sqlite, "DEAD_LETTER_PRUNE_EVERY", 10)
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    try:
        for n in range(500):
            store.add_dead_letter(
                float(n), "campus/x/smoke/flood/event", "flood", "malformed_json", "", b"x" * 1000
            )
        store.flush()
        kept = store.dead_letters(limit=1000)
        assert 50 <= len(kept) <= 60
        assert max(letter.received_at for letter in kept) == 499.0  # the newest stay
    finally:
        store.close()
