"""``benchmarks/mutation_check.py`` keeps up with the code: every mutation it lists applies to today's source
exactly once (a mutation whose text moved away would be reported as a survivor, and checks nothing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "benchmarks" / "mutation_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mutation_check", module)
    spec.loader.exec_module(module)
    return module


MC = _script()


@pytest.mark.parametrize("mutation", MC.MUTATIONS, ids=[m.name for m in MC.MUTATIONS])
def test_every_mutation_applies_to_the_current_code_exactly_once(mutation) -> None:
    assert MC.applies(mutation) == 1, f"{mutation.name}: its text is not (once) in {mutation.path}"
    for test in mutation.tests:
        assert (ROOT / test.split("::")[0]).exists(), f"{mutation.name}: no {test}"
    assert mutation.old != mutation.new
