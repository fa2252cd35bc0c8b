"""The sweep directory lock when the shared file system has no ``flock`` (e.g. NFS without lockd): jobs in
separate processes still create the parent exactly once, and a lock left by a dead job is taken over."""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deriva_ml.execution._lease import owner_identity, process_start_time
from deriva_ml.execution._sweep import SweepDir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _no_flock(fd: int, op: int) -> None:
    raise OSError(errno.ENOLCK, "No locks available")


def _job(sweep: str, num: int, out: str) -> None:
    def create() -> dict[str, object]:
        with open(out, "a") as fh:  # every creation is counted
            fh.write(f"{num}\n")
        time.sleep(0.2)  # a slow parent creation: the others must wait, not create their own
        return {"rid": f"P-{num}"}

    parent = SweepDir(Path(sweep)).ensure_parent(create)
    Path(out).with_name(f"seen-{num}").write_text(json.dumps(parent))


def test_parent_created_once_without_flock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fcntl, "flock", _no_flock)  # the file system refuses flock
    ctx = multiprocessing.get_context("fork")  # the children inherit the refusing flock
    out = tmp_path / "created"
    procs = [ctx.Process(target=_job, args=(str(tmp_path / "sweep"), n, str(out))) for n in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    creators = out.read_text().split()
    assert len(creators) == 1
    seen = {json.loads((tmp_path / f"seen-{n}").read_text())["rid"] for n in range(8)}
    assert seen == {f"P-{creators[0]}"}
    assert not (tmp_path / "sweep" / ".deriva_ml" / "parent.lock.excl").exists()  # released


def test_lock_file_of_a_dead_job_is_taken_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fcntl, "flock", _no_flock)
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    started = process_start_time(dead.pid)
    dead.wait()
    state = tmp_path / "sweep" / ".deriva_ml"
    state.mkdir(parents=True)
    held = {**owner_identity(), "pid": dead.pid, "started": started}
    (state / "parent.lock.excl").write_text(json.dumps(held))
    parent = SweepDir(tmp_path / "sweep").ensure_parent(lambda: {"rid": "P-1"})
    assert parent == {"rid": "P-1"}
    assert not (state / "parent.lock.excl").exists()
