"""Multirun sweeps: one parent execution per sweep, one child per Hydra job, parent status from children.

No module-global state and no ``atexit``: the sweep directory (``hydra.sweep.dir``, shared by every
job whatever launcher runs it) is the coordination point.

- ``.deriva_ml/parent.lock`` — an exclusive ``fcntl`` lock. The first job to hold it creates the parent
  execution and writes ``.deriva_ml/parent.json`` (its RID and the connection, never a secret: see
  :func:`parent_record`); later jobs, in this or any other process, read the file under the same lock.
- ``.deriva_ml/sweep.json`` — what was swept: the sweep's overrides, its base config choices and (for
  Hydra's basic sweeper) the number of jobs, written by :class:`SweepFinalizer` ``on_multirun_start`` in
  the launching process before any job runs. The job that creates the parent records it in the
  parent's ``configuration.json``; finalization compares the number of jobs with the children.
- ``.deriva_ml/jobs/<num>.json`` — each job's outcome (child RID, status, error), written atomically.
- :class:`SweepFinalizer` — a Hydra callback; ``on_multirun_end`` runs once in the launching process after
  every job returned. It marks children whose process is gone as Aborted, derives the parent's status
  with the pure :func:`derive_parent_status` and records it. When the launching process itself died,
  ``deriva-ml-run --finalize-sweep DIR`` runs the same finalization.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
from hydra.experimental.callback import Callback

from deriva_ml.core.codec import from_jsonable, parse_json
from deriva_ml.core.convert import json_text
from deriva_ml.core.errors import ConfigurationError, StatusConflict
from deriva_ml.core.redact import redact_argv, redact_jsonable, redact_text
from deriva_ml.core.status import Status
from deriva_ml.execution._sweep_parent import parent_record, resolved_node, restore_withheld
from deriva_ml.store._files import atomic_file

_STATE_DIR = ".deriva_ml"
_FINISHED = frozenset({Status.completed, Status.failed, Status.aborted})


def derive_parent_status(child_statuses: Iterable[Status | str], missing_jobs: int = 0) -> Status:
    """The status of a sweep's parent execution from its children's statuses (pure).

    ``missing_jobs``: jobs of the sweep that never ran (their launcher died first).

    - any child still Created/Initializing/Pending/Running → Running (not decided yet);
    - otherwise Failed when a child Failed (a model raised, or a job failed before its execution existed);
    - otherwise Aborted when a child was Aborted (its process died) or jobs are missing;
    - otherwise Completed when there is at least one child (all Completed), else Failed (nothing ran).
    """
    statuses = [Status.parse(s) for s in child_statuses]
    if any(s not in _FINISHED for s in statuses):
        return Status.running
    if Status.failed in statuses:
        return Status.failed
    if Status.aborted in statuses or missing_jobs > 0:
        return Status.aborted
    return Status.completed if statuses else Status.failed


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


def _str_tuple(value: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _str_dict(value: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()}


@attrs.frozen
class SweepInfo:
    """What a sweep was asked to do (``sweep.json``): overrides as given, base choices, number of jobs."""

    overrides: tuple[str, ...] = attrs.field(converter=_str_tuple)
    choices: dict[str, str] = attrs.field(converter=_str_dict, hash=False)
    expected_jobs: int | None = None
    #: The launching process (host, pid, start time): the owner of the sweep's parent execution, which
    #: lives as long as the sweep (a job's process may end long before, e.g. under submitit).
    launcher: dict[str, Any] | None = attrs.field(default=None, hash=False)


def _parsed(overrides: Iterable[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return list(OverridesParser.create().parse_overrides(list(overrides)))


def sweep_choices(base_choices: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, str]:
    """The config choices of a sweep as a whole: the base choices, with each swept group shown as its
    sweep (``{"model_config": "quick,long"}``); Hydra's own ``hydra/*`` groups left out."""
    out = {str(k): str(v) for k, v in base_choices.items() if v is not None and not str(k).startswith("hydra/")}
    for o in _parsed(overrides):
        key = o.key_or_group
        if o.is_sweep_override() and key in out:
            out[key] = ",".join(str(v) for v in o.sweep_string_iterator())
    return out


def count_jobs(overrides: Iterable[str]) -> int | None:
    """How many jobs Hydra's basic sweeper makes of ``overrides`` (the product of the sweeps' lengths);
    None when a sweep is not a plain list (ranges, intervals, optimiser sweepers)."""
    n = 1
    for o in _parsed(overrides):
        if not o.is_sweep_override():
            continue
        try:
            n *= len(list(o.sweep_string_iterator()))
        except Exception:  # interval sweeps cannot be enumerated
            return None
    return n


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
        """An exclusive lock over the sweep directory: ``fcntl.flock``, or, on a shared file system without
        it (``flock`` failing with ENOLCK/EOPNOTSUPP/ENOSYS, e.g. NFS without lockd), a lock file created
        with ``O_CREAT | O_EXCL`` (atomic on NFS v3+), taken over when its holder is known to be dead."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "parent.lock", "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            except OSError as e:
                if e.errno not in _NO_FLOCK:
                    raise
                with _exclusive_file(self.state_dir / "parent.lock.excl"):
                    yield
                return
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
                return _json_object(self.parent_file)
            # the first job: Hydra's sweeper has written multirun.yaml (with the raw overrides) by now
            self.redact_hydra_files()
            data = parent_record(create())
            _atomic_write(self.parent_file, json_text(data, indent=2, sort_keys=True, ascii_only=True, default=None))
            return data

    def read_parent(self) -> dict[str, Any] | None:
        if not self.parent_file.exists():
            return None
        return _json_object(self.parent_file)

    def record_job(self, outcome: JobOutcome) -> None:
        redacted = attrs.evolve(outcome, error=redact_text(outcome.error))
        _atomic_write(self.state_dir / "jobs" / f"{outcome.num}.json", json_text(redacted, indent=2, ascii_only=True))

    @property
    def sweep_file(self) -> Path:
        return self.state_dir / "sweep.json"

    def write_sweep(self, info: SweepInfo) -> None:
        redacted = attrs.evolve(
            info, overrides=redact_argv(list(info.overrides)), choices=redact_jsonable(info.choices)
        )
        _atomic_write(self.sweep_file, json_text(redacted, indent=2, sort_keys=True, ascii_only=True, default=None))

    def read_sweep(self) -> SweepInfo | None:
        if not self.sweep_file.exists():
            return None
        data = _json_object(self.sweep_file)
        return SweepInfo(
            data.get("overrides") or (), data.get("choices") or {}, data.get("expected_jobs"), data.get("launcher")
        )

    def redact_hydra_files(self, job_dir: Path | None = None) -> list[Path]:
        """Redact the files Hydra itself writes verbatim with the overrides (``+db.password=...``):
        ``multirun.yaml`` and each job's ``.hydra/*.yaml`` (only ``job_dir``'s: what a job redacts as it
        starts). Returns the files changed; unreadable files are left alone (logged)."""
        changed: list[Path] = []
        if not self.path.is_dir():
            return changed
        candidates = [self.path / "multirun.yaml"]
        hydra_dirs = [job_dir / ".hydra"] if job_dir is not None else list(self.path.rglob(".hydra"))
        candidates.extend(f for d in hydra_dirs if d.is_dir() for f in sorted(d.glob("*.yaml")))
        for f in candidates:
            try:
                if not f.is_file() or f.is_symlink():
                    continue
                text = f.read_text(encoding="utf-8", errors="replace")
                clean = redact_text(text)
                if clean != text:
                    _atomic_write(f, clean)
                    changed.append(f)
            except OSError as exc:
                from deriva_ml._log import get_logger

                get_logger("deriva_ml.runner").warning("could not redact a Hydra file", path=str(f), error=str(exc))
        return changed

    def has_state(self) -> bool:
        """Whether any job of this sweep got as far as the catalog (a parent or a job outcome)."""
        return self.parent_file.exists() or (self.state_dir / "jobs").is_dir()

    def job_outcomes(self) -> list[JobOutcome]:
        d = self.state_dir / "jobs"
        if not d.is_dir():
            return []
        out = []
        for f in sorted(d.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1):
            out.append(from_jsonable(_json_object(f), JobOutcome))
        return out


_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})
#: How long a job waits for a lock file whose holder cannot be checked (another host) before giving up.
LOCK_FILE_TIMEOUT = 600.0


@contextlib.contextmanager
def _exclusive_file(path: Path, timeout: float = LOCK_FILE_TIMEOUT) -> Iterator[None]:
    """Hold ``path`` created exclusively (it names its holder: host, pid, start time). A file left by a
    holder that died on this host is removed; one held from another host is waited for up to ``timeout``."""
    from deriva_ml.core.errors import DerivaMLException
    from deriva_ml.execution._lease import owner_identity, owner_is_alive

    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = parse_json(path.read_text() or "{}", str(path))
            except (OSError, ValueError):
                holder = {}
            if holder and owner_is_alive(holder) is False:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # its holder died while holding it
                continue
            if time.monotonic() > deadline:
                raise DerivaMLException(
                    f"sweep lock {path} is held by {holder or 'an unknown process'} for more than {timeout:.0f} s; "
                    "remove the file if that process is gone"
                ) from None
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "w") as out:
            out.write(json_text(owner_identity(), ascii_only=True, default=None))
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a sweep state file; ``ConfigurationError`` naming the file when it is not one."""
    data = parse_json(path.read_text(encoding="utf-8", errors="replace"), str(path))
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _atomic_write(path: Path, text: str) -> None:
    with atomic_file(path) as fh:  # a unique temp file per writer: concurrent jobs never share one
        fh.write(text.encode("utf-8"))


# ------------------------------------------------------------------------------------- finalization


def _owner_alive(ml: Any, rid: str) -> bool | None:
    """Whether the process that ran execution ``rid`` is alive (None: cannot be told from here)."""
    from deriva_ml.execution._lease import owner_is_alive
    from deriva_ml.execution._manifest import Manifest

    path = ml.execution_dir(rid) / "manifest.sqlite"
    if not path.exists():
        return None
    manifest = Manifest(path)
    try:
        owner_text = manifest.get_state("owner")
    finally:
        manifest.close()
    try:
        owner = parse_json(owner_text, f"owner of execution {rid}") if owner_text else None
    except ValueError:
        return None
    return owner_is_alive(owner) if isinstance(owner, dict) else None


@attrs.frozen
class SweepResult:
    """The outcome of :func:`finalize_sweep`."""

    parent_rid: str | None
    parent_status: Status | None
    children: tuple[tuple[str, Status], ...] = ()
    failed_jobs: tuple[JobOutcome, ...] = ()
    aborted: tuple[str, ...] = ()
    missing_jobs: int = 0


def _reconnect(parent: Mapping[str, Any], connection_cls: Any, live_node: Mapping[str, Any] | None = None) -> Any:
    """The catalog the sweep wrote to, opened the way its jobs opened it: the job's ``deriva_ml`` config
    (``deriva_ml_config`` in ``parent.json``, e.g. ``builds(DerivaML subclass, ...)`` or a factory that
    returns a connected DerivaML), else the plain connection recorded with it. The secret entries
    ``parent.json`` withheld come from ``live_node`` (the launching process's own config) when it has them."""
    node = parent.get("deriva_ml_config")
    if node:
        node = restore_withheld(node, parent.get("withheld") or (), live_node)
        from deriva_ml.execution.runner import _connection

        obj = _connection(node)
        return obj.connect() if isinstance(obj, connection_cls) else obj
    return connection_cls(**parent["connection"]).connect()


def finalize_sweep(sweep: SweepDir, connection_node: Mapping[str, Any] | None = None) -> SweepResult:
    """Abort dead children, then derive and record the parent's status (idempotent). ``connection_node``
    (the launching process's resolved ``deriva_ml`` config) supplies the secrets ``parent.json`` withheld;
    without it the catalog looks up the credential of its ``credential_ref`` host, as a job without one does."""
    from deriva_ml._log import get_logger
    from deriva_ml.execution._hydra_configs import DerivaMLConnection

    log = get_logger("deriva_ml.runner")
    sweep.redact_hydra_files()
    parent = sweep.read_parent()
    outcomes = sweep.job_outcomes()
    # jobs that failed before they had an execution to link (bad config, unknown RID...)
    unlinked = tuple(o for o in outcomes if o.execution_rid is None and o.status is not Status.completed)
    if parent is None:
        return SweepResult(None, None, failed_jobs=unlinked)
    with _reconnect(parent, DerivaMLConnection, connection_node) as ml:
        aborted: list[str] = []
        children: list[tuple[str, Status]] = []
        for child in ml.list_nested_executions(parent["rid"]):
            status = child.status
            if status not in _FINISHED and _owner_alive(ml, child.rid) is False:
                exe = ml.restore_execution(child.rid)
                try:
                    exe.update_status(Status.aborted, "Aborted: the sweep job's process ended without finishing")
                    aborted.append(str(child.rid))
                except StatusConflict:  # another finalizer (or the job) changed it first: keep what it wrote
                    pass
                status = exe.status
            children.append((str(child.rid), status))
        statuses = [s for _, s in children] + [Status.failed for _ in unlinked]
        info = sweep.read_sweep()
        expected = info.expected_jobs if info is not None else None
        ran = len(children) + len(unlinked)
        missing = max(0, expected - ran) if expected is not None else 0
        target = derive_parent_status(statuses, missing)
        detail = (
            f"Sweep ended early: {ran} of {expected} jobs ran: {summarize(statuses)}"
            if missing
            else f"Sweep finished: {summarize(statuses)}"
        )
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
        return SweepResult(parent["rid"], final, tuple(children), unlinked, tuple(aborted), missing)


class SweepFinalizer(Callback):
    """Hydra callback (``hydra.callbacks.deriva_ml_sweep``): finalize the sweep once every job returned.

    Runs in the launching process. ``on_multirun_start`` records what is swept (``sweep.json``);
    ``on_multirun_end`` finalizes and exits with status 1 when the parent ends Failed or Aborted, so a
    sweep with a failed job fails on the command line too.
    """

    @staticmethod
    def _sweep_dir(config: Any) -> SweepDir:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_absolute():
            sweep_dir = Path(str(config.hydra.runtime.cwd)) / sweep_dir
        return SweepDir(sweep_dir)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if config.get("dry_run", False):
            return
        from deriva_ml.execution._lease import owner_identity

        overrides = [str(o) for o in config.hydra.overrides.task]
        sweeper = str(config.hydra.runtime.choices.get("hydra/sweeper", "basic"))
        self._sweep_dir(config).write_sweep(
            SweepInfo(
                overrides,
                sweep_choices(config.hydra.runtime.choices, overrides),
                count_jobs(overrides) if sweeper == "basic" else None,
                owner_identity(),
            )
        )

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep = self._sweep_dir(config)
        sweep.redact_hydra_files()  # multirun.yaml and the jobs' .hydra files, dry run or not
        if not sweep.has_state():
            return  # dry run or nothing ran
        result = finalize_sweep(sweep, resolved_node(config.get("deriva_ml")))
        print(render_sweep_result(result), flush=True)
        if result.parent_status in (Status.failed, Status.aborted) or (
            result.parent_rid is None and result.failed_jobs
        ):
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
    if result.missing_jobs:
        lines.append(f"  {result.missing_jobs} job(s) never ran (the sweep's launching process ended first)")
    return "\n".join(lines)
