"""Which cameras see an alarm (inventory `covers_zones`) and the `evidence:` section, validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from analytics.devices import DeviceSpec, Inventory
from analytics.records import DeviceKind
from gateway.config import ConfigError, load_config
from gateway.evidence import CameraCoverage


def camera(device_id: str, building: str, *zones: str) -> DeviceSpec:
    return DeviceSpec(id=device_id, kind=DeviceKind.CAMERA, building=building, covers_zones=list(zones))


def test_an_alarm_is_seen_by_the_cameras_covering_its_zone_in_its_building() -> None:
    inventory = Inventory(
        [
            camera("cam-gate", "南门", "门卫室", "校门"),
            camera("cam-other", "北门", "门卫室"),  # same zone name, another building
            DeviceSpec(id="cam-lane", kind=DeviceKind.CAMERA, building="南门", zone="门卫室"),  # lists none
            DeviceSpec(id="p1", kind=DeviceKind.PANIC, building="南门", zone="门卫室"),
            DeviceSpec(id="p2", kind=DeviceKind.PANIC, building="南门", zone="食堂"),
            DeviceSpec(id="p3", kind=DeviceKind.PANIC, building="南门"),
        ]
    )
    coverage = CameraCoverage(inventory)
    assert [c.id for c in coverage.cameras_for("p1")] == ["cam-gate"]
    assert coverage.cameras_for("p2") == [] and coverage.cameras_for("p3") == []
    assert coverage.cameras_for("unknown") == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "p1", "kind": "panic", "covers_zones": ["门卫室"]}, "covers_zones is for cameras"),
        ({"id": "c1", "kind": "camera", "covers_zones": ["门卫室", "门卫室"]}, "named twice"),
        ({"id": "c1", "kind": "camera", "covers_zones": [" "]}, "a zone name is empty"),
    ],
)
def test_covers_zones_is_checked(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeviceSpec.model_validate(entry)


def test_an_unknown_evidence_rule_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("campus: {id: c1}\nevidence: {rules: [panic_pressed, panic_presed]}\n")
    with pytest.raises(ConfigError, match=r"evidence.rules: unknown rules \['panic_presed'\]"):
        load_config(path)
    path.write_text("campus: {id: c1}\nevidence: {public_url: 'gateway.school/'}\n")
    with pytest.raises(ConfigError, match=r"evidence.public_url"):
        load_config(path)
