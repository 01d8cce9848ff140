"""The complete annotated example covers every section and loads; the key reference is current."""

from __future__ import annotations

import yaml

from gateway.config import GatewayConfig, load_config
from gateway.config_reference import render
from tests.gateway.support import ROOT

EXAMPLE = ROOT / "config" / "example" / "gateway.yaml"


def test_the_complete_example_loads_and_has_every_section() -> None:
    config = load_config(EXAMPLE, environ={})
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert sorted(set(GatewayConfig.model_fields) - set(raw)) == []  # a new section needs its example
    assert {d.kind.value for d in config.devices} == {
        "smoke", "temperature", "electrical_fire", "panic", "gate", "chem_cabinet", "camera", "fire_panel"
    }  # fmt: skip
    assert config.firelane_worker is not None and config.modbus is not None and config.gb26875 is not None


def test_the_key_reference_in_docs_is_generated_from_the_models() -> None:
    # On failure: python -m gateway.config_reference > docs/config-reference.md
    assert (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8") == render()
