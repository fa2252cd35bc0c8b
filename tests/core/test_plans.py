"""Direct, table-driven tests of the pure plan functions (inputs in, effects out) and the graph helpers.

Each case names the facts the shell gathered and the exact batch a plan returns for them: no catalog, no
I/O. The shell's tests (tests/execution, tests/dataset) check that these batches are what gets applied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Delete, Insert, SetStatus, StatusWrite, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.execution_rows import caught_up, parse_duration, parse_time, record_from_row
from deriva_ml.core.graph import nesting_cycle, reversed_links, walk_levels
from deriva_ml.core.plans import (
    MLLayout,
    plan_abort,
    plan_add_nested,
    plan_add_term,
    plan_insert_execution,
    plan_replace_workflow_types,
    plan_workflow_description,
    would_create_cycle,
)
from deriva_ml.core.records import ExecutionRecord, transition
from deriva_ml.core.rid import RID
from deriva_ml.core.status import Status

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET = "https://user:hunter2@example.org/x"


def _rec(rid: str = "1-A", status: Status = Status.created, workflow: str | None = "1-W") -> ExecutionRecord:
    r = ExecutionRecord(rid=RID(rid), workflow_rid=RID(workflow) if workflow else None, description="d")
    if status is not Status.created:
        r = transition(r, Status.initializing, "init", T0)
        if status is not Status.initializing:
            r = transition(r, Status.pending, "ready", T0)
            if status is not Status.pending:
                r = transition(r, status, "go", T0)
    return r


# ------------------------------------------------------------------------------- execution insert


@pytest.mark.parametrize(
    ("description", "status", "detail", "row_description"),
    [
        ("plain", Status.initializing, "Downloading", "plain"),
        ("", Status.initializing, "", ""),
        (f"see {SECRET}", Status.initializing, "x", "see https://***@example.org/x"),
    ],
)
def test_plan_insert_execution(description: str, status: Status, detail: str, row_description: str) -> None:
    base = ExecutionRecord(rid=RID("0000"), workflow_rid=RID("1-W"), description=description)
    record = transition(base, status, detail, T0)
    batch = plan_insert_execution(record)
    assert batch == Batch(
        [
            Insert(
                ML_SCHEMA,
                "Execution",
                [
                    {
                        "Workflow": "1-W",
                        "Description": batch.effects[0].rows[0]["Description"],
                        "Status": status.value,
                        "Status_Detail": detail,
                    }
                ],
                labels=["execution"],
            )
        ]
    )
    written = batch.effects[0].rows[0]["Description"]
    assert "hunter2" not in written
    if "://" not in description:
        assert written == row_description


# ----------------------------------------------------------------------------------------- nesting


@pytest.mark.parametrize(
    ("parent", "child", "sequence", "ancestors", "error"),
    [
        ("1-P", "1-C", 0, [], None),
        ("1-P", "1-C", None, [("1-G", "1-P")], None),
        ("1-P", "1-P", 0, [], "itself"),
        ("1-P", "1-C", "1", [], "integer"),
        ("1-P", "1-C", True, [], "integer"),
        ("1-P", "1-G", 1, [("1-G", "1-P")], "cycle"),  # the grandparent under its grandchild
        ("1-P", "1-R", 1, [("1-R", "1-G"), ("1-G", "1-P")], "cycle"),  # two levels up
    ],
)
def test_plan_add_nested(parent, child, sequence, ancestors, error) -> None:
    if error:
        with pytest.raises(ValidationError, match=error):
            plan_add_nested(RID(parent), RID(child), sequence, ancestors)
        return
    assert plan_add_nested(RID(parent), RID(child), sequence, ancestors) == Batch(
        [
            Insert(
                ML_SCHEMA,
                "Execution_Execution",
                [{"Execution": parent, "Nested_Execution": child, "Sequence": sequence}],
                on_conflict_skip=True,
            )
        ]
    )


@pytest.mark.parametrize(
    ("parent", "children", "edges", "found"),
    [
        ("A", ["B"], [], None),
        ("A", ["A"], [], "A"),
        ("A", ["B"], [("B", "A")], "B"),
        ("A", ["C", "B"], [("B", "X"), ("X", "A")], "B"),
        ("A", ["C"], [("B", "X"), ("X", "A")], None),
        ("A", ["B"], [("B", "C"), ("C", "B")], None),  # a cycle elsewhere does not loop forever
    ],
)
def test_the_one_nesting_cycle_check(parent, children, edges, found) -> None:
    assert nesting_cycle(parent, children, edges) == found
    assert would_create_cycle(parent, children[0], edges) == (nesting_cycle(parent, children[:1], edges) is not None)


# ---------------------------------------------------------------------------------------- workflows


@pytest.mark.parametrize(
    ("description", "clean"),
    [("new text", "new text"), (None, None), ("", "")],
)
def test_plan_workflow_description(description, clean) -> None:
    assert plan_workflow_description(RID("1-W"), description) == Batch(
        [Update(ML_SCHEMA, "Workflow", [{"RID": "1-W", "Description": clean}])]
    )


def test_plan_workflow_description_redacts() -> None:
    row = plan_workflow_description(RID("1-W"), f"trained from {SECRET}").effects[0].rows[0]
    assert "hunter2" not in row["Description"] and row["RID"] == "1-W"


@pytest.mark.parametrize(
    ("old", "new", "layout", "expected"),
    [
        (["A"], ["A"], MLLayout(), Batch(())),
        (
            ["A"],
            ["B"],
            MLLayout(),
            Batch(
                [
                    Delete(ML_SCHEMA, "Workflow_Workflow_Type", "Workflow_Type", ["A"], where={"Workflow": "1-W"}),
                    Insert(
                        ML_SCHEMA,
                        "Workflow_Workflow_Type",
                        [{"Workflow": "1-W", "Workflow_Type": "B"}],
                        on_conflict_skip=True,
                    ),
                ]
            ),
        ),
        (
            ["A"],
            ["B"],
            MLLayout(workflow_types="column"),
            Batch([Update(ML_SCHEMA, "Workflow", [{"RID": "1-W", "Workflow_Type": "B"}])]),
        ),
    ],
)
def test_plan_replace_workflow_types(old, new, layout, expected) -> None:
    assert plan_replace_workflow_types(RID("1-W"), old, new, layout) == expected


# -------------------------------------------------------------------------------------------- terms


@pytest.mark.parametrize(
    ("name", "description", "synonyms"),
    [("Train", "", ()), ("Test", "held out", ("holdout", "eval"))],
)
def test_plan_add_term(name, description, synonyms) -> None:
    assert plan_add_term("dom", "Split", name, description, synonyms) == Batch(
        [
            Insert(
                "dom",
                "Split",
                [{"Name": name, "Description": description, "Synonyms": list(synonyms)}],
                on_conflict_skip=True,
            )
        ]
    )


# ------------------------------------------------------------------------------------------- abort


def test_plan_abort_is_one_compare_and_set_that_skips_lost_rows() -> None:
    a = transition(_rec("1-A", Status.running), Status.aborted, "Aborted: gone", T0)
    b = transition(_rec("1-B", Status.pending), Status.aborted, "Aborted: old", T0)
    assert plan_abort([a, b]) == Batch(
        [
            SetStatus(
                [
                    StatusWrite("1-A", Status.running, Status.aborted, "Aborted: gone", a.duration_text),
                    StatusWrite("1-B", Status.pending, Status.aborted, "Aborted: old", b.duration_text),
                ],
                skip_lost=True,
            )
        ]
    )
    assert plan_abort([]) == Batch(())


def test_plan_abort_refuses_another_status() -> None:
    with pytest.raises(ValidationError, match="not Aborted"):
        plan_abort([_rec("1-A", Status.running)])


# ------------------------------------------------------------------------------------------- walks


TREE = {"R": ["A", "B"], "A": ["C"], "B": ["C", "D"], "C": ["R"]}  # C -> R closes a loop


def _fetch(calls: list[list[str]]):
    def fetch(frontier: list[str]) -> list[tuple[str, str]]:
        calls.append(list(frontier))
        return [(n, c) for n in frontier for c in TREE.get(n, [])]

    return fetch


@pytest.mark.parametrize(
    ("start", "recurse", "reached", "levels"),
    [
        (["R"], True, ("A", "B", "C", "D"), [["R"], ["A", "B"], ["C", "D"]]),
        (["R"], False, ("A", "B"), [["R"]]),
        (["D"], True, (), [["D"]]),
        (["A", "A"], True, ("C", "R", "B", "D"), [["A"], ["C"], ["R"], ["B"], ["D"]]),
    ],
)
def test_walk_levels_one_fetch_per_level_each_node_once(start, recurse, reached, levels) -> None:
    calls: list[list[str]] = []
    walk = walk_levels(start, _fetch(calls), recurse=recurse)
    assert walk.reached == reached
    assert calls == levels
    assert [a for a, _ in walk.links] == [n for level in levels for n in level for _ in TREE.get(n, [])]


def test_reversed_links() -> None:
    assert reversed_links([("c", "p"), ("p", "g")]) == [("p", "c"), ("g", "p")]


# -------------------------------------------------------------------------------------- row mapping


@pytest.mark.parametrize(
    ("row", "status", "stopped"),
    [
        ({"RID": "1-A"}, Status.created, False),
        ({"RID": "1-A", "Status": "Running", "RCT": "2026-01-01T00:00:00"}, Status.running, False),
        (
            {"RID": "1-A", "Status": "Completed", "RCT": "2026-01-01T00:00:00+00:00", "Duration": "0:00:02.5"},
            Status.completed,
            True,
        ),
        (
            {"RID": "1-A", "Status": "Completed", "RCT": "2026-01-01T00:00:00", "Duration": "0.0H 0.0min 1.5sec"},
            Status.completed,
            True,
        ),
    ],
)
def test_record_from_row(row, status, stopped) -> None:
    rec = record_from_row(row)
    assert rec.status is status and rec.rid == "1-A"
    assert (rec.stop_time is not None) == stopped
    if stopped:
        assert rec.stop_time - rec.start_time == timedelta(seconds=parse_duration(row["Duration"]))


def test_record_from_row_names_a_bad_status() -> None:
    with pytest.raises(ValidationError, match=r"1-A.*Bogus.*valid"):
        record_from_row({"RID": "1-A", "Status": "Bogus"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05+00:00", T0),
        ("2026-01-02T03:04:05", T0),
        (T0.replace(tzinfo=None), T0),
        ("not a time", None),
    ],
)
def test_parse_time(value, expected) -> None:
    assert parse_time(value) == expected


def test_caught_up_observes_the_catalog_status() -> None:
    local = _rec("1-A", Status.running)
    row = record_from_row({"RID": "1-A", "Status": "Aborted", "RMT": "2026-01-02T04:00:00+00:00"})
    got = caught_up(local, row)
    assert got.status is Status.aborted
    assert got.history[-1].from_status is None and got.history[-1].to_status is Status.aborted
    assert got.history[:-1] == local.history
