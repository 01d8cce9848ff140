from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tickets.support import TicketWorld, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[TicketWorld]:
    made = make_world(tmp_path / "gateway.db")
    yield made
    made.repository.close()
