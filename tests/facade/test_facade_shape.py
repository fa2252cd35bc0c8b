"""The facade is split by topic: ``_ml.py`` builds the handle, ``deriva_ml._facade`` holds the calls, each small."""

from __future__ import annotations

import ast
from pathlib import Path

import deriva_ml
from deriva_ml import DerivaML
from deriva_ml._facade._base import FacadeBase

PKG = Path(deriva_ml.__file__).resolve().parent
FACADE = sorted((PKG / "_facade").glob("*.py"))


def test_the_facade_modules_stay_small() -> None:
    for path in [PKG / "_ml.py", *FACADE]:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 480, f"{path.name}: {lines} lines"


def test_every_topic_class_is_a_base_of_derivaml() -> None:
    topics = []
    for path in FACADE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        topics += [n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Facade")]
    assert len(topics) == 6, topics
    bases = {b.__name__ for b in DerivaML.__mro__}
    assert set(topics) <= bases, set(topics) - bases
    assert issubclass(DerivaML, FacadeBase)


def test_no_topic_class_defines_a_call_another_defines() -> None:
    # one place per call: a name defined twice would be silently shadowed by the MRO
    seen: dict[str, str] = {}
    for cls in DerivaML.__mro__[1:]:
        if not issubclass(cls, FacadeBase) or cls is FacadeBase:
            continue
        for name in vars(cls):
            if not name.startswith("__"):
                assert name not in seen, f"{name} in {cls.__name__} and {seen[name]}"
                seen[name] = cls.__name__
    own = {n for n in vars(DerivaML) if not n.startswith("__")}
    assert not own & set(seen), own & set(seen)


def test_each_topic_class_uses_only_its_own_methods_and_the_declared_state() -> None:
    declared = {"_ports", "_schema", "_workflows", "_services", "__dict__"}  # FacadeBase (what DerivaML sets)
    for path in FACADE:
        for cls in (n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)):
            own = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
            used = {
                n.attr
                for n in ast.walk(cls)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
            }
            assert used <= own | declared, f"{path.name} {cls.name} reaches {sorted(used - own - declared)}"
