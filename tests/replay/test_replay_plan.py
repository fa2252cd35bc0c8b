"""The pure decisions of ``deriva-ml replay``: URL parsing, overrides, source checks, the plan, the report."""

from __future__ import annotations

import json

import pytest

from deriva_ml.core.errors import DerivaMLException, ValidationError
from deriva_ml.replay.link import ENV_REPLAY_DATASETS, ENV_REPLAY_OF, link_filename, replayed_rid
from deriva_ml.replay.plan import (
    AssetFact,
    ExecutionFacts,
    InputDataset,
    ReplayRefused,
    SourceFacts,
    apply_overrides,
    check_source,
    compare_outputs,
    parse_override,
    parse_workflow_url,
    plan_replay,
    render_plan,
    render_report,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
BLOB = "b" * 40


@pytest.mark.parametrize(
    ("url", "commit", "path"),
    [
        (f"https://github.com/org/repo/blob/{SHA}/src/train.py", SHA, "src/train.py"),
        (f"https://gitlab.com/g/sub/repo/-/blob/{SHA}/train.py", SHA, "train.py"),
        (f"https://codeberg.org/o/r/src/commit/{SHA}/a/b.py", SHA, "a/b.py"),
        (f"https://bitbucket.org/o/r/src/{SHA}/nb/fit.ipynb", SHA, "nb/fit.ipynb"),
        (f"https://example.org:8443/lab/toy/blob/{SHA.upper()}/my%20script.py", SHA, "my script.py"),
    ],
)
def test_forge_urls_name_a_commit_and_a_path(url: str, commit: str, path: str) -> None:
    loc = parse_workflow_url(url)
    assert (loc.commit, loc.path, loc.file_path) == (commit, path, None)


def test_file_url_names_a_file_without_commit() -> None:
    loc = parse_workflow_url("file:///home/me/proj/train%201.py")
    assert loc.commit is None and loc.file_path == "/home/me/proj/train 1.py" and loc.path == "train 1.py"


@pytest.mark.parametrize(
    "url", [None, "", "docker://img@sha256:abc", "https://github.com/org/repo", "https://x/org/repo/blob/main/t.py"]
)
def test_urls_without_commit_and_file_are_refused_with_the_expected_forms(url: str | None) -> None:
    with pytest.raises(ReplayRefused) as err:
        parse_workflow_url(url)
    assert isinstance(err.value, DerivaMLException)
    assert ("blob/SHA/PATH" in str(err.value)) or "no URL" in str(err.value)


@pytest.mark.parametrize(
    ("kind", "args", "overrides", "expected"),
    [
        ("script", ["--seed", "1", "--home", "h"], ["seed=5"], ["--seed", "5", "--home", "h"]),
        ("script", ["--seed=1"], ["seed=5"], ["--seed=5"]),
        ("script", ["--learning-rate", "0.1"], ["learning_rate=0.2"], ["--learning-rate", "0.2"]),
        ("script", ["a.csv"], ["seed=5"], ["a.csv", "--seed", "5"]),
        ("script", ["seed=1", "x"], ["seed=2"], ["seed=2", "x"]),
        ("module", ["--seed", "0"], ["seed=3", "epochs=2"], ["--seed", "3", "--epochs", "2"]),
        (
            "hydra",
            ["model_config.lr=0.1", "+experiment=a"],
            ["model_config.lr=0.5"],
            ["model_config.lr=0.5", "+experiment=a"],
        ),
        ("hydra", ["+experiment=a"], ["experiment=b"], ["+experiment=b"]),
        ("hydra", ["datasets=small"], ["seed=3"], ["datasets=small", "seed=3"]),
        ("notebook", ["nb.ipynb", "-p", "seed", "1"], ["seed=9"], ["nb.ipynb", "-p", "seed", "9"]),
        ("notebook", ["nb.ipynb"], ["seed=9"], ["nb.ipynb", "-p", "seed", "9"]),
        ("notebook", ["nb.ipynb", "datasets=a"], ["datasets.x=1"], ["nb.ipynb", "datasets=a", "datasets.x=1"]),
    ],
)
def test_overrides(kind: str, args: list[str], overrides: list[str], expected: list[str]) -> None:
    assert list(apply_overrides(kind, args, overrides)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["seed", "=3", ""])
def test_malformed_override_is_a_usage_error_naming_the_form(bad: str) -> None:
    with pytest.raises(ValidationError, match="KEY=VALUE"):
        parse_override(bad)


def _facts(**kw: object) -> ExecutionFacts:
    base: dict[str, object] = dict(
        rid="1-ABC",
        status="Completed",
        description="d",
        workflow_rid="1-W",
        workflow_name="train",
        workflow_url=f"https://github.com/org/repo/blob/{SHA}/train.py",
        workflow_checksum=BLOB,
        is_notebook=False,
        argv=("train.py", "--seed", "1"),
        datasets=(InputDataset("1-DS", "0.2.0"),),
        outputs=(
            AssetFact("Model", "1-M", "model.json", "m1"),
            AssetFact("Execution_Metadata", "1-C", "configuration.json", "c1"),
        ),
    )
    base.update(kw)
    return ExecutionFacts(**base)  # type: ignore[arg-type]


def _source(**kw: object) -> SourceFacts:
    base: dict[str, object] = dict(path="train.py", repo_root="/r", commit=SHA, blob_id=BLOB, searched=("/r",))
    base.update(kw)
    return SourceFacts(**base)  # type: ignore[arg-type]


def test_plan_of_a_script() -> None:
    plan = plan_replay(_facts(), _source(), overrides=["seed=2"], python="/py")
    assert plan.kind == "script"
    assert plan.command == ("/py", "{checkout}/train.py", "--seed", "2")
    assert (plan.commit, plan.repo_root, plan.path, plan.checksum) == (SHA, "/r", "train.py", BLOB)
    assert plan.env[ENV_REPLAY_OF] == "1-ABC"
    assert json.loads(plan.env[ENV_REPLAY_DATASETS]) == {"1-DS": "0.2.0"}
    assert plan.env["DERIVA_ML_WORKFLOW_URL"].endswith("/train.py") and plan.env["DERIVA_ML_WORKFLOW_CHECKSUM"] == BLOB
    # configuration.json describes the run, not its results: it is not compared
    assert [a.filename for a in plan.expected_outputs] == ["model.json"]
    text = "\n".join(render_plan(plan))
    assert SHA in text and "dataset 1-DS @ 0.2.0" in text and "Model model.json md5 m1" in text
    assert json.loads(json.dumps(plan.to_json()))["command"][1] == "{checkout}/train.py"


def test_plan_of_a_module_puts_the_package_root_on_the_path() -> None:
    src = _source(path="src/pkg/demo.py", module="pkg.demo", module_root="src")
    plan = plan_replay(_facts(argv=("python -m pkg.demo", "--seed", "0")), src, python="/py")
    assert plan.kind == "module"
    assert plan.command == ("/py", "-m", "pkg.demo", "--seed", "0")
    assert plan.pythonpath == ("{checkout}/src",)


def test_plan_of_a_hydra_run_uses_the_runner_with_the_recorded_overrides() -> None:
    facts = _facts(argv=("deriva-ml-run", "model_config=fast", "datasets=small"))
    plan = plan_replay(facts, _source(), overrides=["model_config.epochs=3"], python="/py", scripts_dir="/venv/bin")
    assert plan.kind == "hydra"
    assert plan.command == ("/venv/bin/deriva-ml-run", "model_config=fast", "datasets=small", "model_config.epochs=3")
    no_scripts = plan_replay(facts, _source(), python="/py")
    assert no_scripts.command[:2] == ("/py", "-c") and "deriva_ml.execution.runner" in no_scripts.command[2]


def test_plan_of_a_notebook_runs_the_checked_out_copy() -> None:
    facts = _facts(
        argv=("deriva-ml-run-notebook", "/old/place/fit.ipynb", "-p", "seed", "1"),
        workflow_url=f"https://github.com/org/repo/blob/{SHA}/nb/fit.ipynb",
        is_notebook=True,
    )
    plan = plan_replay(facts, _source(path="nb/fit.ipynb"), python="/py", scripts_dir="/b")
    assert plan.kind == "notebook"
    assert plan.command == ("/b/deriva-ml-run-notebook", "{checkout}/nb/fit.ipynb", "-p", "seed", "1")


@pytest.mark.parametrize(
    ("facts", "source", "message"),
    [
        (_facts(), _source(commit=None, repo_root=None, searched=("/a (for commit x)",)), "cannot find commit"),
        (_facts(), _source(blob_id="c" * 40), "dirty run"),
        (_facts(), _source(blob_id=None), "does not exist at commit"),
        (_facts(workflow_checksum=None), _source(), "no checksum"),
        (_facts(has_children=True), _source(), "nested executions"),
        (_facts(argv=()), _source(), "no command line"),
    ],
)
def test_refusals_name_the_reason(facts: ExecutionFacts, source: SourceFacts, message: str) -> None:
    with pytest.raises(ReplayRefused, match=message) as err:
        plan_replay(facts, source)
    if source.commit is None:
        assert "/a (for commit x)" in str(err.value) and "--repo" in str(err.value)
    if "dirty" in message:
        assert BLOB in str(err.value) and "c" * 40 in str(err.value)


def test_a_redacted_argument_must_be_given_again() -> None:
    facts = _facts(argv=("train.py", "--token", "<redacted>", "--seed", "1"))
    with pytest.raises(ReplayRefused, match="secrets removed"):
        plan_replay(facts, _source())
    plan = plan_replay(facts, _source(), overrides=["token=s3cret"], python="/py")
    assert plan.command == ("/py", "{checkout}/train.py", "--token", "s3cret", "--seed", "1")


def test_check_source_of_a_file_url_names_the_blob_looked_for() -> None:
    loc = parse_workflow_url("file:///p/train.py")
    with pytest.raises(ReplayRefused, match=f"train.py with blob {BLOB}"):
        check_source(loc, BLOB, _source(commit=None, repo_root="/p", searched=("/p (history of train.py)",)))


def _a(table: str, name: str, md5: str | None) -> AssetFact:
    return AssetFact(table, "1-X", name, md5)


def test_report_pairs_outputs_by_table_and_name() -> None:
    original = [
        _a("Model", "model.json", "m1"),
        _a("Execution_Metadata", "metrics.json", "x1"),
        _a("Execution_Metadata", "configuration.json", "c1"),
        _a("Execution_Metadata", "environment_snapshot_20260101_000000.txt", "e1"),
        _a("Execution_Asset", "gone.txt", "g"),
        _a("Execution_Asset", "fit_report.ipynb", "nb1"),  # the executed notebook: a record of the run
    ]
    replay = [
        _a("Model", "model.json", "m1"),
        _a("Execution_Metadata", "metrics.json", "x2"),
        _a("Execution_Metadata", "configuration.json", "c2"),
        _a("Execution_Metadata", "environment_snapshot_20260101_000001.txt", "e2"),
        _a("Execution_Metadata", link_filename("1-A"), "r"),
        _a("Execution_Asset", "extra.txt", "n"),
        _a("Execution_Asset", "fit_report.ipynb", "nb2"),
    ]
    report = compare_outputs("1-A", original, "1-B", replay, status="Completed")
    outcome = {(f.table, f.filename): f.outcome for f in report.files}
    assert outcome == {
        ("Model", "model.json"): "equal",
        ("Execution_Metadata", "metrics.json"): "differs",
        ("Execution_Asset", "gone.txt"): "missing",
        ("Execution_Asset", "extra.txt"): "new",
    }
    assert not report.reproduced and len(report.differing) == 3
    text = "\n".join(render_report(report))
    assert "NOT reproduced: 3 of 4 outputs differ" in text and "differs   Execution_Metadata  metrics.json" in text
    data = report.to_json()
    assert data["reproduced"] is False and {f["outcome"] for f in data["files"]} == {
        "equal",
        "differs",
        "missing",
        "new",
    }


def test_report_same_name_written_twice_is_a_multiset_match() -> None:
    original = [_a("Model", "w.bin", "a"), _a("Model", "w.bin", "b")]
    same = compare_outputs("1-A", original, "1-B", list(reversed(original)), status="Completed")
    assert same.reproduced and [f.outcome for f in same.files] == ["equal", "equal"]
    other = compare_outputs(
        "1-A", original, "1-B", [_a("Model", "w.bin", "a"), _a("Model", "w.bin", "c")], status="Completed"
    )
    assert sorted(f.outcome for f in other.files) == ["differs", "equal"]


@pytest.mark.parametrize(("status", "files"), [("Failed", [_a("Model", "m", "1")]), ("Completed", [])])
def test_not_reproduced_unless_completed_with_outputs(status: str, files: list[AssetFact]) -> None:
    report = compare_outputs("1-A", files, "1-B", files, status=status)
    assert not report.reproduced
    assert "NOT reproduced" in render_report(report)[-1]


def test_link_file_names_round_trip() -> None:
    assert link_filename("1-006V") == "replay-of-1-006V.json"
    assert replayed_rid("replay-of-1-006V.json") == "1-006V"
    assert replayed_rid("configuration.json") is None and replayed_rid("replay-of-.json") is None
