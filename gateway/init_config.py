"""`campus-gateway init DIR`: a fresh config with new secrets, and the broker's password file and ACLs.

Tokens are printed once and stored only as SHA-256; broker passwords are stored as mosquitto
PBKDF2-SHA512 hashes (the `$7$` format mosquitto_passwd writes), so nothing here needs
mosquitto_passwd on the box. Device passwords go to one file, readable by its owner only, for
whoever provisions the devices.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from analytics.devices import DeviceSpec
from gateway.config import CampusConfig, ConfigError, hash_token, load_config
from gateway.inventory_cmd import inventory_yaml
from gateway.inventory_csv import InventoryCsvError, parse

GATEWAY_USER = "gateway"
ROLES = ("operator", "bureau", "admin")
# mosquitto 2.0's default; the count is stored in each line, so later versions read it too.
PBKDF2_ITERATIONS = 101

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


def mosquitto_password_line(username: str, password: str) -> str:
    """One line of a mosquitto password file: `user:$7$iterations$salt$hash` (PBKDF2-SHA512)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"{username}:$7${PBKDF2_ITERATIONS}${encoded[0]}${encoded[1]}"


def acl_text(campus_id: str, devices: Iterable[DeviceSpec]) -> str:
    """The gateway reads its campus; each MQTT device writes only under its own topic."""
    lines = [
        "# Written by campus-gateway init. The gateway reads everything of its campus.",
        f"user {GATEWAY_USER}",
        f"topic read campus/{campus_id}/#",
        # The gateway publishes alert changes for a bridge to the district (SPEC 10).
        f"topic write campus/{campus_id}/gateway/#",
        "",
        "# Each device publishes only under campus/{campus}/{kind}/{its id}/.",
    ]
    for device in devices:
        if device.protocol == "mqtt":
            lines += [
                f"user {device.id}",
                f"topic write campus/{campus_id}/{device.kind.value}/{device.id}/#",
                "",
            ]
    return "\n".join(lines) + "\n"


def _write_secret(path: Path, text: str) -> None:
    """Written readable by its owner only, from the first byte (no window with wider modes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


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
    _write_secret(config, text)  # holds the broker password in clear: the gateway needs it
    (directory / "inventory.yaml").write_text(inventory_yaml(devices, source), encoding="utf-8")
    mqtt_devices = [d for d in devices if d.protocol == "mqtt"]
    device_passwords = {d.id: secrets.token_urlsafe(18) for d in mqtt_devices}
    passwd = [mosquitto_password_line(GATEWAY_USER, broker_password)]
    passwd += [mosquitto_password_line(device_id, pw) for device_id, pw in device_passwords.items()]
    _write_secret(directory / "mosquitto" / "passwd", "\n".join(passwd) + "\n")
    (directory / "mosquitto" / "acl").write_text(acl_text(campus_id, devices), encoding="utf-8")
    credentials = ["device_id,mqtt_username,mqtt_password"]
    credentials += [f"{device_id},{device_id},{pw}" for device_id, pw in device_passwords.items()]
    _write_secret(directory / "mosquitto" / "device-passwords.csv", "\n".join(credentials) + "\n")
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
