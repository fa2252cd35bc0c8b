"""The spec's "Workflows" chapter against the embedded catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import attrs
import pytest
from dulwich import porcelain

from deriva_ml import CatalogWorkflow, DerivaML, DerivaMLException
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import DirtyWorkflow, UnknownTerm
from deriva_ml.execution import ExecutionConfiguration, Workflow
from deriva_ml.source import SourceWarning


def test_create_workflow_validates_types_and_is_unregistered(ml):
    wf = ml.create_workflow(name="ResNet50 Training", workflow_type="Training", description="Fine-tune")
    assert isinstance(wf, Workflow) and wf.rid is None
    assert wf.url and wf.checksum  # detected from this test file
    assert wf.url.endswith("test_workflows.py") or "test_workflows.py" in wf.url
    with pytest.raises(UnknownTerm) as err:
        ml.create_workflow(name="x", workflow_type="Trainning")
    assert isinstance(err.value, DerivaMLException)
    assert "'Trainning'" in str(err.value) and "'Training'" in str(err.value)


def test_add_term_then_use_custom_type(ml):
    ml.add_term(table="Workflow_Type", term_name="Data_Augmentation", description="Workflows that augment data")
    wf = ml.create_workflow(name="Aug", workflow_type="Data_Augmentation", url="https://x/y.py", checksum="c1")
    rid = ml.add_workflow(wf)
    assert ml.lookup_workflow(rid).workflow_type == ("Data_Augmentation",)


def test_add_workflow_reuses_only_the_same_url_and_checksum(ml):
    """A row is reused only when URL *and* checksum both match: a row never names other code (issue 11.4)."""
    a = Workflow(name="A", workflow_type="Training", url="https://github.com/o/r/blob/1/a.py", checksum="111")
    rid = ml.add_workflow(a)
    assert ml.add_workflow(a) == rid
    assert ml.add_workflow(attrs.evolve(a, name="A again", description="other words")) == rid
    moved = Workflow(name="A moved", workflow_type="Training", url="https://github.com/o/r/blob/2/b.py", checksum="111")
    edited = Workflow(
        name="A edited", workflow_type="Training", url="https://github.com/o/r/blob/1/a.py", checksum="999"
    )
    rid_moved, rid_edited = ml.add_workflow(moved), ml.add_workflow(edited)
    assert len({rid, rid_moved, rid_edited}) == 3
    rows = {r["RID"]: (r["URL"], r["Checksum"]) for r in ml.catalog.query(ML_SCHEMA, "Workflow")}
    assert rows == {
        rid: ("https://github.com/o/r/blob/1/a.py", "111"),
        rid_moved: ("https://github.com/o/r/blob/2/b.py", "111"),
        rid_edited: ("https://github.com/o/r/blob/1/a.py", "999"),
    }
    # a URL given without a checksum matches only a row without one
    bare = Workflow(name="bare", workflow_type="Training", url="https://github.com/o/r/blob/1/a.py")
    rid_bare = ml.add_workflow(bare)
    assert rid_bare not in rows and ml.add_workflow(bare) == rid_bare
    assert ml.lookup_workflow(rid_bare).checksum is None
    # lookups by URL or checksum still find a row (the first in RID order)
    assert ml.lookup_workflow_by_url("999").rid == rid_edited
    assert ml.lookup_workflow_by_url("https://github.com/o/r/blob/2/b.py").rid == rid_moved


def _scripted_repo(root: Path) -> Path:
    """A real git repository (dulwich) with one committed script and a GitHub remote."""
    root.mkdir()
    porcelain.init(str(root))
    (root / "train.py").write_text("print('train')\n")
    porcelain.add(str(root), paths=[str(root / "train.py")])
    porcelain.remote_add(str(root), "origin", "git@github.com:org/repo.git")
    porcelain.commit(str(root), message=b"train", author=b"A <a@b.c>", committer=b"A <a@b.c>")
    return root


def _git_blob(path: Path) -> str:
    return subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout.strip()


def _run_script(ml, script: Path) -> tuple[str, dict]:
    """An execution of the workflow detected from ``script`` (as it is now); its RID and configuration.json."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SourceWarning)
        wf = ml.create_workflow(name="Train", workflow_type="Training", caller_file=script)
    with ml.create_execution(ExecutionConfiguration(description="run"), workflow=wf) as exe:
        pass
    cfg = json.loads((exe.working_dir / "metadata" / "configuration.json").read_text())
    return str(exe.execution_rid), cfg


def _workflow_row_of(ml, execution_rid: str) -> dict:
    (exe_row,) = ml.catalog.query(ML_SCHEMA, "Execution", {"RID": execution_rid})
    (row,) = ml.catalog.query(ML_SCHEMA, "Workflow", {"RID": exe_row["Workflow"]})
    return row


def test_dirty_run_gets_its_own_workflow_row(ml, tmp_path):
    """Issue 11.4 with a real repository: a run with uncommitted edits of the script must not link to the
    clean row of the same URL (whose checksum is other file content). Each row's (URL, Checksum) is what
    ran: the URL names the commit, the checksum the bytes; configuration.json agrees with the row."""
    repo = _scripted_repo(tmp_path / "project")
    script = repo / "train.py"
    with porcelain.open_repo_closing(str(repo)) as r:
        sha = r.head().decode()
    url = f"https://github.com/org/repo/blob/{sha}/train.py"
    clean_blob = _git_blob(script)

    clean_rid, clean_cfg = _run_script(ml, script)
    clean_row = _workflow_row_of(ml, clean_rid)
    assert (clean_row["URL"], clean_row["Checksum"]) == (url, clean_blob)
    assert clean_row["Version"] == clean_cfg["workflow"]["version"] == f"0.1.dev1+g{sha[:9]}"

    script.write_text("print('train, edited')\n")  # uncommitted edit of the workflow's own file
    dirty_blob = _git_blob(script)
    assert dirty_blob != clean_blob
    dirty_rid, dirty_cfg = _run_script(ml, script)
    dirty_row = _workflow_row_of(ml, dirty_rid)
    assert dirty_row["RID"] != clean_row["RID"]
    assert (dirty_row["URL"], dirty_row["Checksum"]) == (url, dirty_blob)  # the bytes that ran
    assert dirty_cfg["workflow"]["checksum"] == dirty_blob and dirty_cfg["workflow"]["rid"] == dirty_row["RID"]
    assert dirty_row["Version"].startswith(f"0.1.dev1+g{sha[:9]}.d")  # setuptools-scm marks it dirty
    assert dirty_cfg["workflow"]["version"] == dirty_row["Version"]

    # the same dirty bytes again reuse the dirty row; restoring the file reuses the clean row
    assert _workflow_row_of(ml, _run_script(ml, script)[0])["RID"] == dirty_row["RID"]
    script.write_text("print('train')\n")
    assert _workflow_row_of(ml, _run_script(ml, script)[0])["RID"] == clean_row["RID"]
    assert len(ml.catalog.query(ML_SCHEMA, "Workflow")) == 2


@pytest.fixture
def live_ml(tmp_path):
    """A DerivaML on a fresh catalog of the live server named by ``DERIVA_ML_TEST_HOST`` (skipped without)."""
    host = os.environ.get("DERIVA_ML_TEST_HOST")
    if not host:
        pytest.skip("set DERIVA_ML_TEST_HOST to run the workflow identity test against a live server")
    from deriva_ml.catalog.ermrest import create_ml_catalog
    from deriva_ml.store.hatrac import HatracObjectStore

    credential = None
    if os.environ.get("DERIVA_ML_TEST_CREDENTIAL_FILE"):
        data = json.loads(Path(os.environ["DERIVA_ML_TEST_CREDENTIAL_FILE"]).read_text())
        credential = data.get(host, data)
    catalog = create_ml_catalog(host, "wfidentity", credential=credential)
    store = HatracObjectStore(host, credential=credential, session_config={"timeout": (10, 60)})
    ml = DerivaML(host, catalog.catalog_id, catalog=catalog, store=store, home=tmp_path / "home")
    yield ml
    ml.close()


def test_dirty_run_gets_its_own_workflow_row_live(live_ml, tmp_path):
    """The same real dirty repository against the live ERMrest + Hatrac (DERIVA_ML_TEST_HOST)."""
    test_dirty_run_gets_its_own_workflow_row(live_ml, tmp_path)


def test_version_is_always_written(ml):
    """Workflow.Version and configuration.json's "version" are never null (issue 10.6), also for a workflow
    whose URL and checksum the caller gives."""
    wf = ml.create_workflow(name="W", workflow_type="Training", url="https://x/given.py", checksum="k1")
    assert wf.version == "0.1.dev0"
    with ml.create_execution(ExecutionConfiguration(description="run"), workflow=wf) as exe:
        pass
    cfg = json.loads((exe.working_dir / "metadata" / "configuration.json").read_text())
    assert cfg["workflow"]["version"] == "0.1.dev0"
    rid = ml.add_workflow(Workflow(name="W2", workflow_type="Training", url="https://x/other.py", checksum="k2"))
    assert ml.lookup_workflow(rid).version == "0.1.dev0"
    pinned = ml.create_workflow(name="W3", workflow_type="Training", url="https://x/p.py", checksum="k3", version="2.1")
    assert ml.lookup_workflow(ml.add_workflow(pinned)).version == "2.1"
    assert all(r["Version"] for r in ml.catalog.query(ML_SCHEMA, "Workflow"))


def test_override_url_and_checksum_explicitly_and_by_env(ml, monkeypatch):
    wf = Workflow(
        name="Custom Pipeline",
        workflow_type="Training",
        url="https://github.com/org/repo/blob/main/pipeline.py",
        checksum="abc123def456",
    )
    rid = ml.add_workflow(wf)
    got = ml.lookup_workflow(rid)
    assert (got.url, got.checksum) == ("https://github.com/org/repo/blob/main/pipeline.py", "abc123def456")
    monkeypatch.setenv("DERIVA_ML_WORKFLOW_URL", "https://github.com/org/repo/blob/main/env.py")
    monkeypatch.setenv("DERIVA_ML_WORKFLOW_CHECKSUM", "feedbeef")
    env_wf = ml.create_workflow(name="Env", workflow_type="Training")
    assert (env_wf.url, env_wf.checksum) == ("https://github.com/org/repo/blob/main/env.py", "feedbeef")


def test_lookup_find_and_update_write_through(ml):
    rid = ml.add_workflow(Workflow(name="W", workflow_type="Training", url="https://x/w.py", checksum="c"))
    wf = ml.lookup_workflow(rid)
    assert isinstance(wf, CatalogWorkflow) and wf.name == "W"
    assert ml.lookup_workflow_by_url("https://x/w.py").rid == rid
    assert ml.lookup_workflow_by_url("c").rid == rid
    wf.description = "Updated: now includes data augmentation"
    wf.workflow_type = ["Training", "Evaluation"]
    again = ml.lookup_workflow(rid)
    assert again.description == "Updated: now includes data augmentation"
    assert set(again.workflow_type) == {"Training", "Evaluation"}
    wf.workflow_type = "Training"
    assert ml.lookup_workflow(rid).workflow_type == ("Training",)
    with pytest.raises(UnknownTerm):
        wf.workflow_type = "Nope"
    assert ml.lookup_workflow(rid).workflow_type == ("Training",)  # nothing written
    with pytest.raises(AttributeError):
        wf.url = "https://elsewhere"
    names = [f"{w.name} ({w.workflow_type}): {w.url}" for w in ml.find_workflows()]
    assert names == ["W (('Training',)): https://x/w.py"]
    with pytest.raises(DerivaMLException):
        ml.lookup_workflow_by_url("https://never/seen.py")


def _repo_with_script(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    porcelain.init(str(repo))
    (repo / "train.py").write_text(
        textwrap.dedent(
            """
            import json, sys
            from deriva_ml import DerivaML
            ml = DerivaML("local", "wf", home=sys.argv[1], allow_dirty=(sys.argv[2] == "dirty-ok"))
            wf = ml.create_workflow(name="Train", workflow_type="Training", description="d")
            print(json.dumps({"rid": ml.add_workflow(wf), "url": wf.url, "checksum": wf.checksum}))
            """
        )
    )
    porcelain.add(str(repo), paths=[str(repo / "train.py")])
    porcelain.remote_add(str(repo), "origin", "git@github.com:org/repo.git")
    porcelain.commit(str(repo), message=b"train", author=b"A <a@b.c>", committer=b"A <a@b.c>")
    return repo


def _run(repo: Path, home: Path, mode: str = "dirty-ok") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DERIVA_ML_WORKFLOW")}
    return subprocess.run(
        [sys.executable, str(repo / "train.py"), str(home), mode],
        capture_output=True,
        text=True,
        cwd=repo,
        env=env,
        timeout=120,
    )


def test_same_committed_script_twice_yields_one_row(tmp_path):
    repo = _repo_with_script(tmp_path)
    home = tmp_path / "home"
    first = _run(repo, home)
    second = _run(repo, home)
    assert first.returncode == 0, first.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a == b
    with porcelain.open_repo_closing(str(repo)) as r:
        sha = r.head().decode()
    assert a["url"] == f"https://github.com/org/repo/blob/{sha}/train.py"
    blob = subprocess.run(["git", "hash-object", str(repo / "train.py")], capture_output=True, text=True).stdout.strip()
    assert a["checksum"] == blob
    ml = DerivaML("local", "wf", home=home)
    assert len(ml.catalog.query(ML_SCHEMA, "Workflow")) == 1


def test_dirty_script_warns_or_refuses(tmp_path):
    repo = _repo_with_script(tmp_path)
    with (repo / "train.py").open("a") as f:
        f.write("# local change\n")
    home = tmp_path / "home"
    warned = _run(repo, home, "dirty-ok")
    assert warned.returncode == 0
    assert "train.py" in warned.stderr and "uncommitted" in warned.stderr.lower()
    refused = _run(repo, home, "strict")
    assert refused.returncode != 0
    assert DirtyWorkflow.__name__ in refused.stderr and "train.py" in refused.stderr


def test_workflow_in_config_or_argument(ml):
    wf = ml.create_workflow(name="W", workflow_type="Training", url="https://x/a.py", checksum="k")
    with ml.create_execution(ExecutionConfiguration(description="Training run"), workflow=wf) as exe:
        pass
    assert exe.workflow.rid == ml.lookup_workflow_by_url("https://x/a.py").rid


def test_uploaded_asset_offers_the_reference_name_asset_rid(ml, workflow):
    """``UploadedAsset.asset_rid`` is the reference package's name for ``.rid`` (issue 10.8)."""
    with ml.create_execution(ExecutionConfiguration(description="run"), workflow=workflow) as exe:
        exe.asset_file_path(asset_name="Execution_Asset", file_name="weights.bin").write_bytes(b"w" * 10)
    uploaded = [a for assets in exe.upload_execution_outputs().values() for a in assets]
    (weights,) = [a for a in uploaded if a.filename == "weights.bin"]
    assert weights.asset_rid == weights.rid
    (row,) = ml.catalog.query(ML_SCHEMA, "Execution_Asset", {"RID": weights.asset_rid})
    assert row["Filename"] == "weights.bin"


def test_create_workflow_from_record_validates_detects_and_keeps_the_record(ml):
    """One public way to turn a Workflow record (e.g. from a hydra-zen config) into a workflow: what the
    runner and the notebook runner use."""
    from deriva_ml.core.errors import ValidationError

    model = Path(__file__).resolve().parents[2] / "examples" / "demo_project" / "models" / "linear.py"
    record = Workflow(name="Fit", workflow_type="Training", description="fit a line", is_notebook=True)
    wf = ml.create_workflow_from_record(record, caller_file=model)
    assert wf.rid is None and wf.name == "Fit" and wf.description == "fit a line" and wf.is_notebook
    assert wf.url is not None and wf.url.endswith("examples/demo_project/models/linear.py")
    assert wf.checksum and wf.version
    # an explicit url and checksum are kept, and so is the version
    given = Workflow(name="G", workflow_type="Training", url="https://x/g.py", checksum="c9", version="2.0")
    assert ml.create_workflow_from_record(given) == given
    # types are validated against the vocabulary (the error names the valid ones)
    with pytest.raises(UnknownTerm) as err:
        ml.create_workflow_from_record(Workflow(name="x", workflow_type="Trainning"))
    assert "'Trainning'" in str(err.value) and "'Training'" in str(err.value)
    with pytest.raises(ValidationError, match="must be a Workflow record"):
        ml.create_workflow_from_record("Fit")  # type: ignore[arg-type]
    # registered by create_execution like any workflow
    exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description="from a record"))
    row = ml.lookup_workflow(exe.workflow.rid)
    assert row.name == "Fit" and row.url == wf.url and row.checksum == wf.checksum
