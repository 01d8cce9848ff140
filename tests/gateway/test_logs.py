"""Log level and plain/JSON format from the config; a log file is rotated, so it stays bounded."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.logs import LoggingConfig, setup_logging


@pytest.fixture(autouse=True)
def _restore_root_level() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    setup_logging(LoggingConfig())
    logging.getLogger().setLevel(level)


def test_json_lines_at_the_configured_level(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(
        "campus: {id: c}\nlogging: {level: warning, format: json, file: logs/gateway.log}\n"
    )
    config = load_config(tmp_path / "gateway.yaml", environ={})
    assert config.logging.file == tmp_path / "logs" / "gateway.log"  # next to the config file
    setup_logging(config.logging)
    log = logging.getLogger("gateway.test")
    log.info("below the level")
    log.warning("烟感 %s offline", "s1")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("with a traceback")
    lines = [
        json.loads(line)
        for line in config.logging.file.read_text(encoding="utf-8").splitlines()
        if line.startswith("{")
    ]
    assert [(entry["level"], entry["message"]) for entry in lines] == [
        ("WARNING", "烟感 s1 offline"), ("ERROR", "with a traceback")
    ]  # fmt: skip
    assert lines[0]["logger"] == "gateway.test" and lines[0]["ts"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exc"]


def test_a_log_file_is_rotated_and_old_files_are_dropped(tmp_path: Path) -> None:
    setup_logging(LoggingConfig(file=tmp_path / "g.log", max_bytes=64 * 1024, backup_count=2))
    for n in range(3000):
        logging.getLogger("gateway.test").warning("line %d %s", n, "x" * 100)
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["g.log", "g.log.1", "g.log.2"]
    assert all(path.stat().st_size <= 64 * 1024 + 200 for path in tmp_path.iterdir())


def test_an_unknown_level_lists_the_allowed_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    (tmp_path / "gateway.yaml").write_text("campus: {id: c}\nlogging: {level: verbose}\n")
    assert main(["check-config", "--config", str(tmp_path / "gateway.yaml")]) == 2
    assert "logging.level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in capsys.readouterr().err
