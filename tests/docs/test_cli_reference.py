"""The CLI reference (docs/cli.md) documents every subcommand and every option the parser has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from deriva_ml.cli import _parser

CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("deriva-ml has no subcommands")


SUBCOMMANDS = _subcommands()


def _section(name: str) -> str:
    text = CLI_DOC.read_text(encoding="utf-8")
    m = re.search(rf"^### `deriva-ml {re.escape(name)}\b.*?(?=^### |^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert m, f"docs/cli.md has no section '### `deriva-ml {name} ...`'"
    return m.group(0)


def _common_options() -> str:
    text = CLI_DOC.read_text(encoding="utf-8")
    m = re.search(r"^Common options:.*?(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert m, "docs/cli.md has no 'Common options:' table"
    return m.group(0)


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_and_option_is_documented(name: str) -> None:
    section, common = _section(name), _common_options()
    for action in SUBCOMMANDS[name]._actions:
        for opt in action.option_strings:
            if opt in ("-h", "--help") or not opt.startswith("--"):
                continue
            word = re.compile(rf"(?<![\w-]){re.escape(opt)}(?![\w-])")
            assert word.search(section) or word.search(common), (
                f"docs/cli.md, section of `deriva-ml {name}`, does not mention {opt} (nor does 'Common options')"
            )
