"""What differs between two executions, from their canonical records (pure).

:func:`diff_records` compares the ``content`` parts of two canonical documents section by section —
``code`` (the workflow), ``inputs``, ``configuration``, ``environment``, ``outputs`` and, for records read
with ``recurse``, ``children`` — and returns a frozen :class:`Diff`: one :class:`Change` per differing
value, with a path that names it (``outputs.assets[Model/model.pt].md5``). Catalog-specific facts (RIDs,
URLs, snapshots, status, times) are in the ``record`` part and never differ here: two runs recorded in two
catalogs are compared by what they were.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from deriva_ml.core.errors import ValidationError
from deriva_ml.core.fields import as_tuple

__all__ = ["SECTIONS", "Change", "Diff", "diff_records"]

#: The sections of a diff, in the order they are reported, and where each lives in the content part.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("code", "workflow"),
    ("inputs", "inputs"),
    ("configuration", "configuration"),
    ("environment", "environment"),
    ("outputs", "outputs"),
    ("children", "children"),
)

Kind = Literal["changed", "only_a", "only_b"]


@attrs.frozen
class Change:
    """One difference: ``kind`` is ``changed`` (both have the path, values differ), ``only_a`` or ``only_b``."""

    section: str
    path: str
    kind: Kind
    a: Any = None
    b: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "path": self.path, "kind": self.kind, "a": self.a, "b": self.b}


@attrs.frozen
class Diff:
    """The differences between executions ``a`` and ``b`` (empty ``changes``: same content, same hash)."""

    a: str
    b: str
    hash_a: str
    hash_b: str
    changes: tuple[Change, ...] = attrs.field(converter=as_tuple)

    @property
    def same(self) -> bool:
        return not self.changes

    def sections(self) -> list[str]:
        """The sections that differ, in report order."""
        found = {c.section for c in self.changes}
        return [name for name, _ in SECTIONS if name in found]

    def to_json(self) -> dict[str, Any]:
        return {
            **attrs.asdict(self, recurse=False, filter=lambda a, _v: a.name != "changes"),  # a, b, hash_a, hash_b
            "same": self.same,
            "sections": self.sections(),
            "changes": [c.to_json() for c in self.changes],
        }

    def render(self) -> list[str]:
        """Lines for a terminal."""
        if self.same:
            return [f"{self.a} and {self.b}: same content (hash {self.hash_a[:16]})"]
        out = [
            f"{self.a} (hash {self.hash_a[:16]}) vs {self.b} (hash {self.hash_b[:16]}): differ in {', '.join(self.sections())}"
        ]
        for name in self.sections():
            out.append(f"{name}:")
            for c in self.changes:
                if c.section != name:
                    continue
                if c.kind == "changed":
                    out.append(f"  ~ {c.path}: {_short(c.a)} -> {_short(c.b)}")
                elif c.kind == "only_a":
                    out.append(f"  - {c.path}: {_short(c.a)}")
                else:
                    out.append(f"  + {c.path}: {_short(c.b)}")
        return out


def _short(value: Any, limit: int = 80) -> str:
    from deriva_ml.provenance.canonical import canonical_json

    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: How rows of a list are matched between the two records (a row's key within its list).
def _asset_key(x: Mapping[str, Any]) -> str:
    return f"{x.get('table')}/{x.get('filename')}"


def _dataset_key(x: Mapping[str, Any]) -> str:
    return str(x.get("description"))


def _hydra_key(x: Mapping[str, Any]) -> str:
    return str(x.get("name"))


def _feature_key(x: Mapping[str, Any]) -> str:
    return str(x.get("table"))


def _child_key(x: Mapping[str, Any]) -> str:
    return str(x.get("sequence"))


_KEYS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "inputs.datasets": _dataset_key,
    "inputs.assets": _asset_key,
    "outputs.assets": _asset_key,
    "outputs.datasets": _dataset_key,
    "outputs.features": _feature_key,
    "configuration.hydra": _hydra_key,
    "children": _child_key,
}


#: A child's content is compared like a top-level one: ``children[0].content.outputs.assets`` keys like ``outputs.assets``.
_NESTED = re.compile(r"^(children\[[^\]]*\]\.content\.)+")


def _walk(section: str, path: str, a: Any, b: Any, out: list[Change]) -> None:
    if a == b:
        return
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in sorted(set(a) | set(b)):
            _walk_key(section, f"{path}.{k}" if path else str(k), a, b, k, out)
        return
    key = _KEYS.get(_NESTED.sub("", path))
    if key is not None and _rows(a) and _rows(b):
        _walk_rows(section, path, a, b, key, out)
        return
    out.append(Change(section, path, "changed", a=a, b=b))


def _walk_key(section: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any], key: Any, out: list[Change]) -> None:
    """Compare ``a[key]`` with ``b[key]`` (reported at ``path``): only in one of them, or walked."""
    if key not in b:
        out.append(Change(section, path, "only_a", a=a[key]))
    elif key not in a:
        out.append(Change(section, path, "only_b", b=b[key]))
    else:
        _walk(section, path, a[key], b[key], out)


def _rows(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, Mapping) for x in value)


def _walk_rows(
    section: str,
    path: str,
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    key: Callable[[Mapping[str, Any]], str],
    out: list[Change],
) -> None:
    ka = _group(a, key)
    kb = _group(b, key)
    for k in sorted(set(ka) | set(kb)):
        sub = f"{path}[{k}]"
        ra, rb = ka.get(k, []), kb.get(k, [])
        if ra == rb:
            continue
        if len(ra) == 1 and len(rb) == 1:
            _walk(section, sub, dict(ra[0]), dict(rb[0]), out)
        elif not rb:
            out.extend(Change(section, sub, "only_a", a=dict(r)) for r in ra)
        elif not ra:
            out.extend(Change(section, sub, "only_b", b=dict(r)) for r in rb)
        else:  # the same key several times (rare): compare as lists
            out.append(Change(section, sub, "changed", a=[dict(r) for r in ra], b=[dict(r) for r in rb]))


def _group(
    rows: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], str]
) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def _content(doc: Mapping[str, Any], which: str) -> Mapping[str, Any]:
    content = doc.get("content") if isinstance(doc, Mapping) else None
    if not isinstance(content, Mapping) or "canonical" not in content:
        raise ValidationError(
            f"diff {which}: not a canonical provenance document (expected 'content' with 'canonical'); "
            f"got keys {sorted(doc) if isinstance(doc, Mapping) else type(doc).__name__}"
        )
    return content


def diff_records(a: Mapping[str, Any], b: Mapping[str, Any]) -> Diff:
    """The differences between two canonical documents (from :func:`~deriva_ml.provenance.canonical_record`).

    A change of the canonical form (``content.canonical``) is reported first, in section ``format``.
    """
    from deriva_ml.provenance.canonical import provenance_hash

    ca, cb = _content(a, "a"), _content(b, "b")
    changes: list[Change] = []
    if ca.get("canonical") != cb.get("canonical"):
        changes.append(Change("format", "canonical", "changed", a=ca.get("canonical"), b=cb.get("canonical")))
    for section, key in SECTIONS:
        if key in ca or key in cb:
            _walk_key(section, key, ca, cb, key, changes)
    known = {"canonical", *(k for _, k in SECTIONS)}
    for extra in sorted((set(ca) | set(cb)) - known):  # a newer canonical form's sections
        _walk("other", extra, ca.get(extra), cb.get(extra), changes)
    record_a, record_b = a.get("record") or {}, b.get("record") or {}
    return Diff(
        a=str(record_a.get("rid", "a")),
        b=str(record_b.get("rid", "b")),
        hash_a=str(a.get("hash") or provenance_hash(ca)),
        hash_b=str(b.get("hash") or provenance_hash(cb)),
        changes=changes,
    )
