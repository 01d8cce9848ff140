"""Gateway configuration: YAML files validated once at start-up.

Every error names the file, the key path and what was expected. Environment variables
override keys: `CAMPUS_GATEWAY__BROKER__PORT=1884` sets `broker.port` (path segments joined by
double underscores, values parsed as YAML scalars).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from analytics.catalog import EVENTS, METRICS
from analytics.devices import DeviceSpec, Inventory
from analytics.rules.base import Rule
from analytics.rules.defaults import RuleConfigError, configure_rules, default_rules
from analytics.rules.school_hours import SchoolCalendar
from analytics.tickets.config import TicketsConfig
from drivers.gb26875.config import Gb26875Settings
from drivers.gb26875.mapping import MappingError
from drivers.gb26875.mapping import bind as bind_panel_points
from drivers.modbus import ModbusSettings
from drivers.modbus.driver import bind_devices
from drivers.modbus.errors import ModelError, SettingsError
from drivers.modbus.registers import load_models
from drivers.mqtt.shapes import PayloadShape
from gateway.notify.config import NotifyConfig
from sinks.config import SinksConfig

ENV_PREFIX = "CAMPUS_GATEWAY__"


class ConfigError(Exception):
    """A configuration problem a user can fix in YAML; the message says where and what."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampusConfig(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = ""
    timezone: str = "Asia/Shanghai"


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    client_id: str = "campus-gateway"
    qos: Literal[0, 1] = 1
    mqtt_version: Literal[5, 311] = 5
    ack_after_commit: bool = True
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)


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


class IncidentsConfig(_Strict):
    window_s: float = Field(default=300.0, gt=0)  # alerts of one building this close form one incident
    storm_devices: int = Field(default=10, ge=2)  # this many devices in one incident: an alarm storm


class GatewayConfig(_Strict):
    campus: CampusConfig
    broker: BrokerConfig = BrokerConfig()
    storage: StorageConfig = StorageConfig()
    api: ApiConfig = ApiConfig()
    inventory: list[DeviceSpec] | Path = Field(default_factory=list)
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
    # Vendor JSON layouts mapped onto protocol v1, by name (devices opt in with `payload_shape`).
    mqtt_shapes: dict[str, PayloadShape] = Field(default_factory=dict)
    # Forwarding upstream (SPEC sections 1 and 10): an InfluxDB v2 sink, the gateway's MQTT topics.
    sinks: SinksConfig = SinksConfig()

    @field_validator("inventory")
    @classmethod
    def _no_duplicate_ids(cls, value: list[DeviceSpec] | Path) -> list[DeviceSpec] | Path:
        if isinstance(value, list):
            seen: set[str] = set()
            for device in value:
                if device.id in seen:
                    raise ValueError(f"device id {device.id!r} appears twice")
                seen.add(device.id)
        return value

    @property
    def devices(self) -> list[DeviceSpec]:
        assert isinstance(self.inventory, list), "load_config resolves inventory files"
        return self.inventory

    def build_rules(self) -> list[Rule]:
        calendar = self.school_hours
        if calendar is None or "timezone" not in calendar.model_fields_set:
            calendar = (calendar or SchoolCalendar()).in_timezone(self.campus.timezone)
        return configure_rules(default_rules(calendar, self.chem_cabinets), self.rules)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_config(path: Path, environ: dict[str, str] | None = None) -> GatewayConfig:
    """Read, override from the environment, validate; raise ConfigError naming file and key."""
    raw = _read_yaml(path)
    _apply_env_overrides(raw, os.environ if environ is None else environ)
    inventory_ref = raw.get("inventory")
    inventory_file: Path | None = None
    if isinstance(inventory_ref, str):
        inventory_file = (path.parent / inventory_ref).resolve()
        inventory_raw = _read_yaml(inventory_file)
        raw["inventory"] = inventory_raw.get("devices", [])
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, inventory_file)) from None
    # Relative paths in a config file mean "next to this file", wherever the gateway was started.
    if not config.storage.sqlite_path.is_absolute():
        config.storage.sqlite_path = (path.parent / config.storage.sqlite_path).resolve()
    if not config.tickets.photo_dir.is_absolute():
        config.tickets.photo_dir = (path.parent / config.tickets.photo_dir).resolve()
    if config.modbus is not None:
        if config.modbus.models_dir is not None and not config.modbus.models_dir.is_absolute():
            config.modbus.models_dir = (path.parent / config.modbus.models_dir).resolve()
        try:
            bind_devices(config.modbus, Inventory(config.devices), load_models(config.modbus.models_dir))
        except (ModelError, SettingsError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    _check_payload_shapes(config, inventory_file or path)
    _check_panels(config, path)
    if config.firelane_worker is not None:
        config.firelane_worker = (path.parent / config.firelane_worker).resolve()
        _check_firelane_worker(config)
    try:
        config.build_rules()
    except RuleConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


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


def _check_firelane_worker(config: GatewayConfig) -> None:
    from gateway.firelane import load_worker_config  # OpenCV loads only when a worker is configured

    assert config.firelane_worker is not None
    try:
        worker = load_worker_config(config.firelane_worker)
    except Exception as exc:  # the worker's loader reports file and key; keep its words
        raise ConfigError(f"firelane_worker: {exc}") from None
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
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str] | os._Environ[str]) -> None:
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [key.lower() for key in name[len(ENV_PREFIX) :].split("__") if key]
        if not keys:
            continue
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(keys)} does not name a config section")
            node = child
        node[keys[-1]] = yaml.safe_load(text)


def _describe(exc: ValidationError, path: Path, inventory_file: Path | None) -> str:
    lines = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        where = path
        if inventory_file is not None and location[:1] == ["inventory"]:
            where = inventory_file
            location = ["devices", *location[1:]]
        # pydantic names the union branch it tried ("list[DeviceSpec]"); users need the key only.
        location = [part for part in location if not part.startswith(("list[", "function-"))]
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        lines.append(f"{where}: {'.'.join(location) or '<top>'}: {error['msg']}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
