"""Issue 17: the pure parts of metrics (validation, the log format, summaries, the summary-row plan, ranking,
the provenance form) and the append-only log on a real file."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from deriva_ml.core.effects import Insert, Update
from deriva_ml.core.errors import DerivaMLException, ValidationError
from deriva_ml.core.records import ExecutionRecord
from deriva_ml.core.status import Status
from deriva_ml.execution._metrics import (
    MAX_NAME_LENGTH,
    InvalidMetric,
    MetricLog,
    MetricSummary,
    MetricValue,
    check_name,
    check_step,
    check_value,
    encode_series,
    metrics_for_provenance,
    parse_series,
    plan_summary_rows,
    rank_executions,
    summarize,
    summary_from_row,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


class Clock:
    """A clock that advances one second per reading."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        now = self.t
        self.t += timedelta(seconds=1)
        return now


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_NAME_LENGTH + 1), f"at most {MAX_NAME_LENGTH}"),
        ("lo\nss", "control character"),
        ("a\x00b", "control character"),
        ("tab\there", "control character"),
        ("del\x7f", "control character"),
        (5, "is a int"),
        (None, "is a NoneType"),
        (b"loss", "is a bytes"),
    ],
)
def test_bad_names_are_refused_naming_the_value(name, needle):
    with pytest.raises(InvalidMetric) as err:
        check_name(name)
    assert needle in str(err.value)
    assert isinstance(err.value, ValidationError) and isinstance(err.value, ValueError)
    assert isinstance(err.value, DerivaMLException)


@pytest.mark.parametrize("name", ["loss", "val/accuracy", "F1 (macro)", "ü-score", "x" * MAX_NAME_LENGTH])
def test_good_names_pass_unchanged(name):
    assert check_name(name) == name


def test_a_secret_in_a_name_is_redacted():
    assert check_name("password=hunter2") == "password=<redacted>"


@pytest.mark.parametrize(
    "value", [True, False, None, "0.5", b"1", float("nan"), float("inf"), -math.inf, 10**400, object(), [1.0]]
)
def test_bad_values_are_refused_naming_the_metric_and_value(value):
    with pytest.raises(InvalidMetric) as err:
        check_value("loss", value)
    assert "'loss'" in str(err.value)


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (0.25, 0.25), (-3, -3.0), (Fraction(1, 4), 0.25)])
def test_ints_and_real_numbers_are_accepted_as_floats(value, expected):
    got = check_value("loss", value)
    assert got == expected and type(got) is float


@pytest.mark.parametrize("step", [-1, 1.5, True, "3", [1]])
def test_bad_steps_are_refused(step):
    with pytest.raises(InvalidMetric) as err:
        check_step("loss", step)
    assert repr(step) in str(err.value) or str(step) in str(err.value)


@pytest.mark.parametrize("step", [None, 0, 7, 10**12])
def test_good_steps(step):
    assert check_step("loss", step) == step


def test_log_appends_one_line_per_value_with_the_clock_time(tmp_path):
    path = tmp_path / "m" / "metrics.jsonl"
    log = MetricLog(path, Clock())
    log.log("loss", 0.5, step=0)
    log.log("loss", 1)  # an int, no step
    log.log_many({"loss": 0.25, "accuracy": 0.9}, step=2)  # one time for both
    lines = path.read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"name": "loss", "value": 0.5, "step": 0, "time_us": 1767323045123456},
        {"name": "loss", "value": 1.0, "step": None, "time_us": 1767323046123456},
        {"name": "loss", "value": 0.25, "step": 2, "time_us": 1767323047123456},
        {"name": "accuracy", "value": 0.9, "step": 2, "time_us": 1767323047123456},
    ]
    assert log.read() == (
        MetricValue("loss", 0.5, 0, T0),
        MetricValue("loss", 1.0, None, T0 + timedelta(seconds=1)),
        MetricValue("loss", 0.25, 2, T0 + timedelta(seconds=2)),
        MetricValue("accuracy", 0.9, 2, T0 + timedelta(seconds=2)),
    )
    log.close()


def test_an_invalid_value_writes_nothing_even_inside_log_many(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricLog(path, Clock())
    log.log("loss", 0.5)
    size = path.stat().st_size
    for call in (
        lambda: log.log("loss", float("nan")),
        lambda: log.log("", 1.0),
        lambda: log.log("loss", 1.0, step=-1),
        lambda: log.log_many({"loss": 1.0, "acc": "high"}),
        lambda: log.log_many({"loss": 1.0}, step=True),
        lambda: log.log_many([("loss", 1.0)]),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidMetric):
            call()
    assert path.stat().st_size == size


def test_the_secret_never_reaches_the_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    MetricLog(path, Clock()).log("token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", 1.0)
    assert "ghp_" not in path.read_text()


def test_a_torn_last_line_is_ignored_and_closed_before_the_next_value(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricLog(path, Clock())
    log.log("loss", 0.5, step=0)
    log.close()
    with open(path, "ab") as f:
        f.write(b'{"name":"loss","val')  # a kill in the middle of a write
    assert [m.value for m in parse_series(path.read_bytes())] == [0.5]
    again = MetricLog(path, Clock())  # a restored execution logs on
    again.log("loss", 0.25, step=1)
    assert [(m.value, m.step) for m in again.read()] == [(0.5, 0), (0.25, 1)]
    assert path.read_bytes().count(b"\n") == 3


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[1, 2]",
        b'{"name": "", "value": 1, "step": null, "time_us": 1}',
        b'{"name": "x", "value": true, "step": null, "time_us": 1}',
        b'{"name": "x", "value": NaN, "step": null, "time_us": 1}',
        b'{"name": "x", "value": 1, "step": -2, "time_us": 1}',
        b'{"name": "x", "value": 1, "step": null}',
        b'{"name": "x", "value": 1, "step": null, "time_us": 1.5}',
        b'{"name": "x", "value": 1, "step": null, "time_us": 99999999999999999999999}',
        b"\xff\xfe",
    ],
)
def test_lines_that_are_not_records_are_skipped(line):
    good = b'{"name":"x","value":2.0,"step":1,"time_us":1500000}\n'
    assert [m.value for m in parse_series(good + line + b"\n" + good)] == [2.0, 2.0]


def test_encode_and_parse_round_trip_exactly():
    series = tuple(
        MetricValue(n, v, s, T0 + timedelta(microseconds=k))
        for k, (n, v, s) in enumerate([("loss", 0.1, 0), ("loss", 1e-300, None), ("é", -2.5, 3)])
    )
    assert parse_series(encode_series(series)) == series


def test_summarize_keeps_first_logged_order_and_last_min_max_count():
    s = [
        MetricValue("loss", 3.0, 0, T0),
        MetricValue("acc", 0.5, 0, T0),
        MetricValue("loss", 1.0, 1, T0 + timedelta(1)),
        MetricValue("loss", 2.0, 2, T0 + timedelta(2)),
    ]
    assert summarize(s) == (
        MetricSummary("loss", 2.0, 2, T0 + timedelta(2), 1.0, 3.0, 3),
        MetricSummary("acc", 0.5, 0, T0, 0.5, 0.5, 1),
    )
    assert summarize(s)[0].best("min") == 1.0 and summarize(s)[0].best("max") == 3.0
    assert summarize([]) == ()


def test_plan_summary_rows_inserts_new_updates_changed_and_skips_equal():
    loss = MetricSummary("loss", 0.5, 2, T0, 0.5, 1.0, 3)
    acc = MetricSummary("acc", 0.9, 2, T0, 0.7, 0.9, 3)
    batch = plan_summary_rows("1-AAA", [loss, acc], [])
    assert batch is not None and len(batch.effects) == 1
    (ins,) = batch.effects
    assert isinstance(ins, Insert) and ins.on_conflict_skip and ins.table == "Execution_Metric"
    rows = [dict(r) for r in ins.rows]
    assert rows[0] == {
        "Execution": "1-AAA",
        "Name": "loss",
        "Last_Value": 0.5,
        "Last_Step": 2,
        "Last_Time": T0.isoformat(),
        "Min": 0.5,
        "Max": 1.0,
        "Count": 3,
    }
    existing = [{"RID": "R1", **rows[0]}, {"RID": "R2", **rows[1]}]
    assert plan_summary_rows("1-AAA", [loss, acc], existing) is None  # a retry writes nothing
    # a backend that returns the time in its own ISO form is still "equal"
    existing[0]["Last_Time"] = T0.isoformat().replace("+00:00", "Z")[:23] + "+00:00"
    assert plan_summary_rows("1-AAA", [loss, acc], existing) is None
    more = MetricSummary("loss", 0.4, 3, T0 + timedelta(1), 0.4, 1.0, 4)
    batch = plan_summary_rows("1-AAA", [more, acc], existing)
    assert batch is not None
    (upd,) = batch.effects
    assert isinstance(upd, Update) and [dict(r) for r in upd.rows] == [
        {
            "RID": "R1",
            "Last_Value": 0.4,
            "Last_Step": 3,
            "Last_Time": (T0 + timedelta(1)).isoformat(),
            "Min": 0.4,
            "Max": 1.0,
            "Count": 4,
        }
    ]


def test_summary_from_row_reads_backend_forms():
    s = summary_from_row(
        {
            "Name": "loss",
            "Last_Value": 1,
            "Last_Step": None,
            "Last_Time": "2026-01-02T03:04:05",
            "Min": 0,
            "Max": 2,
            "Count": 3,
        }
    )
    assert s == MetricSummary("loss", 1.0, None, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), 0.0, 2.0, 3)


def _rec(rid: str) -> ExecutionRecord:
    return ExecutionRecord(rid=rid, workflow_rid=None, description=rid, status=Status.completed)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"order": "min"}, ["1-C", "1-A", "1-B"]),
        ({"order": "max"}, ["1-B", "1-A", "1-C"]),
        ({"order": None}, ["1-A", "1-B", "1-C"]),
        ({"order": "min", "limit": 1}, ["1-C"]),
        ({"order": "min", "min_value": 0.3}, ["1-A", "1-B"]),
        ({"order": "max", "max_value": 0.5}, ["1-A", "1-C"]),
        ({"order": "min", "min_value": 0.3, "max_value": 0.5}, ["1-A"]),
        ({"order": "min", "limit": 0}, []),
    ],
)
def test_rank_executions(kwargs, expected):
    recs = [_rec(r) for r in ("1-A", "1-B", "1-C", "1-D")]  # 1-D logged no such metric: never returned
    last = {
        "1-A": MetricSummary("loss", 0.5, 1, T0, 0.5, 0.5, 1),
        "1-B": MetricSummary("loss", 0.9, 1, T0, 0.9, 0.9, 1),
        "1-C": MetricSummary("loss", 0.1, 1, T0, 0.1, 0.1, 1),
    }
    assert [r.rid for r in rank_executions(recs, last, **kwargs)] == expected


def test_rank_executions_ties_break_by_rid_and_bad_order_is_refused():
    recs = [_rec("1-B"), _rec("1-A")]
    same = MetricSummary("loss", 0.5, 1, T0, 0.5, 0.5, 1)
    assert [r.rid for r in rank_executions(recs, {"1-A": same, "1-B": same}, order="max")] == ["1-A", "1-B"]
    with pytest.raises(ValidationError, match="order='best'"):
        rank_executions(recs, {}, order="best")  # type: ignore[arg-type]


def test_metrics_for_provenance_is_plain_json_and_deterministic():
    series = [MetricValue("loss", 1.0, 0, T0), MetricValue("acc", 0.5, 0, T0), MetricValue("loss", 0.5, 1, T0)]
    doc = metrics_for_provenance(series)
    assert doc == {
        "format": "deriva-ml-metrics/1",
        "summary": {
            "loss": {
                "last_value": 0.5,
                "last_step": 1,
                "last_time": T0.isoformat(),
                "min": 0.5,
                "max": 1.0,
                "count": 2,
            },
            "acc": {"last_value": 0.5, "last_step": 0, "last_time": T0.isoformat(), "min": 0.5, "max": 0.5, "count": 1},
        },
        "series": {"loss": [[0, 1.0, T0.isoformat()], [1, 0.5, T0.isoformat()]], "acc": [[0, 0.5, T0.isoformat()]]},
    }
    assert json.loads(json.dumps(doc)) == doc
    assert metrics_for_provenance(iter(series)) == doc


def test_log_file_is_opened_append_only(tmp_path):
    """Two handles (e.g. two threads' or a forked child's) append without overwriting each other."""
    path = tmp_path / "metrics.jsonl"
    a, b = MetricLog(path, Clock()), MetricLog(path, Clock())
    for i in range(50):
        a.log("a", i)
        b.log("b", i)
    got = parse_series(path.read_bytes())
    assert len(got) == 100 and [m.value for m in got if m.name == "b"] == list(map(float, range(50)))
    a.close()
    b.close()
    assert not os.path.exists(str(path) + ".tmp")


def test_an_execution_takes_the_time_of_each_value_from_the_handles_clock(tmp_path):
    from deriva_ml import DerivaML
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import make_workflow

    clock = Clock()
    ml = DerivaML("local", "clocked", home=tmp_path, clock=clock)
    with ml.create_execution(ExecutionConfiguration(workflow=make_workflow())) as exe:
        before = clock.t
        exe.log_metric("loss", 1.0)
        exe.log_metrics({"loss": 0.5, "acc": 0.1}, step=1)
    assert [m.time for m in exe.metrics()] == [before, before + timedelta(seconds=1), before + timedelta(seconds=1)]
    ml.close()
