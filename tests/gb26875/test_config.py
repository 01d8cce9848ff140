"""The gb26875 section in the gateway's YAML: validated at load, errors name the entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

CONFIG = """
campus: {id: demo}
gb26875:
  port: 9000
  transmitters:
    - {id: uitd-1, address: 889, model: acme}
  transmitter_models:
    acme: {bcd_time: true}
inventory:
  - {id: uitd-1, kind: fire_panel, protocol: gb26875}
  - id: lib-3f-smoke-01
    kind: smoke
    protocol: gb26875
    gb26875: {transmitter: uitd-1, system_address: 1, component_type: 42, component_address: "10-2"}
"""


def test_a_panel_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path, environ={})
    assert config.gb26875 is not None and config.gb26875.transmitters[0].address == 889
    smoke = config.devices[1]
    assert smoke.gb26875 is not None and smoke.gb26875.component_address == 0x0002000A


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("transmitter: uitd-1, system", "transmitter: uitd-9, system"), "uitd-9"),
        (("model: acme}", "model: other}"), "transmitter_models"),
        (("gb26875:\n  port", "unused:\n  port"), "unused"),
    ],
)
def test_panel_config_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.replace(*change), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_panel_points_need_the_section(tmp_path: Path) -> None:
    text = CONFIG.split("inventory:")[0].split("gb26875:\n")[0] + "inventory:" + CONFIG.split("inventory:")[1]
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="no gb26875 section"):
        load_config(path, environ={})
