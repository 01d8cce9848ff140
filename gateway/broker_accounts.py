"""The broker's logins and ACLs for the inventory: mosquitto's password file, its ACL file, and
the device passwords for whoever provisions the devices.

Passwords are stored as mosquitto PBKDF2-SHA512 hashes (the `$7$` format mosquitto_passwd
writes), so nothing here needs mosquitto_passwd on the box. Each MQTT device logs in with its
inventory id and may publish only under its own topic.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind

GATEWAY_USER = "gateway"
# With `broker.username_per_lane` each of the gateway's connections logs in as its own user
# (the shipped mosquitto.conf names sessions after users): `gateway-alarms`, ... (docs/broker.md).
# What each lane's user may do, under campus/{campus_id}/ (the ACL that init writes).
GATEWAY_LANE_TOPICS: dict[str, tuple[tuple[str, str], ...]] = {
    "alarms": (("read", "+/+/event"), ("read", "+/+/status")),
    "telemetry": (("read", "+/+/telemetry"),),
    "evidence": (("write", "local/evidence/#"),),
}
GATEWAY_LANES = tuple(GATEWAY_LANE_TOPICS)
GATEWAY_USERS = (GATEWAY_USER, *(f"{GATEWAY_USER}-{lane}" for lane in GATEWAY_LANES))
# mosquitto 2.0's default; the count is stored in each line, so later versions read it too.
PBKDF2_ITERATIONS = 101


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
        # ...and asks the cameras' workers for alarm video (docs/evidence.md).
        f"topic write campus/{campus_id}/local/evidence/#",
        "",
        "# The same, one user per connection (gateway.yaml `broker.username_per_lane: true`).",
    ]
    for lane, rules in GATEWAY_LANE_TOPICS.items():
        access = [f"topic {verb} campus/{campus_id}/{topic}" for verb, topic in rules]
        lines += [f"user {GATEWAY_USER}-{lane}", *access, ""]
    lines.append("# Each device publishes only under campus/{campus}/{kind}/{its id}/.")
    for device in devices:
        if device.protocol == "mqtt":
            lines += [
                f"user {device.id}",
                f"topic write campus/{campus_id}/{device.kind.value}/{device.id}/#",
            ]
            if device.kind is DeviceKind.CAMERA:
                lines.append(f"topic read campus/{campus_id}/local/evidence/{device.id}")
            lines.append("")
    return "\n".join(lines) + "\n"


def write_secret(path: Path, text: str) -> None:
    """Written readable by its owner only, from the first byte (no window with wider modes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def update_broker_accounts(
    broker_dir: Path, campus_id: str, devices: list[DeviceSpec]
) -> tuple[list[str], list[str]]:
    """Bring passwd and acl in line with the inventory: logins for new MQTT devices, none for removed ones.

    Existing logins (the gateway's users, devices still listed) keep their passwords. New passwords are
    added to device-passwords.csv. Returns the device ids added and removed.
    """
    passwd = broker_dir / "passwd"
    lines = {
        line.split(":", 1)[0]: line for line in passwd.read_text(encoding="utf-8").splitlines() if ":" in line
    }
    wanted = {d.id for d in devices if d.protocol == "mqtt"}
    removed = sorted(user for user in lines if user not in GATEWAY_USERS and user not in wanted)
    added = [d.id for d in devices if d.protocol == "mqtt" and d.id not in lines]
    new_passwords = {device_id: secrets.token_urlsafe(18) for device_id in added}
    kept = [line for user, line in lines.items() if user not in removed]
    kept += [mosquitto_password_line(device_id, password) for device_id, password in new_passwords.items()]
    write_secret(passwd, "\n".join(kept) + "\n")
    (broker_dir / "acl").write_text(acl_text(campus_id, devices), encoding="utf-8")
    credentials = broker_dir / "device-passwords.csv"
    rows = credentials.read_text(encoding="utf-8").splitlines() if credentials.exists() else []
    rows = rows or ["device_id,mqtt_username,mqtt_password"]
    rows = [row for row in rows if row.split(",", 1)[0] not in removed]
    rows += [f"{device_id},{device_id},{password}" for device_id, password in new_passwords.items()]
    write_secret(credentials, "\n".join(rows) + "\n")
    return added, removed
