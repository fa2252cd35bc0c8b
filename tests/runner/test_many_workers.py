"""Many workers, one catalog (issue 11.7): a Hydra sweep of 16 jobs on hydra-submitit-launcher's local
executor (each job its own process, as on a SLURM cluster) writes to one catalog concurrently — the
embedded catalog, and ERMrest + Hatrac over HTTP (the fakes in ``tests/catalog`` and ``tests/store``).

Checked: every child's status history is legal (as written to the catalog: the embedded journal, the
ERMrest fake's request log; and as its owner recorded it), the parent is derived exactly once, no job,
execution, link or output is lost.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deriva_ml import DerivaML
from deriva_ml.core.status import TRANSITIONS, Status

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

JOBS = 16
_TESTS = Path(__file__).resolve().parents[1]

CONFIGS = """
from hydra_zen import builds, store

from deriva_ml.execution import DerivaMLConfig, Workflow

from models import connect_fake, train

store(builds(train, populate_full_signature=True, zen_partial=True), group="model_config", name="default_model")
store(
    builds(Workflow, name="Sweep Worker", workflow_type="Training", populate_full_signature=True),
    group="workflow",
    name="default_workflow",
)
store(DerivaMLConfig(hostname="local", catalog_id="sweep"), group="deriva_ml", name="default_deriva")
store(
    builds(connect_fake, populate_full_signature=True),
    group="deriva_ml",
    name="fake_ermrest",
)
"""

MODELS = '''
import json
import os
import time
from pathlib import Path


def train(seed: int = 0, *, ml_instance, execution):
    """Write one small output per job (so the jobs upload concurrently too). One job (the last that did
    not create the sweep's parent) waits until the process that created the parent has ended, then runs
    abort_stale_executions() while the sweep is still running: the parent must survive it."""
    lines = [f"seed {seed} pid {os.getpid()}"]
    from hydra.core.hydra_config import HydraConfig

    parent = json.loads((Path(HydraConfig.get().sweep.dir) / ".deriva_ml" / "parent.json").read_text())
    creator = parent["created_by"]
    if seed == (15 if creator["job"] != 15 else 14):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                os.kill(creator["pid"], 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the process that created the parent did not end")
        aborted = [str(r.rid) for r in ml_instance.abort_stale_executions()]
        lines.append("aborted " + json.dumps(aborted))
    path = execution.asset_file_path("Execution_Asset", f"result-{seed}.txt")
    path.write_text("\\n".join(lines) + "\\n")


def connect_fake(ermrest_host: str, catalog_id: str, hatrac_url: str, home: str):
    """A connection to the ERMrest and Hatrac test servers (plain HTTP on 127.0.0.1, no credentials)."""
    import requests

    from deriva_ml import DerivaML
    from deriva_ml.catalog.ermrest import ErmrestCatalog
    from deriva_ml.store.hatrac import HatracObjectStore

    session = requests.Session()
    session.trust_env = False
    catalog = ErmrestCatalog(ermrest_host, catalog_id, scheme="http", credential={})
    store = HatracObjectStore(hatrac_url, session=session, jitter=None)
    return DerivaML(ermrest_host, catalog_id, catalog=catalog, store=store, home=home)
'''


def _project(root: Path) -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "__init__.py").write_text(textwrap.dedent(CONFIGS))
    (root / "models.py").write_text(textwrap.dedent(MODELS))
    return root


def _sweep(root: Path, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DERIVA_ML_CONFIG_MODULE"}
    env.update(DERIVA_ML_HOME=str(home), PYTHONWARNINGS="ignore", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    seeds = ",".join(str(i) for i in range(JOBS))
    argv = [
        sys.executable,
        "-m",
        "deriva_ml.execution.runner",
        "-m",
        f"model_config.seed={seeds}",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        f"hydra.sweep.dir={root / 'multirun'}",
        *extra,
    ]
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=280)


def _legal(sequence: list[str]) -> bool:
    statuses = [Status.parse(s) for s in sequence]
    return all(b in TRANSITIONS[a] for a, b in itertools.pairwise(statuses))


def _status_writes_from_journal(ml: DerivaML) -> dict[str, list[str]]:
    """RID -> statuses in the order the embedded catalog applied them (its journal: inserted rows, then the
    compare-and-set writes that took effect)."""
    from deriva_ml.catalog.journal import read_journal
    from deriva_ml.core.effects import Insert, SetStatus

    out: dict[str, list[str]] = {}
    for entry in read_journal(ml.catalog):
        for effect, rows in zip(entry.batch.effects, entry.result.inserted, strict=False):
            if effect.table != "Execution":
                continue
            if isinstance(effect, Insert):
                for row, values in zip(rows, effect.rows, strict=True):
                    status = values.get("Status") or Status.created.value
                    # a row born Initializing took the first step Created -> Initializing before its insert
                    out[row["RID"]] = [Status.created.value] + ([status] if status != Status.created.value else [])
            elif isinstance(effect, SetStatus):
                applied = {r["RID"] for r in rows}
                for w in effect.writes:
                    if w.rid in applied:
                        assert out[w.rid][-1] == w.expected.value, (w, out[w.rid])
                        out[w.rid].append(w.status.value)
    return out


def _status_writes_from_log(log: list[tuple[str, str, Any]]) -> tuple[int, dict[str, list[str]]]:
    """(Execution rows inserted, RID -> statuses written by compare-and-set) from the ERMrest fake's request log.

    A compare-and-set is ``PUT /attributegroup/deriva-ml:Execution/RID,dml_expected:=Status;Status,...``; each
    row names the status it expects, which must be the last one written (no race is lost in this sweep)."""
    inserted = 0
    out: dict[str, list[str]] = {}
    for method, path, body in log:
        if ":Execution" not in path.replace("%3A", ":") or "Execution_" in path or not isinstance(body, list):
            continue
        for row in body:
            if not isinstance(row, dict) or "Status" not in row:
                continue
            if method == "POST":
                assert row["Status"] in (Status.created.value, Status.initializing.value)
                inserted += 1
            elif row.get("RID"):
                expected = row["dml_expected"]
                seq = out.setdefault(
                    row["RID"], [Status.created.value] + ([expected] if expected != Status.created.value else [])
                )
                assert seq[-1] == expected, (row, seq)
                seq.append(row["Status"])
    return inserted, out


def _check_sweep(ml: DerivaML, sweep_dir: Path, writes: dict[str, list[str]] | None) -> None:
    """``writes``: every status the catalog applied, per RID, in order (None on a live server, where only the
    final rows and the owners' recorded histories can be read)."""
    executions = ml.find_executions()
    parents = [e for e in executions if ml.list_nested_executions(e.rid)]
    assert len(parents) == 1, [(e.rid, e.status) for e in executions]
    parent = parents[0]
    assert len(executions) == JOBS + 1
    assert parent.status is Status.completed
    assert parent.status_detail == f"Sweep finished: {JOBS} jobs: {JOBS} Completed"
    links = ml.catalog.query("deriva-ml", "Execution_Execution", {"Execution": parent.rid})
    assert sorted(link["Sequence"] for link in links) == list(range(JOBS))
    children = {link["Nested_Execution"] for link in links}
    assert children == {e.rid for e in executions} - {parent.rid}
    parent_history = [c.to_status.value for c in ml.restore_execution(parent.rid).record.history]
    assert parent_history.count(Status.completed.value) == 1 and parent_history[-1] == Status.completed.value
    if writes is not None:
        # the parent was derived once: Running, then Completed, never changed again
        parent_writes = [s for s in writes.get(parent.rid, []) if s != Status.created.value]
        assert parent_writes[-1] == Status.completed.value and parent_writes.count(Status.completed.value) == 1
        assert _legal([Status.created.value, *parent_writes])
    # the parent's lease is the launching process's, whichever job created it
    info = json.loads((sweep_dir / ".deriva_ml" / "sweep.json").read_text())
    created_by = json.loads((sweep_dir / ".deriva_ml" / "parent.json").read_text())["created_by"]
    parent_exe = ml.restore_execution(parent.rid)
    assert json.loads(parent_exe._manifest.get_state("owner")) == info["launcher"]
    assert info["launcher"]["pid"] != created_by["pid"]
    pids = set()
    checked_abort = False
    for child in children:
        if writes is not None:
            seq = writes[child]
            assert seq[0] == Status.created.value and seq[-1] == Status.completed.value, (child, seq)
            assert _legal(seq), (child, seq)
        history = ml.restore_execution(child).record.history
        owner_history = [Status.created.value] + [c.to_status.value for c in history]
        assert all(a.to_status == b.from_status for a, b in itertools.pairwise(history))
        assert _legal(owner_history) and owner_history[-1] == Status.completed.value, (child, owner_history)
        outs = ml.catalog.query("deriva-ml", "Execution_Asset_Execution", {"Execution": child, "Asset_Role": "Output"})
        files = ml.catalog.query("deriva-ml", "Execution_Asset", {"RID": [o["Execution_Asset"] for o in outs]})
        (result,) = [f for f in files if f["Filename"].startswith("result-")]
        local = ml.execution_dir(child) / "outputs" / "Execution_Asset" / result["Filename"]
        text = local.read_text().splitlines()
        pids.add(text[0].split()[-1])
        for line in text[1:]:
            assert line.startswith("aborted ")
            assert parent.rid not in json.loads(line.split(" ", 1)[1])  # a running sweep's parent is not stale
            checked_abort = True
    assert checked_abort
    assert len(pids) == JOBS  # the jobs really ran in separate processes
    outcomes = sorted((sweep_dir / ".deriva_ml" / "jobs").glob("*.json"))
    assert len(outcomes) == JOBS
    assert {json.loads(o.read_text())["execution_rid"] for o in outcomes} == children


def test_sixteen_submitit_workers_on_the_embedded_catalog(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    run = _sweep(root, tmp_path / "home")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    with DerivaML("local", "sweep", home=tmp_path / "home") as ml:
        _check_sweep(ml, root / "multirun", _status_writes_from_journal(ml))


@pytest.fixture
def servers() -> Iterator[tuple[Any, Any]]:
    for sub in ("catalog", "store"):
        if str(_TESTS / sub) not in sys.path:
            sys.path.insert(0, str(_TESTS / sub))
    from ermrest_fake import FakeErmrest
    from hatrac_server import HatracTestServer

    with FakeErmrest() as er, HatracTestServer() as hs:
        yield er, hs


def test_sixteen_submitit_workers_on_ermrest_over_http(tmp_path: Path, servers: tuple[Any, Any]) -> None:
    from hatrac_server import make_store

    from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog

    er, hs = servers
    catalog_id = create_ml_catalog(er.host, "sweep", scheme="http", credential={}).catalog_id
    root = _project(tmp_path / "project")
    home = tmp_path / "home"
    run = _sweep(
        root,
        home,
        "deriva_ml=fake_ermrest",
        f"deriva_ml.ermrest_host={er.host}",
        f"deriva_ml.catalog_id={catalog_id}",
        f"deriva_ml.hatrac_url={hs.url}",
        f"deriva_ml.home={home}",
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    inserted, writes = _status_writes_from_log(list(er.log))
    assert inserted == JOBS + 1
    cat = ErmrestCatalog(er.host, catalog_id, scheme="http", credential={})
    with DerivaML(er.host, catalog_id, catalog=cat, store=make_store(hs), home=home) as ml:
        _check_sweep(ml, root / "multirun", writes)


def test_sixteen_submitit_workers_on_a_live_server(tmp_path: Path) -> None:
    """The same sweep against the live ERMrest + Hatrac named by ``DERIVA_ML_TEST_HOST`` (skipped without);
    the jobs find their credential the usual way (deriva-py's credential file for that host)."""
    host = os.environ.get("DERIVA_ML_TEST_HOST")
    if not host:
        pytest.skip("set DERIVA_ML_TEST_HOST to run the sweep against a live server")
    from deriva_ml.catalog.ermrest import create_ml_catalog

    catalog_id = create_ml_catalog(host, "sweep").catalog_id
    root = _project(tmp_path / "project")
    home = tmp_path / "home"
    run = _sweep(root, home, f"deriva_ml.hostname={host}", f"deriva_ml.catalog_id={catalog_id}")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    with DerivaML(host, catalog_id, home=home) as ml:
        _check_sweep(ml, root / "multirun", None)
