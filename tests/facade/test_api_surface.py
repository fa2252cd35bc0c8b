"""``DerivaML``'s public surface is what it was before its calls moved into ``deriva_ml._facade``.

``derivaml_api.json`` was generated from main before the split (every public name, its kind, signature and
docstring, plus the class's own module, name and docstring). When the API changes on purpose, regenerate it:
``uv run python tests/facade/test_api_surface.py > tests/facade/derivaml_api.json``.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

from deriva_ml import DerivaML

EXPECTED = Path(__file__).with_name("derivaml_api.json")
DUNDERS = ("__init__", "__enter__", "__exit__", "__repr__")


def surface(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name in sorted(dir(cls)):
        if name.startswith("_") and name not in DUNDERS:
            continue
        obj = inspect.getattr_static(cls, name)
        if isinstance(obj, property):
            assert obj.fget is not None
            entry = {"kind": "property", "signature": str(inspect.signature(obj.fget)), "doc": inspect.getdoc(obj)}
            entry["setter"] = obj.fset is not None
        elif isinstance(obj, staticmethod | classmethod):
            func = obj.__func__
            entry = {"kind": type(obj).__name__, "signature": str(inspect.signature(func)), "doc": inspect.getdoc(func)}
        elif inspect.isfunction(obj):
            entry = {"kind": "method", "signature": str(inspect.signature(obj)), "doc": inspect.getdoc(obj)}
        else:
            entry = {"kind": type(obj).__name__, "signature": None, "doc": None}
        members[name] = entry
    return {
        "class": {"module": cls.__module__, "qualname": cls.__qualname__, "doc": inspect.getdoc(cls)},
        "members": members,
    }


def test_public_members_signatures_and_docstrings_are_unchanged() -> None:
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    actual = surface(DerivaML)
    assert actual["class"] == expected["class"]
    assert sorted(actual["members"]) == sorted(expected["members"]), "public names added or removed"
    changed = {n: (expected["members"][n], m) for n, m in actual["members"].items() if m != expected["members"][n]}
    assert not changed, changed


def test_every_public_call_still_resolves_on_the_class() -> None:
    # the topic classes are bases of DerivaML: each public call is found on it (inherited or its own)
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))["members"]
    for name in expected:
        assert callable(getattr(DerivaML, name)) or isinstance(inspect.getattr_static(DerivaML, name), property)


if __name__ == "__main__":
    json.dump(surface(DerivaML), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
