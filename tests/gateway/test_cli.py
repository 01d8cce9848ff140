"""The CLI is complete: --version, help on every option, every command runnable, reports found."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.demo import demo_config, write_demo_config
from gateway.firelane import add_firelane_commands
from gateway.safety import config_warnings
from storage.sqlite import SqliteStore
from tests.gateway.support import ROOT, cli


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*path, name))
    return found


def _firelane_parser() -> argparse.ArgumentParser:
    """The fire-lane commands as gateway.firelane parses them (the CLI hands their words on)."""
    parser = argparse.ArgumentParser(prog="campus-gateway")
    add_firelane_commands(parser.add_subparsers(dest="command", required=True))
    return parser


COMMANDS = _commands(build_parser()) + _commands(_firelane_parser())[1:]


@pytest.mark.parametrize(
    ("path", "parser"), COMMANDS, ids=[" ".join(p) or "campus-gateway" for p, _ in COMMANDS]
)
def test_every_option_has_help_and_every_command_runs_something(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        assert action.help, (
            f"campus-gateway {' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
        )
    has_subcommands = any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    assert has_subcommands or callable(parser.get_default("func")), path


def test_starting_the_cli_loads_neither_opencv_nor_numpy() -> None:
    """Every command starts through gateway.cli (a district poll too): only `firelane` needs them."""
    probe = "import sys, gateway.cli; gateway.cli.build_parser(); print(sorted({'cv2', 'numpy'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def test_the_firelane_commands_run_and_explain_themselves_through_the_cli() -> None:
    listed = cli("firelane", "--help")
    assert listed.returncode == 0 and all(name in listed.stdout for name in ("eval", "calibrate", "worker"))
    options = cli("firelane", "eval", "--help")
    assert options.returncode == 0 and "--video" in options.stdout and "--reference" in options.stdout
    mistyped = cli("firelane", "evaluate")
    assert mistyped.returncode == 2 and "campus-gateway firelane" in mistyped.stderr


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("campus-gateway ")


def test_report_finds_the_demo_database_through_the_config_it_prints(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    config = demo_config(data.resolve(), 1883, 8080, "token", 5, 7000)
    printed = write_demo_config(config, data)
    store = SqliteStore(config.storage.sqlite_path)
    store.open()
    store.close()
    # As the README shows it: from the folder the demo ran in, pointed at the config it printed.
    result = cli(
        "report",
        "monthly",
        "--month",
        "2026-10",
        "--config",
        "demo-data/gateway.yaml",
        "--out",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "report-2026-10.html").is_file()
    assert printed == data / "gateway.yaml"
    by_db = cli("report", "hazards", "--db", str(config.storage.sqlite_path), "--config",
                str(ROOT / "config" / "gateway.yaml"), "--out", str(tmp_path / "out2"))  # fmt: skip
    assert by_db.returncode == 0, by_db.stderr


def test_report_without_a_database_says_how_to_point_at_one(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("campus: {id: c}\n")
    result = cli("report", "hazards", "--config", str(tmp_path / "gateway.yaml"))
    assert result.returncode == 2
    assert "no gateway database here (storage.sqlite_path in" in result.stderr and "--db" in result.stderr


def test_the_shipped_example_is_warned_about_loudly(tmp_path: Path) -> None:
    result = cli("check-config", "--config", str(ROOT / "config" / "gateway.yaml"))
    assert result.returncode == 0, result.stderr
    assert "is the example token 'change-me-operator'" in result.stderr  # from the loader (issue 11)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING: ")]
    assert any("broker.password is the example password 'change-me'" in line for line in warnings)


def test_warnings_cover_an_open_api_and_a_broker_without_a_password(tmp_path: Path) -> None:
    config = demo_config(tmp_path, 1883, 8080, "a-fresh-token", 5, 7000)
    assert [w.split(":")[0] for w in config_warnings(config)] == ["broker"]
    config.api.host = "0.0.0.0"
    assert any(
        w.startswith("api.host 0.0.0.0 listens beyond this machine without TLS")
        for w in config_warnings(config)
    )
