"""`campus-gateway backup --to FILE` and `restore --from FILE`: the database, found as `run` finds it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config import ConfigError, load_config
from gateway.runlock import AlreadyRunningError, check_not_running
from storage.backup import BackupError, backup, restore


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """`--config` and `--db`, for commands that read the gateway's database as `run` does."""
    parser.add_argument(
        "--config",
        default="config/gateway.yaml",
        help="the gateway config naming the database (default: %(default)s)",
    )
    parser.add_argument("--db", help="the database file itself, instead of the one the config names")


def database_path(args: argparse.Namespace) -> Path:
    """`--db` when given, else the config's `storage.sqlite_path` (raises ConfigError)."""
    if args.db:
        return Path(args.db).resolve()
    return load_config(Path(args.config)).storage.sqlite_path


def _cmd_backup(args: argparse.Namespace) -> int:
    try:
        info = backup(database_path(args), Path(args.to))
    except (ConfigError, BackupError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{info.path}: {info.size_bytes / 1e6:.1f} MB, schema version {info.schema_version}, integrity ok")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    try:
        database = database_path(args)
        check_not_running(database)
        info = restore(Path(args.source), database)
    except AlreadyRunningError as exc:
        print(f"{exc}; stop it first (systemctl stop campus-gateway)", file=sys.stderr)
        return 2
    except (ConfigError, BackupError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"restored {database} from {args.source} (schema version {info.schema_version}); the previous file is kept"
    )
    print(f"as {database.name}.before-restore; start the gateway to use it (it migrates an older schema)")
    return 0


def add_backup_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `backup` and `restore` on the `campus-gateway` parser."""
    save = subparsers.add_parser(
        "backup", help="copy the database to a file while the gateway runs (SQLite online backup)"
    )
    save.add_argument("--to", required=True, help="the backup file to create (must not exist)")
    add_database_options(save)
    save.set_defaults(func=_cmd_backup)
    load = subparsers.add_parser("restore", help="replace the database with a backup (the gateway stopped)")
    load.add_argument("--from", dest="source", required=True, help="the backup file")
    add_database_options(load)
    load.set_defaults(func=_cmd_restore)
