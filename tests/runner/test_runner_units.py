"""Pure pieces of the runner: parent status derivation, preset expansion, parameter injection, the sweep lock."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import nbformat
import pytest
from hydra_zen import builds, instantiate, make_config
from hypothesis import given
from hypothesis import strategies as st

from deriva_ml.core.records import AssetSpec, DatasetSpec, Workflow
from deriva_ml.core.status import Status
from deriva_ml.execution._sweep import SweepDir, count_jobs, derive_parent_status, summarize, sweep_choices
from deriva_ml.execution.notebook_runner import inject_parameters, parse_value
from deriva_ml.execution.runner import (
    MultirunSpec,
    config_choices_of,
    console_log_level,
    expand_multirun,
    logging_overrides,
    model_source_file,
)

FINISHED = [Status.completed, Status.failed, Status.aborted]
UNFINISHED = [Status.created, Status.initializing, Status.pending, Status.running]


@given(st.lists(st.sampled_from(list(Status))), st.integers(0, 3))
def test_derive_parent_status_rules(statuses: list[Status], missing: int) -> None:
    got = derive_parent_status(statuses, missing)
    if any(s in UNFINISHED for s in statuses):
        assert got is Status.running
    elif Status.failed in statuses:
        assert got is Status.failed
    elif Status.aborted in statuses or missing:
        assert got is Status.aborted
    elif statuses:
        assert got is Status.completed
    else:
        assert got is Status.failed


@given(st.lists(st.sampled_from(FINISHED), min_size=1), st.randoms())
def test_derive_parent_status_ignores_order(statuses: list[Status], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(statuses)
    rnd.shuffle(shuffled)
    assert derive_parent_status(shuffled) is derive_parent_status(statuses)
    assert summarize(statuses).startswith(f"{len(statuses)} job")


def test_derive_parent_status_examples() -> None:
    assert derive_parent_status([]) is Status.failed
    assert derive_parent_status(["Completed", "Completed"]) is Status.completed
    assert derive_parent_status(["Completed", "Failed"]) is Status.failed
    assert derive_parent_status(["Completed", "Aborted"]) is Status.aborted
    assert derive_parent_status(["Completed", "Aborted", "Failed"]) is Status.failed
    assert derive_parent_status(["Completed"], missing_jobs=1) is Status.aborted
    assert derive_parent_status([], missing_jobs=3) is Status.aborted
    assert derive_parent_status(["Failed", "Running"]) is Status.running


def test_sweep_choices_and_job_count() -> None:
    base = {"model_config": "default_model", "multirun": "lr_sweep", "hydra/launcher": "basic", "x": None}
    overrides = ["model_config=quick,long", "model_config.epochs=1,2,3", "+multirun=lr_sweep"]
    assert sweep_choices(base, overrides) == {"model_config": "quick,long", "multirun": "lr_sweep"}
    assert count_jobs(overrides) == 6
    assert count_jobs(["a=1"]) == 1
    assert count_jobs(["a=range(0,4)"]) == 4
    assert count_jobs(["a=interval(0,1)"]) is None


def test_console_log_level() -> None:
    import logging

    assert console_log_level(0, {}) == logging.WARNING
    assert console_log_level(1, {}) == logging.INFO
    assert console_log_level(2, {}) == logging.DEBUG
    assert console_log_level(0, {"DERIVA_ML_LOG_LEVEL": "info"}) == logging.INFO
    assert console_log_level(0, {}, ["hydra.verbose=deriva_ml"]) == logging.DEBUG
    with pytest.raises(SystemExit, match="not a log level"):
        console_log_level(0, {"DERIVA_ML_LOG_LEVEL": "loud"})
    assert logging_overrides(logging.WARNING, []) == [
        "++hydra.job_logging.handlers.console.level=WARNING",
        "++hydra.hydra_logging.handlers.console.level=WARNING",
    ]
    assert logging_overrides(logging.INFO, ["hydra/job_logging=disabled"]) == [
        "++hydra.hydra_logging.handlers.console.level=INFO"
    ]


def test_expand_multirun() -> None:
    spec = MultirunSpec("s", ["+experiment=x", "model_config.lr=1,2"], "d")
    assert expand_multirun(["a=1"], lambda n: spec) == ["a=1"]
    assert expand_multirun(["+multirun=s", "a=1"], lambda n: spec) == [
        "--multirun",
        "+experiment=x",
        "model_config.lr=1,2",
        "+multirun=s",
        "a=1",
    ]
    assert expand_multirun(["-m", "+multirun=s"], lambda n: spec)[0] == "+experiment=x"
    with pytest.raises(SystemExit, match="no multirun preset"):
        expand_multirun(["+multirun=t"], lambda n: None)


def test_config_choices_leave_out_hydra_groups() -> None:
    assert config_choices_of({"hydra/launcher": "joblib", "model_config": "quick", "x": None}) == {
        "model_config": "quick"
    }


def test_records_survive_hydra_zen() -> None:
    from deriva_ml.asset.aux_classes import AssetSpecConfig
    from deriva_ml.execution import DatasetSpecConfig, DerivaMLConfig

    cfg = make_config(
        workflow=builds(Workflow, name="W", workflow_type=["Training", "Analysis"], populate_full_signature=True),
        datasets=[DatasetSpecConfig(rid="1-ABC", version="1.2.0")],
        assets=[AssetSpecConfig(rid="6-EPNR", cache=True)],
        deriva_ml=DerivaMLConfig(hostname="local", catalog_id="x"),
    )
    out = instantiate(cfg, _convert_="all")
    assert out["workflow"] == Workflow(name="W", workflow_type=("Training", "Analysis"))
    assert out["datasets"] == [DatasetSpec(rid="1-ABC", version="1.2.0")]  # type: ignore[arg-type]
    assert out["assets"] == [AssetSpec(rid="6-EPNR", cache=True)]  # type: ignore[arg-type]
    assert out["deriva_ml"].catalog_id == "x"


def test_model_source_file_unwraps_partials() -> None:
    import functools

    assert model_source_file(functools.partial(test_expand_multirun)) == Path(__file__).resolve()


def test_inject_parameters_after_parameters_cell() -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("a = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("x"), params, nbformat.v4.new_code_cell("print(a)")]
    out = inject_parameters(nb, {"a": 2, "name": "z"})
    assert [c.source for c in out.cells][2] == "# Parameters injected by deriva-ml-run-notebook\na = 2\nname = 'z'\n"
    assert len(nb.cells) == 3  # the input is not changed
    again = inject_parameters(out, {"a": 3})
    assert len(again.cells) == 4 and "a = 3" in again.cells[2].source
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    assert "a = 1" in inject_parameters(plain, {"a": 1}).cells[0].source
    assert (parse_value("0.5"), parse_value("true"), parse_value("[1, 2]"), parse_value("a b")) == (
        0.5,
        True,
        [1, 2],
        "a b",
    )


def _create_parent(args: tuple[str, str]) -> str:
    sweep, marker_dir = args

    def create() -> dict[str, str]:
        marker = Path(marker_dir) / f"created-{multiprocessing.current_process().pid}"
        marker.write_text("x")
        return {"rid": marker.name}

    return str(SweepDir(sweep).ensure_parent(create)["rid"])


def test_ensure_parent_creates_exactly_once_across_processes(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    with multiprocessing.get_context("fork").Pool(4) as pool:
        rids = pool.map(_create_parent, [(str(tmp_path / "sweep"), str(markers))] * 12)
    assert len(set(rids)) == 1
    assert len(list(markers.iterdir())) == 1


def test_finalize_sweep_aborts_dead_children_and_the_parent(tmp_path: Path) -> None:
    """A child left Running by a process that is gone is Aborted; so is the parent (derived)."""
    import json as _json

    import attrs

    from deriva_ml import DerivaML
    from deriva_ml.core.records import ExecutionConfiguration
    from deriva_ml.execution._sweep import finalize_sweep
    from deriva_ml.execution.runner import _connection_of

    sweep = SweepDir(tmp_path / "sweep")
    with DerivaML("local", "fin", home=tmp_path / "home") as ml:
        wf = Workflow(name="w", workflow_type="Training", url="file:///w.py", checksum="abc")
        parent = ml.create_execution(ExecutionConfiguration(workflow=wf, description="parent"))
        parent.execution_start()
        sweep.ensure_parent(lambda: {"rid": parent.execution_rid, "connection": attrs.asdict(_connection_of(ml))})
        done = ml.create_execution(ExecutionConfiguration(workflow=wf, description="ok"))
        with done:
            pass
        crashed = ml.create_execution(ExecutionConfiguration(workflow=wf, description="crashed"))
        crashed.execution_start()
        # its process is gone: a lease naming a pid that cannot exist on this host
        owner = _json.loads(crashed._manifest.get_state("owner") or "{}")
        crashed._manifest.set_state("owner", _json.dumps({**owner, "pid": 2**22 + 7, "started": "1"}))
        parent.add_nested_execution(done, sequence=0)
        parent.add_nested_execution(crashed, sequence=1)
    result = finalize_sweep(sweep)
    assert result.parent_status is Status.aborted
    assert result.aborted == (crashed.execution_rid,)
    with DerivaML("local", "fin", home=tmp_path / "home") as ml:
        assert ml.lookup_execution(crashed.execution_rid).status is Status.aborted
        assert "1 Aborted, 1 Completed" in ml.lookup_execution(parent.execution_rid).status_detail
    assert finalize_sweep(sweep).parent_status is Status.aborted  # idempotent


def test_parent_record_withholds_secret_entries_and_restores_them_from_the_live_config() -> None:
    from deriva_ml.execution._sweep_parent import parent_record, restore_withheld

    node = {
        "_target_": "deriva_ml.DerivaML",
        "hostname": "ml.example.org",
        "catalog_id": "1",
        "credential": {"cookie": "webauthn=Cookie-1a2b"},
        "session_config": {"retry_connect": 5},
        "extra": {"db_password": 1234, "url": "postgresql://ml:UrlPw-3c4d@db.example.org/ml"},
        "home": "/data/ml",
    }
    record = parent_record({"rid": "1-ABC", "connection": {"hostname": "ml.example.org"}, "deriva_ml_config": node})
    text = json.dumps(record)
    assert "Cookie-1a2b" not in text and "1234" not in text and "UrlPw-3c4d" not in text
    assert record["withheld"] == [["credential"], ["session_config"], ["extra", "db_password"], ["extra", "url"]]
    assert record["credential_ref"]["host"] == "ml.example.org"
    kept = record["deriva_ml_config"]
    assert kept["extra"]["url"] == "postgresql://db.example.org/ml" and kept["home"] == "/data/ml"
    assert record["rid"] == "1-ABC"
    # the launching process puts its own values back; a later process without them connects without
    assert restore_withheld(kept, record["withheld"], node) == node
    bare = restore_withheld(kept, record["withheld"], None)
    assert "credential" not in bare and bare["hostname"] == "ml.example.org"
    # nothing secret: nothing withheld
    plain = parent_record({"rid": "1-X", "deriva_ml_config": {"hostname": "local", "credential": None}})
    assert "withheld" not in plain and "credential_ref" not in plain


def test_resolved_node_reads_the_launching_process_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from omegaconf import OmegaConf

    from deriva_ml.execution._sweep_parent import resolved_node

    monkeypatch.setenv("UNIT_SWEEP_COOKIE", "webauthn=Unit-5e6f")
    node = OmegaConf.create({"hostname": "h", "credential": {"cookie": "${oc.env:UNIT_SWEEP_COOKIE}"}})
    assert resolved_node(node) == {"hostname": "h", "credential": {"cookie": "webauthn=Unit-5e6f"}}
    assert resolved_node(None) is None
    assert resolved_node(OmegaConf.create({"x": "${oc.env:UNIT_SWEEP_MISSING_VAR}"})) is None  # does not resolve
