"""Crash safety: a process killed with SIGKILL while writing or uploading outputs loses nothing.

A child process runs a real execution on an embedded catalog and is killed at a chosen point; this
process then restores the execution and finishes the upload. Every registered file that exists must be
in the catalog exactly once, with its bytes in the object store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deriva_ml import DerivaML
from deriva_ml.core.definitions import Status
from deriva_ml.core.errors import UploadFailed

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from deriva_ml import DerivaML
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import add_domain_schema, make_workflow

    home, mode, n_files, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    host, catalog = sys.argv[5], sys.argv[6]
    ml = DerivaML(host, catalog, home=home)  # a live host: the user's deriva-py credential
    add_domain_schema(ml)

    if mode == "after-catalog-apply":
        inner_apply = ml.catalog.apply
        def apply(batch):
            result = inner_apply(batch)
            if any(getattr(e, "table", "") == "Model" for e in batch.effects):
                os.kill(os.getpid(), signal.SIGKILL)   # crash between the catalog write and the manifest update
            return result
        ml.catalog.apply = apply

    exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="crash test"))
    print("RID", exe.execution_rid, flush=True)
    with exe:
        for i in range(n_files):
            p = exe.asset_file_path("Model", f"weights {i:03d}.bin")
            p.write_bytes(f"file {i} ".encode() * 50)
            print("WROTE", i, flush=True)
            if mode == "writing" and i == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
    stored = [0]
    def progress(done, total):
        stored[0] += 1
        if mode == "uploading" and stored[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    exe.upload_execution_outputs(progress=progress)
    print("DONE", flush=True)
    """
)


@pytest.fixture(params=["embedded", "live"])
def target(request) -> tuple[str, str]:
    """Where the child runs: the embedded catalog ``crash``, or a fresh catalog on the live server."""
    if request.param == "embedded":
        return ("local", "crash")
    from live_support import new_live_catalog

    host, catalog_id, _ = new_live_catalog("crash")
    return (host, catalog_id)


def open_target(target: tuple[str, str], tmp_path: Path) -> DerivaML:
    host, catalog_id = target
    if host == "local":
        return DerivaML(host, catalog_id, home=tmp_path / "home")
    from live_support import live_credential

    return DerivaML(host, catalog_id, credential=live_credential(), home=tmp_path / "home")


def run_child(tmp_path: Path, mode: str, n_files: int, kill_at: int, target: tuple[str, str]) -> tuple[str, int]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "home"), mode, str(n_files), str(kill_at), *target],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DERIVA_ML_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    rid = next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("RID"))
    wrote = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("WROTE")]
    return rid, max(wrote) if wrote else -1


def assert_exactly_once(ml: DerivaML, rid: str, expected: set[str]) -> None:
    links = ml.catalog.query(ml.domain_schema, "Model_Execution", {"Execution": rid})
    assets = ml.catalog.query(ml.domain_schema, "Model", {"RID": [link["Model"] for link in links]})
    names = [a["Filename"] for a in assets]
    assert sorted(names) == sorted(expected)
    assert len(names) == len(set(names))
    assert len(links) == len(assets)
    all_rows = ml.catalog.query(ml.domain_schema, "Model")
    assert len(all_rows) == len(expected)  # nothing duplicated, nothing orphaned by the crash
    for a in assets[:5]:
        dest = Path(ml.working_dir) / "verify" / a["Filename"]
        ml.store.get(a["URL"], dest, md5=a["MD5"])
        i = int(a["Filename"].split()[1].split(".")[0])
        assert dest.read_bytes() == f"file {i} ".encode() * 50


@pytest.mark.parametrize("kill_at", [3, 17])
def test_killed_while_writing_outputs(tmp_path, kill_at, target):
    rid, last = run_child(tmp_path, "writing", 40, kill_at, target)
    assert last == kill_at
    ml = open_target(target, tmp_path)
    exe = ml.restore_execution(rid)
    assert exe.status is Status.running  # the catalog still says so: the process died
    (aborted,) = ml.abort_stale_executions()
    assert aborted.rid == rid and aborted.status is Status.aborted
    assert "is gone" in aborted.status_detail
    exe = ml.restore_execution(rid)
    assert exe.status is Status.aborted
    exe.upload_execution_outputs()
    assert_exactly_once(ml, rid, {f"weights {i:03d}.bin" for i in range(kill_at + 1)})
    exe.upload_execution_outputs()  # a second upload changes nothing
    assert_exactly_once(ml, rid, {f"weights {i:03d}.bin" for i in range(kill_at + 1)})


@pytest.mark.parametrize(("mode", "kill_at"), [("uploading", 2), ("uploading", 25), ("after-catalog-apply", 0)])
def test_killed_while_uploading(tmp_path, mode, kill_at, target):
    rid, last = run_child(tmp_path, mode, 30, kill_at, target)
    assert last == 29
    ml = open_target(target, tmp_path)
    exe = ml.restore_execution(rid)
    assert exe.status is Status.completed
    exe.upload_execution_outputs()
    expected = {f"weights {i:03d}.bin" for i in range(30)}
    assert_exactly_once(ml, rid, expected)
    if target[0] == "local":  # the content-addressed store holds each object once
        objects = [p for p in (ml.home / "catalogs" / "crash" / "objects").rglob("weights *.bin") if p.is_file()]
        assert len(objects) == 30


def test_registered_but_never_written_file_is_reported(tmp_path, target):
    rid, _ = run_child(tmp_path, "writing", 10, 4, target)
    ml = open_target(target, tmp_path)
    exe = ml.restore_execution(rid)
    # a file registered by a new registration in this process but never written is named in the error
    exe.asset_file_path("Model", "never.bin")
    with pytest.raises(UploadFailed, match="never.bin"):
        exe.upload_execution_outputs()
    assert_exactly_once(ml, rid, {f"weights {i:03d}.bin" for i in range(5)})
