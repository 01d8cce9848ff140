"""The configuration files shipped under config/ stay valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.config import ConfigError, hash_token, load_config

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_example_gateway_config_is_valid() -> None:
    config = load_config(CONFIG / "gateway.yaml", environ={})
    assert config.campus.id == "school-001"
    assert {device.kind.value for device in config.devices} >= {"smoke", "temperature", "panic", "gate"}


def test_the_example_config_serves_loopback_only() -> None:
    assert load_config(CONFIG / "gateway.yaml", environ={}).api.host == "127.0.0.1"


def test_example_tokens_are_refused_on_a_lan_address() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(CONFIG / "gateway.yaml", environ={"CAMPUS_GATEWAY__API__HOST": "0.0.0.0"})
    message = str(error.value)
    assert "gateway.yaml: api.tokens[0] (name 'security-room')" in message
    assert "example token 'change-me-operator'" in message and "campus-gateway hash-token" in message


def test_own_tokens_may_serve_the_lan(tmp_path: Path) -> None:
    text = (CONFIG / "gateway.yaml").read_text(encoding="utf-8")
    own = text.replace(
        "ee9ed4fb492afe531f1350060393725f6ba8ceb61768e57b31da6e8a6f01b5d4", hash_token("x" * 32)
    )
    own = own.replace(
        "ea2008f2b72caf6934fa046c3a25a9204c0a200be32eea4ec8126e7ad83488c4", hash_token("y" * 32)
    )
    (tmp_path / "gateway.yaml").write_text(own, encoding="utf-8")
    shutil.copy(CONFIG / "inventory.yaml", tmp_path / "inventory.yaml")
    config = load_config(tmp_path / "gateway.yaml", environ={"CAMPUS_GATEWAY__API__HOST": "0.0.0.0"})
    assert config.api.host == "0.0.0.0"


def test_allowed_origins_are_origins() -> None:
    with pytest.raises(
        ConfigError,
        match=r"environment variable CAMPUS_GATEWAY__API__ALLOWED_ORIGINS: api.allowed_origins: 'https://x.example/page' is not an origin",
    ):
        load_config(
            CONFIG / "gateway.yaml",
            environ={"CAMPUS_GATEWAY__API__ALLOWED_ORIGINS": "[https://x.example/page]"},
        )
