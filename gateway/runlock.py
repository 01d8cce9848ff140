"""One running gateway per database file: `run` holds an exclusive lock beside it.

`restore` checks the lock, so a database is never replaced under a running gateway; a second
`run` on the same file is refused instead of racing the first one's writer.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class AlreadyRunningError(Exception):
    """Another process holds the database's run lock."""


def _lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextmanager
def run_lock(database: Path) -> Iterator[None]:
    """Hold the database's run lock (released by the kernel when the process dies, even by kill -9)."""
    path = _lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise AlreadyRunningError(f"{database}: a gateway (pid {holder}) is running on it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def check_not_running(database: Path) -> None:
    """Raise AlreadyRunningError when a gateway holds the database's run lock."""
    with run_lock(database):
        pass
