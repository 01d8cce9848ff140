"""Backup and restore of the gateway's SQLite file with SQLite's online backup API.

A backup copies the database in one step (`pages=-1`), i.e. inside one read transaction: the
copy is the committed state at one instant, never a torn mix, and in WAL mode the running
gateway's writer carries on meanwhile (readers do not block it). Copying the file with `cp`
instead can tear it: the WAL holds commits the main file does not have yet.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.schema import SCHEMA_VERSION, SchemaTooNewError


class BackupError(Exception):
    """A backup or restore that cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    schema_version: int
    size_bytes: int


def schema_version(path: Path) -> int:
    """The schema version (`PRAGMA user_version`) of a database file, read without changing it."""
    if not path.is_file():
        raise BackupError(f"{path}: no such database file")
    try:
        conn = sqlite3.connect(path)
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a gateway database ({exc})") from None
    return int(version)


def check_not_newer(path: Path) -> None:
    """Refuse a database written by a newer gateway before anything opens it for writing."""
    if path.is_file() and (version := schema_version(path)) > SCHEMA_VERSION:
        raise BackupError(f"{path}: {SchemaTooNewError(version)}")


def _copy(source: Path, target: Path) -> None:
    """source -> target through the backup API, as one consistent snapshot; target made durable."""
    # Not opened read-only: a read-only connection to a WAL database fails when its -shm is missing.
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=-1)
        # One self-contained file: no -wal beside it that a copy to a USB stick could leave behind.
        dst.execute("PRAGMA journal_mode=DELETE")
        (ok,) = dst.execute("PRAGMA quick_check").fetchone()
        if ok != "ok":
            raise BackupError(f"{source}: the copy fails SQLite's integrity check: {ok}")
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source}: cannot copy it: {exc}") from None
    finally:
        dst.close()
        src.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def backup(database: Path, target: Path) -> BackupInfo:
    """A consistent copy of `database` at `target`, safe while the gateway writes to it."""
    version = schema_version(database)
    if target.exists():
        raise BackupError(f"{target}: already exists; name a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(database, partial)
        os.replace(partial, target)  # a crash mid-copy leaves a .partial, never a torn backup
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(target, version, target.stat().st_size)


def restore(source: Path, database: Path) -> BackupInfo:
    """Replace `database` with the backup `source`; the gateway must be stopped.

    A backup from an older version is fine (the gateway migrates it when it starts); one from a
    newer version is refused. The database being replaced is kept beside it as `.before-restore`.
    """
    version = schema_version(source)
    if version > SCHEMA_VERSION:
        raise BackupError(f"{source}: {SchemaTooNewError(version)}")
    if version == 0:
        raise BackupError(f"{source}: an empty database, not a gateway backup")
    if database.exists():
        kept = database.with_name(database.name + ".before-restore")
        kept.unlink(missing_ok=True)
        _copy(database, kept)
    database.parent.mkdir(parents=True, exist_ok=True)
    incoming = database.with_name(database.name + ".restoring")
    incoming.unlink(missing_ok=True)
    try:
        _copy(source, incoming)
        # The old file's -wal and -shm belong to the old file: a WAL left beside the new one would
        # be replayed into it on the next open.
        for suffix in ("-wal", "-shm"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        os.replace(incoming, database)
    finally:
        incoming.unlink(missing_ok=True)
    return BackupInfo(database, version, database.stat().st_size)
