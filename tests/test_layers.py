"""The layer contracts of pyproject.toml (checked by ``lint-imports`` in ``.ci/run``) cover every module.

A layer cannot contain another, so ``deriva_ml.execution`` is listed module by module (its runners sit in the
top layer); a new module there must be placed in a layer, else import-linter would not check it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import deriva_ml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(deriva_ml.__file__).parent


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _layer_modules() -> set[str]:
    return {m.strip() for layer in _contracts()["layers"]["layers"] for m in layer.split(":")}


def test_every_execution_module_is_in_a_layer():
    named = _layer_modules()
    modules = {
        f"deriva_ml.execution.{p.stem if p.is_file() else p.name}"
        for p in (PACKAGE / "execution").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert modules, "no module found under deriva_ml/execution"
    assert modules <= named, f"not in any layer of [tool.importlinter]: {sorted(modules - named)}"


def test_every_subpackage_is_in_a_layer_or_known_to_sit_outside():
    outside = {
        "deriva_ml.asset",  # spec re-exports of core records, imported by nothing below them
        "deriva_ml.replay",  # layered module by module: run with the runners, link/plan/_git with the executions
    }
    named = _layer_modules() | outside
    packages = {f"deriva_ml.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"deriva_ml.execution"} <= named, sorted(packages - named)


def test_core_contract_forbids_every_io_library():
    forbidden = set(_contracts()["core-pure"]["forbidden_modules"])
    assert {"deriva", "dulwich", "diskcache", "sqlite3", "requests", "hydra_zen", "bdbag"} <= forbidden


def test_import_deriva_ml_loads_no_heavy_library():
    # import-linter sees imports anywhere in a module, not whether they run at import time: this does
    heavy = ("pandas", "rocrate", "prov", "graphviz", "deriva", "bdbag", "hydra", "hydra_zen", "dulwich", "diskcache")
    heavy += ("structlog", "rich", "cattrs", "requests")
    code = f"import sys, deriva_ml\nprint([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
