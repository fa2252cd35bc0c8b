"""``effect_to_json``: each kind of effect as the exact JSON (keys in order) the journal stores, and back."""

from __future__ import annotations

import json

import pytest

from deriva_ml.core.codec import effect_from_json, effect_to_json
from deriva_ml.core.effects import Delete, Insert, SetStatus, StatusWrite, Update
from deriva_ml.core.errors import ConfigurationError
from deriva_ml.core.status import Status

CASES = [
    (
        Insert("s", "T", [{"A": 1}], labels=("x",), on_conflict_skip=True),
        {"kind": "insert", "schema": "s", "table": "T", "rows": [{"A": 1}], "labels": ["x"], "on_conflict_skip": True},
    ),
    (
        Update("s", "T", [{"RID": "1-A", "B": "b"}], key=("RID",)),
        {"kind": "update", "schema": "s", "table": "T", "rows": [{"RID": "1-A", "B": "b"}], "key": ["RID"]},
    ),
    (
        Delete("s", "T", "RID", ("1-A", "1-B"), {"C": 2}),
        {"kind": "delete", "schema": "s", "table": "T", "column": "RID", "values": ["1-A", "1-B"], "where": {"C": 2}},
    ),
    (
        SetStatus([StatusWrite("1-E", Status.pending, Status.running, "go", None)], skip_lost=True),
        {
            "kind": "set_status",
            "schema": "deriva-ml",
            "table": "Execution",
            "writes": [{"rid": "1-E", "expected": "Pending", "status": "Running", "detail": "go", "duration": None}],
            "skip_lost": True,
        },
    ),
]


@pytest.mark.parametrize(("effect", "expected"), CASES, ids=[e["kind"] for _, e in CASES])
def test_effect_json_is_exact_and_round_trips(effect, expected) -> None:
    data = effect_to_json(effect)
    assert json.dumps(data) == json.dumps(expected)  # same keys, same order
    assert effect_from_json(json.loads(json.dumps(data))) == effect


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"kind": "insert", "schema": "s", "table": "T", "rows": [{"A": 1}]}, Insert("s", "T", [{"A": 1}])),
        (
            {"kind": "update", "schema": "s", "table": "T", "rows": [{"RID": "1-A", "B": 2}]},
            Update("s", "T", [{"RID": "1-A", "B": 2}]),
        ),
    ],
    ids=["insert", "update"],
)
def test_optional_fields_take_their_defaults(data, expected) -> None:
    effect = effect_from_json(data)
    assert effect == expected
    assert effect.key == ("RID",) if isinstance(effect, Update) else effect.labels == () and not effect.on_conflict_skip


def test_a_missing_field_names_it() -> None:
    with pytest.raises(ConfigurationError, match="lacks field 'rows'"):
        effect_from_json({"kind": "update", "schema": "s", "table": "T"})
