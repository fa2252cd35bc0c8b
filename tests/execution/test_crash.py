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


# ------------------------------------------------------------------------------ torn files, full disks

TORN_CHILD = textwrap.dedent(
    """
    import os, sys
    from deriva_ml import DerivaML
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import add_domain_schema, make_workflow

    home = sys.argv[1]
    ml = DerivaML("local", "torn", home=home)
    add_domain_schema(ml)
    exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="torn"))
    print("RID", exe.execution_rid, flush=True)
    with exe:
        exe.asset_file_path("Model", "whole.bin").write_bytes(b"w" * 1000)
        p = exe.asset_file_path("Model", "torn.bin")
        with open(p, "wb") as f:
            for i in range(10_000):
                f.write(b"t" * 4096)
                f.flush()
                if i == 5:
                    print("WRITING", flush=True)
                    sys.stdin.readline()  # the parent kills us here, mid-write
    print("NOT REACHED", flush=True)
    """
)


@pytest.mark.slow
def test_file_torn_by_sigkill_is_never_cataloged_as_complete(tmp_path):
    script = tmp_path / "torn.py"
    script.write_text(TORN_CHILD)
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DERIVA_ML_HOME": str(home)},
    )
    assert proc.stdout is not None
    rid = ""
    for line in proc.stdout:
        if line.startswith("RID"):
            rid = line.split()[1]
        if line.startswith("WRITING"):
            break
    os.kill(proc.pid, signal.SIGKILL)  # a real kill while the file is being written
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    ml = DerivaML("local", "torn", home=home)
    ml.abort_stale_executions()
    exe = ml.restore_execution(rid)
    torn = exe.working_dir / "outputs" / "Model" / "torn.bin"
    assert 0 < torn.stat().st_size < 10_000 * 4096
    exe.upload_execution_outputs(unsealed="skip")  # explicit: keep unsealed files local
    assert ml.catalog.query(ml.domain_schema, "Model") == []
    exe.upload_execution_outputs()  # default: uploaded, marked partial in the catalog
    rows = {r["Filename"]: r for r in ml.catalog.query(ml.domain_schema, "Model")}
    assert set(rows) == {"whole.bin", "torn.bin"}
    for row in rows.values():
        types = {t["Asset_Type"] for t in ml.catalog.query(ml.domain_schema, "Model_Asset_Type", {"Model": row["RID"]})}
        assert "Partial_Output" in types, row["Filename"]
    assert rows["torn.bin"]["Length"] == torn.stat().st_size


DISK_FULL_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from deriva_ml import DerivaML
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import add_domain_schema, make_workflow

    home, mode = sys.argv[1], sys.argv[2]
    ml = DerivaML("local", "full", home=home)
    add_domain_schema(ml)
    exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="full"))
    if mode == "upload":
        with exe:
            exe.asset_file_path("Model", "big.bin").write_bytes(b"b" * 200_000)
    def fill_the_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # over the limit: write() fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # every file this process writes stays tiny
    if mode == "run":
        with exe:
            p = exe.asset_file_path("Model", "big.bin")
            fill_the_disk()
            p.write_bytes(b"b" * 200_000)
    else:
        fill_the_disk()
        try:
            exe.upload_execution_outputs()
        except Exception as exc:
            print("RAISED", type(exc).__module__, type(exc).__name__, flush=True)
            print("MESSAGE", str(exc).replace(chr(10), " "), flush=True)
            print("CAUSE", type(exc.__cause__).__name__, flush=True)
    """
)


def _run_full(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "full.py"
    script.write_text(DISK_FULL_CHILD)
    home = tmp_path / "home"
    return subprocess.run(
        [sys.executable, str(script), str(home), mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DERIVA_ML_HOME": str(home)},
    )


@pytest.mark.slow
def test_full_disk_never_masks_the_users_oserror(tmp_path):
    proc = _run_full(tmp_path, "run")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = [line for line in proc.stderr.splitlines() if line and not line.startswith(" ")][-2:]
    # the exception that propagates is the user's (EFBIG, as a full disk gives ENOSPC), not sqlite3's
    assert any(line.startswith("OSError: [Errno 27]") for line in last), proc.stderr
    assert "sqlite3.OperationalError" not in proc.stderr.splitlines()[-1]
    assert "could not be marked Failed" in proc.stderr  # and it says the failure was not recorded


@pytest.mark.slow
def test_full_disk_during_upload_is_a_named_deriva_ml_error(tmp_path):
    proc = _run_full(tmp_path, "upload")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert out["RAISED"].startswith("deriva_ml."), proc.stdout + proc.stderr
    assert "big.bin" in out["MESSAGE"] or "manifest" in out["MESSAGE"], out
    assert out["CAUSE"] not in ("NoneType",), out


REMOTE_FULL_CHILD = textwrap.dedent(
    """
    import resource, signal, sys, types
    sys.path[:0] = [sys.argv[4], sys.argv[5]]
    from hatrac_server import make_store
    from deriva_ml import DerivaML
    from deriva_ml.catalog.ermrest import ErmrestCatalog
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import make_workflow

    home, host, catalog_id, hatrac_url = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[6]
    cat = ErmrestCatalog(host, catalog_id, scheme="http", credential={})
    ml = DerivaML(host, catalog_id, catalog=cat, store=make_store(types.SimpleNamespace(url=hatrac_url)), home=home)
    exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="full"))
    print("RID", exe.execution_rid, flush=True)
    with exe:
        p = exe.asset_file_path("Model", "big.bin")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # over the limit: write() fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))  # the local disk is full
        p.write_bytes(b"b" * 200_000)
    """
)


@pytest.mark.slow
def test_full_local_disk_with_a_remote_catalog_keeps_the_users_oserror(tmp_path):
    """The catalog (over HTTP) records Failed; the local manifest cannot be written: the user's OSError
    still propagates, and the manifest failure is a named DerivaML error, not a raw sqlite3 error."""
    tests = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(tests / "catalog"), str(tests / "store")]
    from ermrest_fake import FakeErmrest
    from hatrac_server import HatracTestServer, make_store

    from deriva_ml.catalog.ermrest import create_ml_catalog
    from deriva_ml.testing import add_domain_schema

    with FakeErmrest() as er, HatracTestServer() as hs:
        first = create_ml_catalog(er.host, "test", scheme="http", credential={})
        catalog_id = first.catalog_id
        first.close()
        from deriva_ml.catalog.ermrest import ErmrestCatalog

        setup = DerivaML(
            er.host,
            catalog_id,
            catalog=ErmrestCatalog(er.host, catalog_id, scheme="http", credential={}),
            store=make_store(hs),
            home=tmp_path / "setup",
        )
        add_domain_schema(setup)
        setup.close()
        script = tmp_path / "remote_full.py"
        script.write_text(REMOTE_FULL_CHILD)
        proc = subprocess.run(
            [
                sys.executable,
                str(script),
                str(tmp_path / "home"),
                er.host,
                str(catalog_id),
                str(tests / "catalog"),
                str(tests / "store"),
                hs.url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DERIVA_ML_HOME": str(tmp_path / "home")},
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line and not line.startswith(" ")]
        assert any(line.startswith("OSError: [Errno 27]") for line in lines[-3:]), proc.stderr
        assert not any(line.startswith("sqlite3.") for line in lines[-3:]), proc.stderr
        assert "could not be marked Failed" in proc.stderr and "manifest" in proc.stderr, proc.stderr
        rid = next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("RID"))
        cat = ErmrestCatalog(er.host, catalog_id, scheme="http", credential={})
        (row,) = cat.query("deriva-ml", "Execution", {"RID": rid})
        assert row["Status"] == "Failed" and "Errno 27" in row["Status_Detail"]
        cat.close()
