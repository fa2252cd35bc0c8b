"""Record fields share typed converters and validators (no per-field wrapper functions), and every refusal
still names ``Class.field`` and the bad value."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime

import pytest

from deriva_ml.core import records
from deriva_ml.core.errors import InvalidRID, ValidationError
from deriva_ml.core.records import AssetSpec, DatasetSpec, ExecutionConfiguration, ExecutionRecord, Term, Workflow

WF = {"name": "w", "workflow_type": "Training"}

REFUSED = [
    (Workflow, {**WF, "name": 3}, ValidationError, "Workflow.name=3 must be a string"),
    (Workflow, {**WF, "workflow_type": 5}, ValidationError, "Workflow.workflow_type=5 must be a string or a list"),
    (
        Workflow,
        {**WF, "workflow_type": ["a", 1]},
        ValidationError,
        r"Workflow.workflow_type must contain strings; got 1",
    ),
    (Workflow, {**WF, "url": 1}, ValidationError, "Workflow.url=1 must be a string or None"),
    (Workflow, {**WF, "is_notebook": "maybe"}, ValidationError, "Workflow.is_notebook='maybe' must be true or false"),
    (Workflow, {**WF, "rid": "not a rid"}, InvalidRID, "Workflow.rid"),
    (DatasetSpec, {"rid": "x y"}, InvalidRID, "DatasetSpec.rid"),
    (DatasetSpec, {"rid": "1-A", "materialize": 2}, ValidationError, "DatasetSpec.materialize=2"),
    (DatasetSpec, {"rid": "1-A", "description": 2}, ValidationError, "DatasetSpec.description=2"),
    (AssetSpec, {"rid": "1-A", "cache": "maybe"}, ValidationError, "AssetSpec.cache='maybe'"),
    (ExecutionConfiguration, {"description": 4}, ValidationError, "ExecutionConfiguration.description=4"),
    (ExecutionConfiguration, {"argv": [1]}, ValidationError, "ExecutionConfiguration.argv must contain strings"),
    (ExecutionConfiguration, {"config_choices": [1]}, ValidationError, "ExecutionConfiguration.config_choices="),
    (ExecutionRecord, {"rid": 7}, InvalidRID, "ExecutionRecord.rid"),
    (ExecutionRecord, {"rid": "1-A", "workflow_rid": "?"}, InvalidRID, "ExecutionRecord.workflow_rid"),
    (ExecutionRecord, {"rid": "1-A", "status_detail": 1}, ValidationError, "ExecutionRecord.status_detail=1"),
    (
        ExecutionRecord,
        {"rid": "1-A", "start_time": "2020"},
        ValidationError,
        "ExecutionRecord.start_time='2020' must be a datetime",
    ),
    (
        ExecutionRecord,
        {"rid": "1-A", "stop_time": datetime(2020, 1, 1)},
        ValidationError,
        "ExecutionRecord.stop_time=.*timezone-aware",
    ),
    (Term, {"name": None, "synonyms": 3}, ValidationError, "Term.synonyms=3"),
    (Term, {"name": "t", "id": 3}, ValidationError, "Term.id=3 must be a string or None"),
    (Term, {"name": "t", "rid": "a b"}, InvalidRID, "Term.rid"),
]


@pytest.mark.parametrize(("cls", "kwargs", "error", "message"), REFUSED, ids=lambda v: getattr(v, "__name__", None))
def test_a_refused_field_is_named_with_its_value(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**kwargs)


ACCEPTED = [
    (Workflow, {**WF, "description": None, "is_notebook": "TRUE"}, "is_notebook", True),
    (Workflow, {**WF, "workflow_type": ("A", "B")}, "workflow_type", ("A", "B")),
    (Workflow, {**WF, "rid": ""}, "rid", None),
    (DatasetSpec, {"rid": "1-A", "description": None, "materialize": "false"}, "materialize", False),
    (Term, {"name": "t", "synonyms": None}, "synonyms", ()),
    (Term, {"name": "t", "synonyms": "s"}, "synonyms", ("s",)),
    (ExecutionRecord, {"rid": "1-A", "description": None}, "description", ""),
    (ExecutionRecord, {"rid": "1-A", "start_time": datetime(2020, 1, 1, tzinfo=UTC)}, "stop_time", None),
    (ExecutionConfiguration, {"argv": "one", "config_choices": {"a": 1}}, "config_choices", {"a": "1"}),
]


@pytest.mark.parametrize(("cls", "kwargs", "field", "value"), ACCEPTED, ids=lambda v: getattr(v, "__name__", None))
def test_accepted_spellings_are_normalized(cls, kwargs, field, value):
    assert getattr(cls(**kwargs), field) == value


def test_no_per_field_wrapper_functions_are_left():
    # a wrapper is a module function whose body is one `return f("Class.field")(value)`
    tree = ast.parse(inspect.getsource(records))
    wrappers = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and len(node.body) == 1
        and isinstance(node.body[0], ast.Return)
        and isinstance(node.body[0].value, ast.Call)
        and isinstance(node.body[0].value.func, ast.Call)
    ]
    assert wrappers == []
    factories = [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and any(isinstance(b, ast.FunctionDef) for b in n.body)
    ]
    assert factories == [], "converter factories (a closure per field) are what mypy could not read"
