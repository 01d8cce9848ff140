"""How every SQLite file of the gateway is opened: one durability policy for all of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode whose commits survive a power cut, usable from any thread.

    What is committed has been confirmed to someone (a PUBACK to a device, a reply to an
    operator), so a commit must outlive a power cut, not only a crash: FULL syncs the WAL at each
    commit (NORMAL would not). Writers batch their commits, so that is one fsync per batch.
    Autocommit mode (`isolation_level=None`): callers open their transactions explicitly.
    """
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
