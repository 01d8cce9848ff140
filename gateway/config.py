"""Gateway configuration: YAML files validated once at start-up.

Every error names the file, the key path and what was expected. Environment variables
override keys: `CAMPUS_GATEWAY__BROKER__PORT=1884` sets `broker.port` (path segments joined by
double underscores, values parsed as YAML scalars).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from analytics.catalog import EVENTS, METRICS
from analytics.devices import DeviceSpec, Inventory
from analytics.rules.base import Rule
from analytics.rules.defaults import RuleConfigError, configure_rules, default_rules
from analytics.rules.school_hours import SchoolCalendar
from analytics.tickets.config import TicketsConfig
from analytics.zones import ZoneName
from drivers.gb26875.config import Gb26875Settings
from drivers.gb26875.mapping import MappingError
from drivers.gb26875.mapping import bind as bind_panel_points
from drivers.modbus import ModbusSettings
from drivers.modbus.driver import bind_devices
from drivers.modbus.errors import ModelError, SettingsError
from drivers.modbus.registers import load_models
from drivers.mqtt.shapes import PayloadShape
from gateway.evidence import EvidenceConfig
from gateway.logs import LoggingConfig
from gateway.notify.config import NotifyConfig
from sinks.config import SinksConfig

ENV_PREFIX = "CAMPUS_GATEWAY__"
# The bearer tokens printed in config/gateway.yaml's comments: anyone who read the example knows them.
EXAMPLE_TOKENS = ("change-me-operator", "change-me-bureau", "change-me-admin")

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A configuration problem a user can fix in YAML; the message says where and what."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampusConfig(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")  # {campus_id} in the MQTT topics
    name: str = ""  # the school's name on the live page and in reports
    timezone: ZoneName = "Asia/Shanghai"  # IANA name: school hours, reports and months are in this zone


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None  # without username and password any client could publish alarms
    password: str | None = None
    client_id: str = "campus-gateway"  # also the name of its persistent sessions at the broker
    qos: Literal[0, 1] = 1
    mqtt_version: Literal[5, 311] = 5  # 311 for a broker without MQTT 5
    ack_after_commit: bool = True  # PUBACK only once the message is committed to SQLite
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)  # the broker queues for a stopped gateway
    # Each lane logs in as `{username}-{lane}` (gateway-alarms, gateway-telemetry): the shipped
    # broker names every session after its user (use_username_as_clientid, docs/broker.md), so
    # no device credential can take the gateway's sessions over, and each lane needs its own user.
    username_per_lane: bool = False

    @model_validator(mode="after")
    def _lane_users_need_a_username(self) -> BrokerConfig:
        if self.username_per_lane and not self.username:
            raise ValueError(
                "username_per_lane needs a username (the lanes log in as <username>-alarms/-telemetry)"
            )
        return self

    def lane_username(self, lane: str) -> str | None:
        return f"{self.username}-{lane}" if self.username_per_lane else self.username


class DeadbandConfig(_Strict):
    delta: float = Field(ge=0)  # stored when the value moves more than this from the last stored
    max_interval_s: float = Field(gt=0)  # ...or when the last stored is this old


class StorageConfig(_Strict):
    sqlite_path: Path = Path("data/gateway.db")
    retention_days: float = Field(default=30.0, gt=0)  # raw readings
    rollup_retention_days: float = Field(default=90.0, gt=0)  # 1-minute rollups
    rollup_1h_retention_days: float = Field(default=1095.0, gt=0)
    disk_budget_mb: float | None = Field(default=None, gt=0)
    deadband: dict[str, DeadbandConfig] = Field(default_factory=dict)  # by metric name


Role = Literal["operator", "bureau", "admin"]


class TokenConfig(_Strict):
    name: str
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the bearer token")


class ApiConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tokens: list[TokenConfig] = Field(default_factory=list)
    # Sites besides the gateway's own address whose pages may open the live stream (behind a
    # reverse proxy, say): "scheme://host[:port]", exactly as browsers send it in Origin.
    allowed_origins: list[str] = Field(default_factory=list)

    @field_validator("allowed_origins")
    @classmethod
    def _origins_only(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f"{origin!r} is not an origin like https://host or http://host:8080 (no path)"
                )
        return value


class IncidentsConfig(_Strict):
    window_s: float = Field(default=300.0, gt=0)  # alerts of one building this close form one incident
    storm_devices: int = Field(default=10, ge=2)  # this many devices in one incident: an alarm storm


class GatewayConfig(_Strict):
    campus: CampusConfig
    broker: BrokerConfig = BrokerConfig()
    storage: StorageConfig = StorageConfig()
    api: ApiConfig = ApiConfig()
    # The devices, or the name of a YAML file holding them under `devices:` (next to this file).
    inventory: list[DeviceSpec] = Field(default_factory=list)
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tickets: TicketsConfig = TicketsConfig()
    notify: NotifyConfig = NotifyConfig()
    # When the school is open (after_hours_access); without its own timezone, the campus's.
    school_hours: SchoolCalendar | None = None
    # Chemical cabinet id -> ids of the persons authorised to open it (双人双锁); others fail closed.
    chem_cabinets: dict[str, list[str]] = Field(default_factory=dict)
    incidents: IncidentsConfig = IncidentsConfig()
    # Modbus TCP/RTU devices (SPEC section 4): models, transports, poll intervals.
    modbus: ModbusSettings | None = None
    # Fire-alarm panels by GB/T 26875.3 (SPEC section 12): the receiver and the transmission devices.
    gb26875: Gb26875Settings | None = None
    # The fire-lane video worker's YAML (SPEC section 11); the gateway runs and supervises it.
    firelane_worker: Path | None = None
    # Video evidence for alarms (issue 18): which rules ask the cameras of their zone, the links.
    evidence: EvidenceConfig = EvidenceConfig()
    # Vendor JSON layouts mapped onto protocol v1, by name (devices opt in with `payload_shape`).
    mqtt_shapes: dict[str, PayloadShape] = Field(default_factory=dict)
    # Log level, plain or JSON lines, stderr or a rotated file.
    logging: LoggingConfig = LoggingConfig()
    # Forwarding upstream (SPEC sections 1 and 10): an InfluxDB v2 sink, the gateway's MQTT topics.
    sinks: SinksConfig = SinksConfig()

    @field_validator("inventory")
    @classmethod
    def _no_duplicate_ids(cls, value: list[DeviceSpec]) -> list[DeviceSpec]:
        seen: set[str] = set()
        for device in value:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears twice")
            seen.add(device.id)
        return value

    @model_validator(mode="after")
    def _spool_fits_the_disk_budget(self) -> GatewayConfig:
        budget_mb, spool_mb = self.storage.disk_budget_mb, self._spool_mb()
        if budget_mb is not None and spool_mb > budget_mb / 2:
            raise ValueError(
                f"sinks.influx.spool_max_bytes ({spool_mb:g} MB) must be at most half of "
                f"storage.disk_budget_mb ({budget_mb:g} MB): the budget covers the store and the spool"
            )
        return self

    def _spool_mb(self) -> float:
        influx = self.sinks.influx
        return 0.0 if influx is None else influx.spool_max_bytes / 1e6

    @property
    def store_disk_budget_mb(self) -> float | None:
        """What the SQLite store may use: the disk budget less the sink's spool beside it."""
        budget_mb = self.storage.disk_budget_mb
        return None if budget_mb is None else budget_mb - self._spool_mb()

    @property
    def devices(self) -> list[DeviceSpec]:
        return self.inventory

    def build_rules(self) -> list[Rule]:
        calendar = self.school_hours
        if calendar is None or "timezone" not in calendar.model_fields_set:
            calendar = (calendar or SchoolCalendar()).in_timezone(self.campus.timezone)
        return configure_rules(default_rules(calendar, self.chem_cabinets), self.rules)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_config(
    path: Path, environ: Mapping[str, str] | None = None, inventory_path: Path | None = None
) -> GatewayConfig:
    """Read, override from the environment, validate; raise ConfigError naming file and key.

    `inventory_path` reads the devices from that file instead (an import checks its result).
    """
    raw = _read_yaml(path)
    overrides = _apply_env_overrides(raw, os.environ if environ is None else environ)
    if inventory_path is not None:
        raw["inventory"] = str(inventory_path.resolve())
    sources = _Sources(path, overrides)
    inventory_ref = raw.get("inventory")
    inventory_file: Path | None = None
    if isinstance(inventory_ref, str):
        inventory_file = sources.resolve(("inventory",), Path(inventory_ref))
        try:
            inventory_raw = _read_yaml(inventory_file)
        except ConfigError as exc:
            raise ConfigError(f"{sources.where(('inventory',))}: inventory: {exc}") from None
        raw["inventory"] = inventory_raw.get("devices", [])
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources, inventory_file)) from None
    # Relative paths in a config file mean "next to this file", wherever the gateway was started;
    # from an environment variable, relative to the working directory, as a shell user expects.
    storage = config.storage
    storage.sqlite_path = sources.resolve(("storage", "sqlite_path"), storage.sqlite_path)
    config.tickets.photo_dir = sources.resolve(("tickets", "photo_dir"), config.tickets.photo_dir)
    if config.logging.file is not None:
        config.logging.file = sources.resolve(("logging", "file"), config.logging.file)
    if config.modbus is not None:
        if config.modbus.models_dir is not None:  # ModbusSettings is frozen: a copy with the path resolved
            models_dir = sources.resolve(("modbus", "models_dir"), config.modbus.models_dir)
            config.modbus = config.modbus.model_copy(update={"models_dir": models_dir})
        try:
            bind_devices(config.modbus, Inventory(config.devices), load_models(config.modbus.models_dir))
        except (ModelError, SettingsError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    _check_example_tokens(config, path)
    _check_payload_shapes(config, inventory_file or path)
    _check_panels(config, path)
    if config.firelane_worker is not None:
        config.firelane_worker = sources.resolve(("firelane_worker",), config.firelane_worker)
        _check_firelane_worker(config, sources.where(("firelane_worker",)))
    try:
        config.build_rules()
    except RuleConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def inventory_source(path: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The inventory file a config names (None when its devices are inline)."""
    raw = _read_yaml(path)
    sources = _Sources(path, _apply_env_overrides(raw, os.environ if environ is None else environ))
    ref = raw.get("inventory")
    return sources.resolve(("inventory",), Path(ref)) if isinstance(ref, str) else None


class _Sources:
    """Where each key came from: the config file, or the environment variable that overrode it."""

    def __init__(self, path: Path, overrides: dict[tuple[str, ...], str]) -> None:
        self.path = path
        self.overrides = overrides

    def variable(self, keys: tuple[str, ...]) -> str | None:
        """The variable that set this key or one of its sections, if one did."""
        for length in range(len(keys), 0, -1):
            if (name := self.overrides.get(keys[:length])) is not None:
                return name
        return None

    def where(self, keys: tuple[str, ...]) -> str:
        name = self.variable(keys)
        return f"environment variable {name}" if name else str(self.path)

    def resolve(self, keys: tuple[str, ...], value: Path) -> Path:
        if value.is_absolute():
            return value
        base = Path.cwd() if self.variable(keys) else self.path.parent
        return (base / value).resolve()


def _check_example_tokens(config: GatewayConfig, path: Path) -> None:
    """Example tokens are refused on any address but loopback: the LAN could read the README."""
    examples = {hash_token(token): token for token in EXAMPLE_TOKENS}
    for index, token in enumerate(config.api.tokens):
        if token.sha256 not in examples:
            continue
        where = f"{path}: api.tokens[{index}] (name {token.name!r})"
        if not is_loopback(config.api.host):
            raise ConfigError(
                f"{where}: is the example token {examples[token.sha256]!r}, refused while api.host is "
                f"{config.api.host!r}; make a token with `campus-gateway hash-token` and put its sha256 here, "
                "or serve on 127.0.0.1 only"
            )
        log.warning(
            "%s: is the example token %r; replace it before serving the LAN", where, examples[token.sha256]
        )


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _check_payload_shapes(config: GatewayConfig, inventory_path: Path) -> None:
    """Every `payload_shape` exists and maps only metrics and events its device's kind has."""
    for index, device in enumerate(config.devices):
        if not device.payload_shape:
            continue
        where = f"{inventory_path}: inventory[{index}] (id {device.id!r}).payload_shape"
        shape = config.mqtt_shapes.get(device.payload_shape)
        if shape is None:
            known = ", ".join(sorted(config.mqtt_shapes)) or "none"
            raise ConfigError(
                f"{where}: {device.payload_shape!r} is not under mqtt_shapes (defined: {known})"
            )
        if device.protocol != "mqtt":
            raise ConfigError(f"{where}: payload shapes apply to MQTT devices, this one is {device.protocol}")
        prefix = f"mqtt_shapes.{device.payload_shape}"
        for metric in shape.values:
            if metric not in METRICS[device.kind]:
                raise ConfigError(
                    f"{where}: {prefix}.values.{metric} is not a metric of {device.kind.value} "
                    f"(expected one of {', '.join(sorted(METRICS[device.kind]))})"
                )
        for event in sorted(shape.event_names()):
            if event not in EVENTS[device.kind]:
                raise ConfigError(
                    f"{where}: {prefix}.event.names maps to {event!r}, not an event of {device.kind.value} "
                    f"(expected one of {', '.join(sorted(EVENTS[device.kind]))})"
                )


def _check_panels(config: GatewayConfig, path: Path) -> None:
    panel_points = [d.id for d in config.devices if d.gb26875 is not None]
    if config.gb26875 is None:
        if panel_points:
            raise ConfigError(
                f"{path}: {panel_points[0]!r} has a gb26875 panel point but there is no gb26875 section"
            )
        return
    try:
        bind_panel_points(config.gb26875, Inventory(config.devices))
    except MappingError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _check_firelane_worker(config: GatewayConfig, where: str) -> None:
    from gateway.firelane import load_worker_config  # OpenCV loads only when a worker is configured

    assert config.firelane_worker is not None
    try:
        worker = load_worker_config(config.firelane_worker)
    except Exception as exc:  # the worker's loader reports file and key; keep its words
        raise ConfigError(f"{where}: firelane_worker: {exc}") from None
    if worker.campus_id != config.campus.id:
        raise ConfigError(
            f"{config.firelane_worker}: campus_id {worker.campus_id!r} differs from campus.id {config.campus.id!r}"
        )
    for camera in worker.cameras:
        device = next((d for d in config.devices if d.id == camera.id), None)
        if device is None or device.kind.value != "camera":
            raise ConfigError(
                f"{config.firelane_worker}: camera {camera.id!r} needs an inventory entry of kind camera"
            )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Set the keys `CAMPUS_GATEWAY__*` variables name; returns which variable set which key path."""
    applied: dict[tuple[str, ...], str] = {}
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [key.lower() for key in name[len(ENV_PREFIX) :].split("__") if key]
        if not keys:
            continue
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"environment variable {name}: {'.'.join(keys)} does not name a config section"
                )
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment variable {name}: not a valid YAML value: {exc}") from None
        applied[tuple(keys)] = name
    return applied


# pydantic's names for the pieces of a type it tried (a union branch, a validator); not keys.
_TYPE_PARTS = ("list[", "function-", "lax-or-strict", "json-or-python", "union[", "tagged-union[")


def _describe(exc: ValidationError, sources: _Sources, inventory_file: Path | None) -> str:
    lines = []
    for error in exc.errors():
        keys = tuple(str(part) for part in error["loc"] if not str(part).startswith(_TYPE_PARTS))
        where = sources.where(keys)
        location = list(keys)
        if inventory_file is not None and keys[:1] == ("inventory",):
            where = str(inventory_file)
            location = ["devices", *keys[1:]]
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        lines.append(f"{where}: {'.'.join(location) or '<top>'}: {message}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
