"""``diff_records`` on hand-built canonical documents (table-driven): each row changes one fact of run B
and names the section and path the diff must report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from deriva_ml.core.errors import ValidationError
from deriva_ml.provenance.canonical import AssetFact, ExecutionFacts, canonical_record
from deriva_ml.provenance.diff import Change, diff_records
from provenance.test_canonical import base_facts


def _assets(f: ExecutionFacts, i: int, **kw: Any) -> ExecutionFacts:
    assets = list(f.assets)
    assets[i] = attrs.evolve(assets[i], **kw)
    return attrs.evolve(f, assets=tuple(assets))


CASES: list[tuple[str, Callable[[ExecutionFacts], ExecutionFacts], list[tuple[str, str, str]]]] = [
    ("same run, other catalog", lambda f: attrs.evolve(f, rid="2-E", execution={**f.execution, "RID": "2-E"}), []),
    (
        "code",
        lambda f: attrs.evolve(f, workflow={**(f.workflow or {}), "Checksum": "c2"}),
        [("code", "workflow.checksum", "changed")],
    ),
    (
        "input dataset version",
        lambda f: attrs.evolve(f, datasets=(attrs.evolve(f.datasets[0], version="0.3.0"), f.datasets[1])),
        [("inputs", "inputs.datasets[training set].version", "changed")],
    ),
    (
        "input asset bytes",
        lambda f: _assets(f, 0, md5="other"),
        [("inputs", "inputs.assets[Model/weights.pt].md5", "changed")],
    ),
    (
        "config choice and argument",
        lambda f: attrs.evolve(f, configuration={"argv": ["p", "seed=2"], "config_choices": {"model": "large"}}),
        [
            ("configuration", "configuration.arguments", "changed"),
            ("configuration", "configuration.config_choices.model", "changed"),
        ],
    ),
    ("lock file", lambda f: _assets(f, 4, md5="lock2"), [("environment", "environment.lock_md5", "changed")]),
    (
        "one output differs, one new",
        lambda f: attrs.evolve(
            _assets(f, 1, md5="m1x"),
            assets=(*_assets(f, 1, md5="m1x").assets, AssetFact("Model", "1-N", "new.pt", "n", 1, "/u", "Output")),
        ),
        [
            ("outputs", "outputs.assets[Model/model.pt].md5", "changed"),
            ("outputs", "outputs.assets[Model/new.pt]", "only_b"),
        ],
    ),
    (
        "an output missing",
        lambda f: attrs.evolve(f, assets=tuple(a for a in f.assets if a.filename != "mask.png")),
        [("outputs", "outputs.assets[Image/mask.png]", "only_a")],
    ),
    (
        "metrics",
        lambda f: attrs.evolve(f, metrics={"accuracy": 0.5}),
        [("outputs", "outputs.metrics.accuracy", "changed")],
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_diff_names_what_changed(
    name: str, change: Callable[[ExecutionFacts], ExecutionFacts], expected: list[tuple[str, str, str]]
) -> None:
    a, b = canonical_record(base_facts()), canonical_record(change(base_facts()))
    d = diff_records(a, b)
    assert [(c.section, c.path, c.kind) for c in d.changes] == expected, name
    assert d.same is (not expected) and (d.hash_a == d.hash_b) is d.same
    assert d.to_json()["sections"] == list(dict.fromkeys(s for s, _, _ in expected))
    text = "\n".join(d.render())
    assert ("same content" in text) is d.same
    for _, path, _ in expected:
        assert path in text


def test_changed_values_are_carried() -> None:
    a = canonical_record(base_facts())
    b = canonical_record(_assets(base_facts(), 1, md5="m1x"))
    (c,) = diff_records(a, b).changes
    assert c == Change("outputs", "outputs.assets[Model/model.pt].md5", "changed", "m1", "m1x")
    assert diff_records(a, b).a == "1-E1"


def test_children_compared_by_sequence() -> None:
    child = attrs.evolve(base_facts(), rid="1-C")
    pa = canonical_record(attrs.evolve(base_facts(), children=((0, child),), recursed=True))
    pb = canonical_record(attrs.evolve(base_facts(), children=((0, _assets(child, 1, md5="z")),), recursed=True))
    (c,) = diff_records(pa, pb).changes
    assert (c.section, c.path) == ("children", "children[0].content.outputs.assets[Model/model.pt].md5")
    flat = canonical_record(base_facts())
    only = diff_records(pa, flat).changes
    assert [(x.section, x.kind) for x in only] == [("children", "only_a")]


@pytest.mark.parametrize("bad", [{}, {"content": {}}, {"record": {}}])
def test_refuses_what_is_not_a_canonical_document(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="not a canonical provenance document"):
        diff_records(bad, canonical_record(base_facts()))
