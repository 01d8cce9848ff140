"""Config errors a person can act on: the file or variable, the key path, what was expected; exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config

ROOT = Path(__file__).resolve().parents[2]

GATEWAY = """
campus: {id: school-1, timezone: Asia/Shanghai}
inventory: devices.yaml
"""
DEVICES = "devices:\n  - {id: s1, kind: smoke}\n"


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], gateway: str = GATEWAY, devices: str | bytes = DEVICES,
          env: dict[str, str] | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:  # fmt: skip
    (tmp_path / "devices.yaml").write_bytes(devices if isinstance(devices, bytes) else devices.encode())
    (tmp_path / "gateway.yaml").write_text(gateway, encoding="utf-8")
    if env:
        assert monkeypatch is not None
        for name, value in env.items():
            monkeypatch.setenv(name, value)
    code = main(["check-config", "--config", str(tmp_path / "gateway.yaml")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_an_unknown_time_zone_names_the_key_and_an_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = check(tmp_path, capsys, GATEWAY.replace("Asia/Shanghai", "Beijing"))
    assert f"{tmp_path / 'gateway.yaml'}: campus.timezone: unknown time zone 'Beijing'" in err
    assert "IANA name such as 'Asia/Shanghai'" in err


def test_a_wrong_enum_lists_the_allowed_values_and_nothing_of_pydantic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = check(tmp_path, capsys, devices=DEVICES.replace("smoke", "doorbell"))
    assert f"{tmp_path / 'devices.yaml'}: devices.0.kind: Input should be 'smoke', 'temperature'" in err
    assert "(got 'doorbell')" in err
    assert "lax-or-strict" not in err and "path_validator" not in err
    assert len(err.splitlines()) == 2  # the heading and one line for the one problem


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "inventory: school-devices.yaml",
            "gateway.yaml: inventory: {dir}/school-devices.yaml: file not found",
        ),
        ("firelane_worker: lanes.yaml", "gateway.yaml: firelane_worker: {dir}/lanes.yaml: cannot read YAML"),
        ("modbus: {models_dir: our-models}", "gateway.yaml: {dir}/our-models: models_dir is not a directory"),
    ],
    ids=["inventory", "firelane_worker", "modbus.models_dir"],
)
def test_a_missing_referenced_file_names_the_key_that_refers_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, expected: str
) -> None:
    err = check(tmp_path, capsys, "campus: {id: c}\n" + section + "\n")
    assert expected.format(dir=tmp_path) in err


def test_an_error_from_an_environment_override_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = check(tmp_path, capsys, env={"CAMPUS_GATEWAY__BROKER__PORT": "eighteen"}, monkeypatch=monkeypatch)
    assert (
        "environment variable CAMPUS_GATEWAY__BROKER__PORT: broker.port: Input should be a valid integer"
        in err
    )
    assert "gateway.yaml" not in err


def test_an_override_of_a_value_that_is_not_a_section_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = check(tmp_path, capsys, env={"CAMPUS_GATEWAY__CAMPUS__ID__X": "1"}, monkeypatch=monkeypatch)
    assert (
        "environment variable CAMPUS_GATEWAY__CAMPUS__ID__X: campus.id.x does not name a config section"
        in err
    )


def test_a_relative_path_from_an_override_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "gateway.yaml").write_text("campus: {id: c}\nstorage: {sqlite_path: data/g.db}\n")
    monkeypatch.chdir(tmp_path)
    from_file = load_config(tmp_path / "etc" / "gateway.yaml", environ={})
    assert from_file.storage.sqlite_path == tmp_path / "etc" / "data" / "g.db"
    from_env = load_config(
        tmp_path / "etc" / "gateway.yaml", environ={"CAMPUS_GATEWAY__STORAGE__SQLITE_PATH": "var/g.db"}
    )
    assert from_env.storage.sqlite_path == tmp_path / "var" / "g.db"


def test_a_file_saved_in_another_encoding_is_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = check(tmp_path, capsys, devices="devices: [] # 烟感\n".encode("gb18030"))
    assert "devices.yaml: not UTF-8 text" in err


def test_the_command_line_exits_2_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("campus: {id: c, timezone: Mars/Olympus}\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", "--config", str(tmp_path / "gateway.yaml")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "campus.timezone: unknown time zone 'Mars/Olympus'" in result.stderr
    assert "Traceback" not in result.stderr


SINK = "sinks: {influx: {url: 'http://127.0.0.1:8428', bucket: b, spool_max_bytes: 600000000}}\n"


def test_a_spool_larger_than_half_the_disk_budget_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = check(tmp_path, capsys, GATEWAY + "storage: {disk_budget_mb: 1000}\n" + SINK)
    assert "sinks.influx.spool_max_bytes (600 MB) must be at most half of storage.disk_budget_mb" in err


def test_the_store_gets_the_disk_budget_less_the_spool(tmp_path: Path) -> None:
    (tmp_path / "devices.yaml").write_text(DEVICES, encoding="utf-8")
    (tmp_path / "gateway.yaml").write_text(GATEWAY + "storage: {disk_budget_mb: 2000}\n" + SINK)
    assert load_config(tmp_path / "gateway.yaml").store_disk_budget_mb == pytest.approx(1400)
    (tmp_path / "gateway.yaml").write_text(GATEWAY + "storage: {disk_budget_mb: 2000}\n")
    assert load_config(tmp_path / "gateway.yaml").store_disk_budget_mb == pytest.approx(2000)
