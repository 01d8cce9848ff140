"""`campus-gateway init DIR`: a fresh config with new secrets, and the broker's password file and ACLs.

Tokens are printed once and stored only as SHA-256; broker logins: `gateway.broker_accounts`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

from pydantic import ValidationError

from analytics.devices import DeviceSpec
from gateway.broker_accounts import (
    GATEWAY_USER,
    GATEWAY_USERS,
    mosquitto_password_line,
    update_broker_accounts,
    write_secret,
)
from gateway.config import CampusConfig, ConfigError, hash_token, load_config
from gateway.inventory_cmd import inventory_yaml
from gateway.inventory_csv import InventoryCsvError, parse

ROLES = ("operator", "bureau", "admin")

_TEMPLATE = """\
# Campus Safety Gateway configuration, written by `campus-gateway init`.
# Every key and its default: docs/config-reference.md; every section: config/example/gateway.yaml.
# Validate with: campus-gateway check-config --config {config}
campus:
  id: {campus_id}           # the {{campus_id}} in MQTT topics campus/{{campus_id}}/{{kind}}/{{device_id}}/{{channel}}
  name: {campus_name}
  timezone: Asia/Shanghai

broker:
  host: 127.0.0.1
  port: 1883
  username: {gateway_user}         # mosquitto/acl lets it read campus/{campus_id}/#
  password: "{broker_password}"    # its hash is in mosquitto/passwd
  username_per_lane: true   # its connections log in as {gateway_user}-alarms, -telemetry, -evidence (docs/broker.md)
  client_id: campus-gateway

storage:
  sqlite_path: {data_dir}/gateway.db

tickets:
  photo_dir: {data_dir}/ticket-photos   # the service may write only below its data directory

api:
  host: 127.0.0.1           # loopback: put a TLS reverse proxy in front to serve the campus LAN
  port: 8080
  tokens:                   # SHA-256 of each bearer token; the tokens were printed once by init
{tokens}
inventory: inventory.yaml   # import a CSV with: campus-gateway inventory import FILE.csv

logging:
  level: INFO
  format: plain             # or json
"""


def init_directory(
    directory: Path, campus_id: str, campus_name: str, data_dir: str, devices: list[DeviceSpec], source: str
) -> dict[str, str]:
    """Write gateway.yaml, inventory.yaml and mosquitto/{passwd,acl,device-passwords.csv}; returns the tokens."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mosquitto").mkdir(exist_ok=True)
    tokens = {role: secrets.token_urlsafe(24) for role in ROLES}
    broker_password = secrets.token_urlsafe(24)
    token_lines = "\n".join(
        f'    - {{name: {role}, role: {role}, sha256: "{hash_token(token)}"}}'
        for role, token in tokens.items()
    )
    config = directory / "gateway.yaml"
    text = _TEMPLATE.format(
        config=config,
        campus_id=campus_id,
        campus_name=json.dumps(campus_name, ensure_ascii=False),  # JSON strings are YAML strings
        gateway_user=GATEWAY_USER,
        broker_password=broker_password,
        data_dir=data_dir.rstrip("/") or "/",
        tokens=token_lines,
    )
    write_secret(config, text)  # holds the broker password in clear: the gateway needs it
    (directory / "inventory.yaml").write_text(inventory_yaml(devices, source), encoding="utf-8")
    passwd = directory / "mosquitto" / "passwd"
    # One password for all of the gateway's users: the config has one `broker.password`.
    write_secret(
        passwd, "".join(mosquitto_password_line(user, broker_password) + "\n" for user in GATEWAY_USERS)
    )
    (directory / "mosquitto" / "device-passwords.csv").unlink(missing_ok=True)  # --force: all new
    update_broker_accounts(directory / "mosquitto", campus_id, devices)
    return tokens


def _cmd_init(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if (directory / "gateway.yaml").exists() and not args.force:
        print(
            f"{directory / 'gateway.yaml'}: already exists; --force replaces it and every secret",
            file=sys.stderr,
        )
        return 2
    try:
        CampusConfig(id=args.campus)
    except ValidationError:
        print(
            f"--campus {args.campus!r}: letters, digits, - and _ only (it is part of MQTT topics)",
            file=sys.stderr,
        )
        return 2
    devices: list[DeviceSpec] = []
    source = "an empty list"
    if args.inventory:
        try:
            devices = parse(Path(args.inventory).read_bytes())
        except InventoryCsvError as exc:
            print(f"{args.inventory}: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"{args.inventory}: cannot read it: {exc.strerror}", file=sys.stderr)
            return 2
        source = Path(args.inventory).name
    tokens = init_directory(directory, args.campus, args.name or args.campus, args.data_dir, devices, source)
    try:
        load_config(directory / "gateway.yaml", environ={})
    except ConfigError as exc:  # e.g. a CSV whose devices need sections init does not write
        print(f"written, but the config does not load yet:\n{exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {directory}/gateway.yaml, inventory.yaml ({len(devices)} devices) and mosquitto/passwd, acl"
    )
    print("API tokens (shown only now; the config keeps their SHA-256):")
    for role, token in tokens.items():
        print(f"  {role:<8} {token}")
    print(
        f"device MQTT passwords: {directory}/mosquitto/device-passwords.csv (delete it once devices are set up)"
    )
    return 0


def add_init_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `init DIR` on the `campus-gateway` parser."""
    init = subparsers.add_parser(
        "init", help="write a new config with fresh tokens, broker passwords and per-device ACLs"
    )
    init.add_argument("directory", help="where to write it, e.g. /etc/campus-gateway")
    init.add_argument(
        "--campus", required=True, help="campus id (letters, digits, - and _), used in MQTT topics"
    )
    init.add_argument("--name", default="", help="the school's name, shown on the live page")
    init.add_argument(
        "--data-dir",
        default="data",
        help="where the database lives; relative to DIR unless absolute (a service: /var/lib/campus-gateway)",
    )
    init.add_argument("--inventory", help="the device inventory as CSV, imported into inventory.yaml")
    init.add_argument("--force", action="store_true", help="replace an existing config and all its secrets")
    init.set_defaults(func=_cmd_init)
