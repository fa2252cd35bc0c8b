"""Multirun sweeps: one parent execution per sweep, one child per Hydra job, parent status from children.

No module-global state and no ``atexit``: the sweep directory (``hydra.sweep.dir``, shared by every
job whatever launcher runs it) is the coordination point.

- ``.deriva_ml/parent.lock`` — an exclusive ``fcntl`` lock. The first job to hold it creates the parent
  execution and writes ``.deriva_ml/parent.json`` (its RID and the connection); later jobs, in this or any
  other process, read the file under the same lock.
- ``.deriva_ml/jobs/<num>.json`` — each job's outcome (child RID, status, error), written atomically.
- :class:`SweepFinalizer` — a Hydra callback; ``on_multirun_end`` runs once in the launching process after
  every job returned. It marks children whose process is gone as Aborted, derives the parent's status
  with the pure :func:`derive_parent_status` and records it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
from hydra.experimental.callback import Callback

from deriva_ml.core.status import Status

_STATE_DIR = ".deriva_ml"
_FINISHED = frozenset({Status.completed, Status.failed, Status.aborted})


def derive_parent_status(child_statuses: Iterable[Status | str]) -> Status:
    """The status of a sweep's parent execution from its children's statuses (pure).

    - any child still Created/Initializing/Pending/Running → Running (not decided yet);
    - otherwise Completed when there is at least one child and every child Completed;
    - otherwise Failed (a child Failed or was Aborted, or the sweep produced no child at all).
    """
    statuses = [Status.parse(s) for s in child_statuses]
    if any(s not in _FINISHED for s in statuses):
        return Status.running
    if statuses and all(s is Status.completed for s in statuses):
        return Status.completed
    return Status.failed


def summarize(child_statuses: Iterable[Status | str]) -> str:
    """``"3 jobs: 2 Completed, 1 Failed"`` (pure)."""
    statuses = [Status.parse(s) for s in child_statuses]
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.value] = counts.get(s.value, 0) + 1
    parts = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    return f"{len(statuses)} job{'s' if len(statuses) != 1 else ''}" + (f": {parts}" if parts else "")


def _status(value: Status | str) -> Status:
    return Status.parse(value)


@attrs.frozen
class JobOutcome:
    """What one sweep job reports in ``jobs/<num>.json``."""

    num: int
    status: Status = attrs.field(converter=_status)
    execution_rid: str | None = None
    error: str = ""


def _abs_path(value: str | os.PathLike[str]) -> Path:
    return Path(value).absolute()


@attrs.frozen
class SweepDir:
    """The shared state of one sweep, kept in ``<sweep_dir>/.deriva_ml``."""

    path: Path = attrs.field(converter=_abs_path)

    @property
    def state_dir(self) -> Path:
        return self.path / _STATE_DIR

    @property
    def parent_file(self) -> Path:
        return self.state_dir / "parent.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "parent.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def ensure_parent(self, create: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """The parent record of this sweep; ``create()`` makes it if no job has yet (exactly once).

        ``create`` returns a JSON-able mapping with at least ``rid``; it runs under the lock, so a job
        that fails to create the parent leaves no file and the next job tries again.
        """
        with self._locked():
            if self.parent_file.exists():
                return dict(json.loads(self.parent_file.read_text()))
            data = dict(create())
            _atomic_write(self.parent_file, json.dumps(data, indent=2, sort_keys=True))
            return data

    def read_parent(self) -> dict[str, Any] | None:
        if not self.parent_file.exists():
            return None
        return dict(json.loads(self.parent_file.read_text()))

    def record_job(self, outcome: JobOutcome) -> None:
        data = {
            "num": outcome.num,
            "status": outcome.status.value,
            "execution_rid": outcome.execution_rid,
            "error": outcome.error,
        }
        _atomic_write(self.state_dir / "jobs" / f"{outcome.num}.json", json.dumps(data, indent=2))

    def job_outcomes(self) -> list[JobOutcome]:
        d = self.state_dir / "jobs"
        if not d.is_dir():
            return []
        out = []
        for f in sorted(d.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1):
            data = json.loads(f.read_text())
            out.append(JobOutcome(data["num"], data["status"], data.get("execution_rid"), data.get("error", "")))
        return out


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------- finalization


def _owner_alive(ml: Any, rid: str) -> bool | None:
    """Whether the process that ran execution ``rid`` is alive (None: cannot be told from here)."""
    from deriva_ml.execution._execution import owner_is_alive
    from deriva_ml.execution._manifest import Manifest

    path = ml.execution_dir(rid) / "manifest.sqlite"
    if not path.exists():
        return None
    manifest = Manifest(path)
    try:
        owner_text = manifest.get_state("owner")
    finally:
        manifest.close()
    return owner_is_alive(json.loads(owner_text)) if owner_text else None


@attrs.frozen
class SweepResult:
    """The outcome of :func:`finalize_sweep`."""

    parent_rid: str | None
    parent_status: Status | None
    children: tuple[tuple[str, Status], ...] = ()
    failed_jobs: tuple[JobOutcome, ...] = ()
    aborted: tuple[str, ...] = ()


def finalize_sweep(sweep: SweepDir) -> SweepResult:
    """Abort dead children, then derive and record the parent's status (idempotent)."""
    from deriva_ml._log import get_logger
    from deriva_ml.execution._hydra_configs import DerivaMLConnection

    log = get_logger("deriva_ml.runner")
    parent = sweep.read_parent()
    outcomes = sweep.job_outcomes()
    # jobs that failed before they had an execution to link (bad config, unknown RID...)
    unlinked = tuple(o for o in outcomes if o.execution_rid is None and o.status is not Status.completed)
    if parent is None:
        return SweepResult(None, None, failed_jobs=unlinked)
    conn = DerivaMLConnection(**parent["connection"])
    with conn.connect() as ml:
        aborted: list[str] = []
        children: list[tuple[str, Status]] = []
        for child in ml.list_nested_executions(parent["rid"]):
            status = child.status
            if status not in _FINISHED and _owner_alive(ml, child.rid) is False:
                exe = ml.restore_execution(child.rid)
                exe.update_status(Status.aborted, "Aborted: the sweep job's process ended without finishing")
                status = Status.aborted
                aborted.append(str(child.rid))
            children.append((str(child.rid), status))
        statuses = [s for _, s in children] + [Status.failed for _ in unlinked]
        target = derive_parent_status(statuses)
        detail = f"Sweep finished: {summarize(statuses)}"
        parent_exe = ml.restore_execution(parent["rid"])
        if target is Status.running:
            log.warning("sweep has unfinished children; parent left Running", parent=parent["rid"], detail=detail)
        elif parent_exe.status is not target:
            try:
                if parent_exe.status is Status.pending:
                    parent_exe.execution_start()
                parent_exe.update_status(target, detail)
            except Exception:  # an already-finished parent is left as it is
                log.exception("could not record the parent's status", parent=parent["rid"], target=target.value)
        with contextlib.suppress(Exception):
            parent_exe.upload_execution_outputs()
        final = ml.lookup_execution(parent["rid"]).status
        return SweepResult(parent["rid"], final, tuple(children), unlinked, tuple(aborted))


class SweepFinalizer(Callback):
    """Hydra callback (``hydra.callbacks.deriva_ml_sweep``): finalize the sweep once every job returned.

    Runs in the launching process. Exits with status 1 when the parent ends Failed, so a sweep with a
    failed job fails on the command line too.
    """

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_absolute():
            sweep_dir = Path(str(config.hydra.runtime.cwd)) / sweep_dir
        sweep = SweepDir(sweep_dir)
        if not sweep.state_dir.exists():
            return  # dry run or nothing ran
        result = finalize_sweep(sweep)
        print(render_sweep_result(result), flush=True)
        if result.parent_status is Status.failed or (result.parent_rid is None and result.failed_jobs):
            raise SystemExit(1)


def render_sweep_result(result: SweepResult) -> str:
    lines = []
    if result.parent_rid is None:
        lines.append("deriva-ml-run: sweep finished without a parent execution")
    else:
        status = result.parent_status.value if result.parent_status else "?"
        lines.append(f"deriva-ml-run: sweep parent {result.parent_rid} {status}")
    for rid, status in result.children:
        lines.append(f"  child {rid} {status.value}" + (" (process gone: aborted)" if rid in result.aborted else ""))
    for job in result.failed_jobs:
        first = job.error.splitlines()[0] if job.error else ""
        lines.append(f"  job {job.num} failed before its execution existed: {first}")
    return "\n".join(lines)
