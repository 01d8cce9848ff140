"""The configuration files shipped under config/ stay valid."""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_config

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_example_gateway_config_is_valid() -> None:
    config = load_config(CONFIG / "gateway.yaml", environ={})
    assert config.campus.id == "school-001"
    assert {device.kind.value for device in config.devices} >= {"smoke", "temperature", "panic", "gate"}
