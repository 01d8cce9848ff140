"""`campus-gateway inventory import FILE.csv | export`: the inventory file and a school's CSV."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

from analytics.devices import DeviceSpec
from gateway.broker_accounts import update_broker_accounts
from gateway.config import ConfigError, inventory_source, load_config
from gateway.inventory_csv import InventoryCsvError, compare, parse, render


def inventory_yaml(devices: list[DeviceSpec], source: str) -> str:
    """The inventory file's text: a heading saying where it came from, then one entry per device."""
    entries = [device.model_dump(mode="json", exclude_defaults=True) for device in devices]
    body = yaml.safe_dump({"devices": entries}, allow_unicode=True, sort_keys=False, default_flow_style=None)
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    return f"# The device inventory, written by `campus-gateway inventory import` from {source} at {stamp}.\n{body}"


def _cmd_import(args: argparse.Namespace) -> int:
    config_path = Path(args.config)
    csv_path = Path(args.file)
    try:
        if args.broker_dir and not (Path(args.broker_dir) / "passwd").is_file():
            raise ConfigError(
                f"--broker-dir {args.broker_dir}: no passwd there (campus-gateway init writes one)"
            )
        target = inventory_source(config_path)
        if target is None:
            raise ConfigError(f"{config_path}: inventory: the devices are inline; name a file to import into")
        config = load_config(config_path)
        current = config.devices
        try:
            imported = parse(csv_path.read_bytes())
        except OSError as exc:
            raise InventoryCsvError(f"cannot read it: {exc.strerror}") from None
        changes = compare(current, imported)
        for line in changes.describe():
            print(line)
        summary = (
            f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"
        )
        if args.dry_run or changes.empty:
            print(f"{summary}; {target} {'not written (dry run)' if args.dry_run else 'already matches'}")
            return 0
        text = inventory_yaml(imported, csv_path.name)
        # Checked as the gateway will load it (Modbus bindings, payload shapes, panels) before it
        # replaces the file, and replaced by a rename, so a failed import leaves the old file.
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, suffix=".yaml", delete=False
        ) as tmp:
            tmp.write(text)
        try:
            load_config(config_path, inventory_path=Path(tmp.name))
            os.replace(tmp.name, target)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
    except InventoryCsvError as exc:
        print(f"{csv_path}: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{summary}; wrote {target} (restart the gateway to use it)")
    if args.broker_dir:
        broker_dir = Path(args.broker_dir)
        added, removed = update_broker_accounts(broker_dir, config.campus.id, imported)
        print(f"broker logins: {len(added)} added, {len(removed)} removed in {broker_dir}/passwd and acl;")
        print(f"new device passwords in {broker_dir}/device-passwords.csv; copy passwd and acl to the broker")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        devices = load_config(Path(args.config)).devices
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    data = render(devices, args.headers).encode(args.encoding)
    if args.out == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(args.out).write_bytes(data)
        print(f"wrote {len(devices)} devices to {args.out}")
    return 0


def add_inventory_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `inventory import|export` on the `campus-gateway` parser."""
    inventory = subparsers.add_parser(
        "inventory", help="import the device inventory from CSV, export it to CSV"
    )
    actions = inventory.add_subparsers(dest="action", required=True)
    load = actions.add_parser(
        "import",
        help="replace the inventory file the config names with a CSV's devices",
        description="Columns by English field name or zh-CN title (id/设备编号, kind/设备类型, ...); "
        "UTF-8 with or without BOM, or GB18030. Devices not in the CSV are removed.",
    )
    load.add_argument("file", help="the CSV file, e.g. as saved by Excel")
    load.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    load.add_argument(
        "--broker-dir",
        help="also update the broker logins and ACLs `init` wrote there (e.g. /etc/campus-gateway/mosquitto)",
    )
    load.set_defaults(func=_cmd_import)
    dump = actions.add_parser("export", help="write the inventory as CSV (opens in Excel)")
    dump.add_argument("--out", default="-", help="CSV file to write (default: standard output)")
    dump.add_argument(
        "--headers", choices=("zh-CN", "en"), default="zh-CN", help="column titles (default zh-CN)"
    )
    dump.add_argument(
        "--encoding",
        choices=("utf-8-sig", "gb18030"),
        default="utf-8-sig",
        help="utf-8-sig (UTF-8 with BOM, default) or gb18030 (older Excel on a Chinese Windows)",
    )
    dump.set_defaults(func=_cmd_export)
    for parser in (load, dump):
        parser.add_argument(
            "--config", default="config/gateway.yaml", help="the gateway config (default: %(default)s)"
        )
