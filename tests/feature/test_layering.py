"""The feature modules take Ports + SchemaService (or plain values), never the facade; the selectors are core."""

from __future__ import annotations

import ast
from pathlib import Path

import deriva_ml

PKG = Path(deriva_ml.__file__).resolve().parent
MODULES = [
    *sorted((PKG / "feature").glob("*.py")),
    PKG / "execution" / "_feature_manifest.py",
    PKG / "core" / "selectors.py",
]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_no_feature_module_imports_the_facade() -> None:
    for path in MODULES:
        assert "deriva_ml._ml" not in _imports(path), path


def test_selectors_import_only_core_and_the_standard_library() -> None:
    mods = _imports(PKG / "core" / "selectors.py")
    ours = {m for m in mods if m.startswith("deriva_ml")}
    assert all(m.startswith("deriva_ml.core.") for m in ours), ours
    assert not mods & {"sqlite3", "requests", "os", "pathlib", "datetime", "time"}, mods
