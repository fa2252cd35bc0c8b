"""The ``Execution``: one run of a workflow, as a context manager.

Shell code: it gathers inputs, calls pure functions (``transition``, ``plan_*``), hands the effects to the
catalog adapter and logs what happened. The in-memory :class:`ExecutionRecord` is replaced only after the
catalog accepted the change, so the two never disagree.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import shutil
import stat as stat_mod
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path, PosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from deriva_ml._log import get_logger
from deriva_ml._process import owner_identity as owner_identity  # re-exported: one liveness check
from deriva_ml._process import owner_is_alive as owner_is_alive
from deriva_ml._process import process_start_time as process_start_time
from deriva_ml._progress import ProgressBar, progress_bar, progress_enabled
from deriva_ml.core.codec import configuration_to_json, dumps
from deriva_ml.core.definitions import ML_SCHEMA, AssetRole, ExecMetadataType, MLAsset
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import (
    DerivaMLException,
    ExecutionError,
    InvalidFileName,
    StatusConflict,
    UnknownColumn,
    UploadFailed,
)
from deriva_ml.core.plans import StoredOutput, plan_output_rows, plan_status_update
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    ExecutionConfiguration,
    ExecutionRecord,
    Workflow,
    transition,
)
from deriva_ml.core.redact import is_config_text, redact_description, redact_jsonable, redact_text
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status
from deriva_ml.execution._feature_manifest import write_pending_features
from deriva_ml.execution._manifest import (
    CATALOGED,
    REGISTERED,
    STORED,
    Manifest,
    ManifestEntry,
    ManifestError,
    Seal,
)
from deriva_ml.store._files import md5_file
from deriva_ml.store.port import DEFAULT_CHUNK_SIZE, DeferredDurability, ObjectStore, StoredObject, UploadOptions

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML
    from deriva_ml.execution._metrics import MetricLog, MetricSummary, MetricValue

ProgressCallback = Callable[[int, int], None]

#: Columns an asset row gets from the upload itself (not settable as metadata).
_ASSET_BUILTIN = frozenset({"URL", "Filename", "Length", "MD5", "Description"})
_SYSTEM = frozenset({"RID", "RCT", "RMT", "RCB", "RMB"})
#: Asset_Type term given to an output uploaded without a seal (possibly torn: see docs/security.md).
PARTIAL_OUTPUT = "Partial_Output"
_PARTIAL_DESCRIPTION = "An output uploaded without a seal: the run did not end normally, so the file may be incomplete"
UnsealedPolicy = Literal["mark", "skip", "complete"]


def redacted_configuration_json(configuration: ExecutionConfiguration) -> str:
    """``configuration.json`` text with every secret redacted (what the library writes and uploads)."""
    return json.dumps(redact_jsonable(json.loads(configuration_to_json(configuration))), indent=2, ensure_ascii=False)


def _check_plain_name(name: str) -> str:
    from deriva_ml.store.names import validate_filename

    return validate_filename(name)


class AssetFilePath(PosixPath):
    """The path ``asset_file_path`` returns: a real path, plus ``set_metadata`` for the asset row."""

    _execution: Execution | None = None
    asset_name: str = ""
    file_name: str = ""
    asset_types: tuple[str, ...] = ()

    def set_metadata(self, column: str, value: Any) -> None:
        """Set one metadata column of the asset row this file will get (validated against the table)."""
        if self._execution is None:
            raise ExecutionError(f"{self} is not registered with an execution")
        self._execution._set_metadata(self, column, value)

    def seal(self) -> None:
        """Declare this output complete now (its length and MD5 are recorded; see ``docs/security.md``)."""
        if self._execution is None:
            raise ExecutionError(f"{self} is not registered with an execution")
        execution = self._execution
        entry = execution._manifest.get(execution._manifest_key(self))
        if entry is None:
            raise ExecutionError(f"{self} is not registered with execution {execution.execution_rid}")
        execution._seal_entry(entry)

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata registered so far."""
        if self._execution is None:
            return {}
        entry = self._execution._manifest.get(self._execution._manifest_key(self))
        return dict(entry.metadata) if entry else {}


@attrs.frozen
class UploadedAsset:
    """One uploaded output: its asset table, RID, URL, file name, MD5, length and types."""

    table: str
    rid: RID
    url: str
    filename: str
    md5: str
    length: int
    asset_types: tuple[str, ...]
    path: str

    @property
    def asset_rid(self) -> RID:
        """The reference package's name for :attr:`rid` (its upload results call it ``asset_rid``)."""
        return self.rid


class Execution:
    """One run of a workflow. Use ``with ml.create_execution(config) as exe:``."""

    def __init__(
        self,
        ml: DerivaML,
        record: ExecutionRecord,
        configuration: ExecutionConfiguration,
        workflow: Workflow,
        working_dir: Path,
        *,
        dry_run: bool = False,
        manifest: Manifest | None = None,
    ) -> None:
        self._ml = ml
        self._record = record
        self.configuration = configuration
        self.workflow = workflow
        self.working_dir = working_dir
        self.dry_run = dry_run
        working_dir.mkdir(parents=True, exist_ok=True)
        self._manifest = manifest or Manifest(working_dir / "manifest.sqlite")
        #: True in the process that created this execution and ran it (not a restored one)
        self._live = manifest is None
        self._catalog_hint: _CatalogHint | None = None
        self.datasets: list[Any] = []
        self.asset_paths: dict[str, list[Path]] = {}
        self._log = get_logger("deriva_ml.execution", execution_rid=record.rid, workflow_rid=workflow.rid)
        self._persist_record()

    # ------------------------------------------------------------------------------------------ basics

    @property
    def execution_rid(self) -> RID:
        return self._record.rid

    @property
    def record(self) -> ExecutionRecord:
        """The execution's current frozen record (status, detail, times)."""
        return self._record

    @property
    def status(self) -> Status:
        return self._record.status

    def __repr__(self) -> str:
        return f"Execution(rid={self.execution_rid!r}, status={self.status.value!r}, working_dir={str(self.working_dir)!r})"

    def _persist_record(self) -> None:
        self._manifest.set_state("record", dumps(self._record, indent=None))
        self._manifest.set_state("configuration", redacted_configuration_json(self.configuration))
        workflow = attrs.evolve(self.workflow, description=redact_description(self.workflow.description))
        self._manifest.set_state("workflow", dumps(workflow, indent=None))

    def _set_status(self, to: Status, detail: str) -> None:
        # the detail goes to Status_Detail (the catalog, the journal, sync) and the log: never a secret
        detail = redact_text(detail)
        new = transition(self._record, to, detail, self._ml._now())  # raises before any I/O
        if not self.dry_run:
            try:
                # a compare-and-set: applied only if the catalog still holds the status we started from
                self._ml.catalog.apply(plan_status_update(new))
            except StatusConflict:
                self._refresh_from_catalog()
                raise
        self._record = new
        self._manifest.set_state("record", dumps(new, indent=None))
        if to in (Status.running, Status.initializing):
            self._manifest.set_state("owner", json.dumps(owner_identity()))
        self._log.info("status", status=to.value, detail=detail)

    def _refresh_from_catalog(self) -> None:
        """After a lost race: take the status the catalog holds (another handle or process changed it)."""
        from deriva_ml._ml import _caught_up

        row = self._ml.lookup_execution(self.execution_rid)
        self._record = _caught_up(self._record, row)
        self._manifest.set_state("record", dumps(self._record, indent=None))
        self._log.warning("status changed elsewhere", status=self._record.status.value)

    def update_status(self, status: Status | str, msg: str = "") -> None:
        """Report progress (``Status.running`` with a message) or change status; validated first."""
        self._set_status(Status.parse(status), msg)

    # ---------------------------------------------------------------------------------- initialization

    def _initialize(self, *, extra_metadata_files: Sequence[tuple[Path, str]] = ()) -> None:
        """Created -> Initializing -> Pending: fetch inputs, link them, write and upload metadata files.

        ``create_execution`` inserts the row already Initializing (one request); then only the lease is taken.
        """
        from deriva_ml._ml import INITIALIZING_DETAIL

        if self.status is Status.initializing:
            self._manifest.set_state("owner", json.dumps(owner_identity()))
            self._log.info("status", status=Status.initializing.value, detail=self._record.status_detail)
        else:
            self._set_status(Status.initializing, INITIALIZING_DETAIL)
        try:
            resolved = self._download_inputs()
            # configuration.json records the versions actually used
            self.configuration = attrs.evolve(self.configuration, datasets=resolved)
            self._write_metadata_files(extra_metadata_files)
            self._set_status(Status.pending, "Inputs ready")
        except BaseException as exc:
            self._set_status(Status.failed, _describe(exc))
            raise

    def _download_inputs(self) -> tuple[DatasetSpec, ...]:
        ml = self._ml
        resolved: list[DatasetSpec] = []
        for spec in self.configuration.datasets:
            bag = ml.download_dataset_bag(spec)
            self.datasets.append(bag)
            resolved.append(attrs.evolve(spec, version=bag.version))
            self.update_status(Status.initializing, f"Dataset {spec.rid} {bag.version} ready")
        by_table: dict[tuple[str, str], list[RID]] = {}
        if self.configuration.assets:
            fetched = ml._download_assets(self.configuration.assets, self.working_dir / "inputs" / "assets")
            for (schema, table), rid, path in fetched:
                by_table.setdefault((schema, table), []).append(rid)
                self.asset_paths.setdefault(table, []).append(path)
        if not self.dry_run:
            from deriva_ml.core.plans import plan_input_links

            batch = plan_input_links(self.execution_rid, [s.rid for s in resolved], by_table, ml.layout)
            if batch:
                ml.catalog.apply(batch)
        return tuple(resolved)

    def _write_metadata_files(self, extra: Sequence[tuple[Path, str]]) -> None:
        meta_dir = self.working_dir / "metadata"
        meta_dir.mkdir(parents=True, exist_ok=True)
        files: list[tuple[Path, str]] = []
        cfg = meta_dir / "configuration.json"
        cfg.write_text(redacted_configuration_json(self.configuration) + "\n")
        files.append((cfg, ExecMetadataType.deriva_config.value))
        from deriva_ml.execution._environment import environment_snapshot, redacted_lock_text, render_snapshot

        lock = self._ml._find_uv_lock()
        if lock is not None:
            dest = meta_dir / "uv.lock"
            # private index URLs may carry credentials (https://user:token@index/simple)
            dest.write_text(redacted_lock_text(Path(lock)), encoding="utf-8")
            files.append((dest, ExecMetadataType.execution_config.value))
        now = self._ml._now()
        stamp = now.strftime("%Y%m%d_%H%M%S")
        snap = meta_dir / f"environment_snapshot_{stamp}.txt"
        snap.write_text(render_snapshot(environment_snapshot(now, argv=self.configuration.argv or None)))
        files.append((snap, ExecMetadataType.runtime_env.value))
        for path, asset_type in extra:
            dest = meta_dir / path.name
            if is_config_text(path.name):
                # configuration text (YAML, JSON, TOML, INI, .env ...) is redacted like Hydra's files
                text = path.read_text(encoding="utf-8", errors="replace")
                dest.write_text(redact_text(text), encoding="utf-8")
            elif path.resolve() != dest.resolve():
                shutil.copyfile(path, dest)  # anything else (binary, data) is the user's: copied verbatim
            files.append((dest, asset_type))
        table = MLAsset.execution_metadata.value
        known = self._ml._stored_objects
        sealed: list[tuple[ManifestEntry, str, int, str]] = []
        for path, asset_type in files:
            entry = self._register(table, ML_SCHEMA, path, path.name, (asset_type,), {})
            self._seal_entry(entry)  # written completely by us
            md5, length = md5_file(path)
            sealed.append((entry, md5, length, asset_type))
        if self.dry_run:
            return
        # metadata files are uploaded at once, so they exist even if the run crashes
        hint = self._metadata_catalog_hint(table, sealed)
        self._catalog_hint = hint
        try:
            self._upload(UploadOptions(), only={e.key for e, *_ in sealed}, progress=None)
        finally:
            self._catalog_hint = None
        keys = {e.key for e, *_ in sealed}
        for e in self._manifest.entries(CATALOGED):
            if e.key in keys and e.url and e.md5 and e.asset_rid:
                known[(table, e.md5, e.filename)] = (e.url, e.length or 0, RID(e.asset_rid))

    def _metadata_catalog_hint(self, table: str, sealed: Sequence[tuple[ManifestEntry, str, int, str]]) -> _CatalogHint:
        """What the metadata upload needs to know about the catalog, with at most one request.

        A file this handle cataloged before (uv.lock of every run) is neither sent nor probed again: its URL
        and row are remembered (a stale row is caught at the insert, then everything is probed afresh). A
        file that may be in the catalog already (not remembered, and not fresh bytes like configuration.json
        or the environment snapshot) is looked up by URL before any PUT: one query for all of them, and a
        cataloged one is not sent. Fresh files are inserted with on-conflict-skip instead of probed.
        """
        known = self._ml._stored_objects
        fresh = {ExecMetadataType.deriva_config.value, ExecMetadataType.runtime_env.value}
        existing: dict[tuple[str, str, str], RID] = {}
        remembered = False
        if any((table, md5, e.filename) not in known and t not in fresh for e, md5, _, t in sealed):
            candidates: dict[str, tuple[ManifestEntry, str, int]] = {}
            for e, md5, length, _t in sealed:
                memo = known.get((table, md5, e.filename))
                url = memo[0] if memo else _plain_object_url(table, md5, e.filename)
                if url is not None:
                    candidates[url] = (e, md5, length)
            rows = self._ml.catalog.query(ML_SCHEMA, table, {"URL": sorted(candidates)}, columns=["RID", "URL", "MD5"])
            for row in rows:
                e, md5, length = candidates[row["URL"]]
                if row.get("MD5") == md5:  # the URL promises these bytes; the row agrees
                    self._manifest.mark_stored(e.key, url=row["URL"], md5=md5, length=length)
                    existing[(ML_SCHEMA, table, row["URL"])] = RID(row["RID"])
            return _CatalogHint(existing=existing, probed=frozenset(candidates), skip_conflicts=False, remembered=False)
        for e, md5, length, _t in sealed:
            memo = known.get((table, md5, e.filename))
            if memo is not None:  # the same bytes under the same name: already stored and cataloged
                self._manifest.mark_stored(e.key, url=memo[0], md5=md5, length=length)
                existing[(ML_SCHEMA, table, memo[0])] = memo[2]
                remembered = True
        return _CatalogHint(existing=existing, probed=frozenset(), skip_conflicts=True, remembered=remembered)

    # --------------------------------------------------------------------------------------- lifecycle

    def execution_start(self) -> None:
        """Pending -> Running (a Failed execution is first moved back to Pending: a retry)."""
        if self.status is Status.failed:
            self._set_status(Status.pending, "Retrying")
        self._set_status(Status.running, "Execution started")

    def execution_stop(self, error: BaseException | None = None) -> None:
        """Running -> Completed (or Failed with the exception's type and message)."""
        if error is None:
            self.seal_outputs()
            self._set_status(Status.completed, "Execution completed")
        else:
            self._set_status(Status.failed, _describe(error))

    def __enter__(self) -> Execution:
        self.execution_start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if self.status in (Status.completed, Status.failed, Status.aborted):
            # the run already recorded its own end (e.g. update_status(Status.completed) inside the block):
            # that status stands; __exit__ neither changes it nor raises
            if exc is not None:
                self._log.warning("exception after the run had ended", status=self.status.value, error=repr(exc))
            return False
        try:
            self.execution_stop(exc)
        except Exception as stop_error:
            if exc is None:
                if isinstance(stop_error, DerivaMLException):
                    raise
                raise ExecutionError(
                    f"execution {self.execution_rid}: could not record its end "
                    f"(working directory {str(self.working_dir)!r}): {type(stop_error).__name__}: {stop_error}"
                ) from stop_error
            # the user's exception is what propagates (never masked by a full disk or a lost server)
            self._log.error(
                "could not record the failure", error=_describe(exc), cause=f"{type(stop_error).__name__}: {stop_error}"
            )
            exc.add_note(
                f"deriva_ml: execution {self.execution_rid} could not be marked Failed: "
                + redact_text(f"{type(stop_error).__name__}: {stop_error}")
            )
        return False  # never swallow the user's exception

    # ----------------------------------------------------------------------------------------- outputs

    def _outputs_dir(self, table: str) -> Path:
        d = self.working_dir / "outputs" / table
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _manifest_key(self, path: Path) -> str:
        return os.path.relpath(path, self.working_dir)

    def _register(
        self,
        table: str,
        schema: str,
        path: Path,
        filename: str,
        asset_types: Sequence[str],
        metadata: Mapping[str, Any],
        description: str | None = None,
        staged: tuple[str, int, int] | None = None,
    ) -> ManifestEntry:
        return self._manifest.register(
            schema=schema,
            asset_table=table,
            path=self._manifest_key(path),
            filename=filename,
            asset_types=asset_types,
            metadata=metadata,
            description=description,
            staged=staged,
        )

    def asset_file_path(
        self,
        asset_name: str,
        file_name: str | os.PathLike[str],
        asset_types: Sequence[str] | str | None = None,
        copy_file: bool = False,
        rename_file: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> AssetFilePath:
        """Register a file for upload to the asset table ``asset_name`` and return its path.

        ``file_name`` is either a plain name (a new file: write to the returned path) or the path of an
        existing file, which is staged by symlink (or copied with ``copy_file=True``), optionally under
        ``rename_file``. ``asset_types`` must be terms of ``Asset_Type``; ``metadata`` maps columns of the
        asset table to values. Extra keyword arguments are metadata too (the reference's style). The
        registration is committed to the manifest before this returns.
        """
        ml = self._ml
        if rename_file is not None:  # checked first: its error names rename_file, whatever file_name is
            from deriva_ml.store.names import validate_filename

            validate_filename(rename_file, what="rename_file")
        table = ml._asset_table(asset_name)
        meta = dict(metadata or {})
        meta.update(kwargs)
        self._validate_metadata(table, meta)
        if isinstance(asset_types, str):
            asset_types = [asset_types]
        types = tuple(asset_types) if asset_types is not None else ml._default_asset_types(table.name)
        ml._validate_terms("Asset_Type", types)
        source = Path(file_name)
        existing = os.path.exists(source) and (source.is_absolute() or os.sep in str(file_name) or source.is_file())
        staged: tuple[str, int, int] | None = None
        if existing and source.is_file():
            name = _check_plain_name(rename_file or source.name)
            dest = self._outputs_dir(table.name) / name
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            if copy_file:
                shutil.copy2(source, dest)
            else:
                # staged on purpose: what exactly was staged is recorded (a later swap is refused)
                real = source.resolve()
                st = real.stat()
                dest.symlink_to(real)
                staged = (str(real), st.st_dev, st.st_ino)
        else:
            if existing:
                raise InvalidFileName(f"file_name={str(file_name)!r} exists but is not a regular file")
            if os.sep in str(file_name) or (os.altsep and os.altsep in str(file_name)):
                raise InvalidFileName(
                    f"file_name={str(file_name)!r} does not exist; to create a new file give a plain name "
                    f"(no directories), or stage an existing file by its path"
                )
            name = _check_plain_name(rename_file or str(file_name))
            dest = self._outputs_dir(table.name) / name
        self._register(table.name, table.schema, dest, name, types, meta, redact_description(description), staged)
        out = AssetFilePath(dest)
        out._execution = self
        out.asset_name = table.name
        out.file_name = name
        out.asset_types = types
        self._log.debug("registered output", table=table.name, file=name)
        return out

    def _validate_metadata(self, table: Any, meta: Mapping[str, Any]) -> None:
        allowed = [c.name for c in table.columns if c.name not in _ASSET_BUILTIN and c.name not in _SYSTEM]
        for col in meta:
            if col not in allowed:
                raise UnknownColumn(table.name, col, allowed)

    def _set_metadata(self, path: AssetFilePath, column: str, value: Any) -> None:
        table = self._ml._asset_table(path.asset_name)
        self._validate_metadata(table, {column: value})
        self._manifest.set_metadata(self._manifest_key(path), column, value)

    # ------------------------------------------------------------------------------------------ upload

    def upload_execution_outputs(
        self,
        timeout: tuple[float, float] = (600, 600),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_retries: int = 3,
        retry_delay: float = 5.0,
        *,
        progress: ProgressCallback | bool | None = None,
        unsealed: UnsealedPolicy = "mark",
    ) -> dict[str, list[UploadedAsset]]:
        """Upload every registered output not yet uploaded; may be called again to finish the rest.

        Files go to the object store (idempotent: the same bytes are stored once), then asset rows,
        asset types and Output links are written in one batch per table. Returns the uploaded assets by
        ``schema/table``. Failed executions upload their partial outputs too.

        Outputs are *sealed* (length, MD5) when the run ends normally. An output without a seal (the
        run failed, or was killed and this execution was restored) may be torn: ``unsealed="mark"``
        (default) uploads it with the asset type ``Partial_Output``; ``"skip"`` leaves it registered and
        local; ``"complete"`` declares it complete (sealed now, uploaded as any other output).
        Every file must still be what was registered: a symlink (other than a file staged on purpose),
        a swapped staged file or a path outside the working directory is refused.

        ``progress``: ``None`` (default) shows a bar (bytes, rate, ETA) on a terminal, not in a pipe or
        under CI, and obeys ``DERIVA_ML_PROGRESS`` (see ``docs/progress.md``); ``True``/``False`` force the
        bar on/off; a callable is called as ``progress(bytes_done, bytes_total)`` instead of the bar. The
        ``upload progress`` log events are written unless a callable is given.
        """
        if unsealed not in ("mark", "skip", "complete"):
            raise ExecutionError(f"unsealed={unsealed!r}; valid: 'mark', 'skip', 'complete'")
        if self.dry_run:
            self._log.info("dry run: nothing uploaded")
            return {}
        options = UploadOptions(
            timeout=(float(timeout[0]), float(timeout[1])),
            chunk_size=int(chunk_size),
            max_retries=int(max_retries),
            retry_delay=float(retry_delay),
        )
        # --- metrics (branch metrics): the metrics log's snapshot joins the outputs; summary rows (docs/metrics.md)
        from deriva_ml.execution._metrics import stage_metrics_upload

        stage_metrics_upload(
            self._ml.ports, self._ml._schema, self.execution_rid, self.working_dir, self._register_metrics_file
        )
        if callable(progress):
            self._upload(options, only=None, progress=progress, unsealed=unsealed)
        else:
            self._upload(options, only=None, progress=None, unsealed=unsealed, bar=progress_enabled(progress))
        result: dict[str, list[UploadedAsset]] = {}
        for e in self._manifest.entries(CATALOGED):
            result.setdefault(f"{e.schema}/{e.asset_table}", []).append(
                UploadedAsset(
                    table=e.asset_table,
                    rid=RID(e.asset_rid or ""),
                    url=e.url or "",
                    filename=e.filename,
                    md5=e.md5 or "",
                    length=e.length or 0,
                    asset_types=e.asset_types,
                    path=str(self.working_dir / e.path),
                )
            )
        return result

    def discard_output(self, path: str | os.PathLike[str]) -> None:
        """Forget a registered output not uploaded yet (e.g. a file registered but never written).

        ``path`` is the path ``asset_file_path`` returned (or its path relative to the working directory).
        The file itself, if any, is left alone. A cataloged output cannot be discarded.
        """
        p = Path(path)
        key = self._manifest_key(p) if p.is_absolute() else os.path.normpath(str(p))
        entry = self._manifest.get(key)
        if entry is None:
            known = [e.path for e in self._manifest.entries() if e.state != CATALOGED]
            raise ExecutionError(
                f"{str(path)!r} is not a registered output of {self.execution_rid}; pending: {known[:20]}"
            )
        if entry.state == CATALOGED:
            raise ExecutionError(f"{str(path)!r} is already cataloged as {entry.asset_rid}; it cannot be discarded")
        self._manifest.discard(entry.key)
        self._log.info("output discarded", file=entry.path)

    # ------------------------------------------------------------------------------- sealing and trust

    def seal_outputs(self) -> int:
        """Seal every registered output that exists (length, MD5, mtime, inode): declare it complete.

        Done when the run ends normally; call it yourself after writing outputs outside the ``with``
        block or to vouch for the outputs of a failed run. Returns the number of outputs sealed.
        """
        n = 0
        for e in self._manifest.entries(REGISTERED):
            try:
                path = self._verified_path(e)
            except (UploadFailed, ManifestError):
                continue
            if path is None:
                continue
            if e.seal is not None and _matches(e.seal, path):
                continue
            try:
                self._seal_entry(e, path)
            except DerivaMLException as exc:  # unreadable now, or the manifest cannot be written: stays unsealed
                self._log.warning("output not sealed", file=e.path, error=str(exc))
                continue
            n += 1
        return n

    def _seal_entry(self, e: ManifestEntry, path: Path | None = None) -> Seal:
        path = path or self._verified_path(e)
        if path is None:
            raise UploadFailed(f"{e.path}: cannot seal a file that does not exist")
        seal = _seal_of(path)
        self._manifest.seal(e.key, seal)
        return seal

    def _verified_path(self, e: ManifestEntry) -> Path | None:
        """The file to upload for ``e`` after checking it is what was registered (None: it does not exist).

        A manifest path must stay inside the working directory; the file there must be a regular file,
        or, for a file staged on purpose, a symlink to exactly the recorded source, which must still be
        the same file (device and inode). Anything else raises UploadFailed.
        """
        rel = Path(e.path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise UploadFailed(
                f"manifest entry {e.path!r} is outside the working directory {str(self.working_dir)!r}; refused "
                f"(call exe.discard_output({e.path!r}) to drop it)"
            )
        path = self.working_dir / rel
        root = os.path.realpath(self.working_dir)
        parent = os.path.realpath(path.parent)
        if os.path.commonpath([root, parent]) != root:
            raise UploadFailed(f"{str(path)!r} resolves outside the working directory {root!r}; refused")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UploadFailed(f"cannot read {str(path)!r}: {exc}") from exc
        if stat_mod.S_ISREG(st.st_mode):
            return path
        if stat_mod.S_ISLNK(st.st_mode) and e.staged_source is not None:
            target = os.readlink(path)
            if target != e.staged_source:
                raise UploadFailed(
                    f"{str(path)!r} was staged from {e.staged_source!r} but now points to {target!r}; refused"
                )
            try:
                sst = os.lstat(e.staged_source)
            except FileNotFoundError:
                return None
            if not stat_mod.S_ISREG(sst.st_mode) or (sst.st_dev, sst.st_ino) != (e.staged_dev, e.staged_ino):
                raise UploadFailed(
                    f"{str(path)!r}: the staged file {e.staged_source!r} was replaced since it was registered; "
                    f"refused (register it again with asset_file_path to stage the new file)"
                )
            return Path(e.staged_source)
        kind = "a symlink" if stat_mod.S_ISLNK(st.st_mode) else "not a regular file"
        raise UploadFailed(
            f"{str(path)!r} is {kind} that was not staged with asset_file_path; refused (outputs are uploaded "
            f"only as written in the working directory; call exe.discard_output({e.path!r}) to drop it)"
        )

    def _upload(
        self,
        options: UploadOptions,
        *,
        only: set[int] | None,
        progress: ProgressCallback | None,
        unsealed: UnsealedPolicy = "mark",
        bar: bool = False,
    ) -> None:
        """Upload the registered outputs (``only`` those keys); ``bar``: show a terminal progress bar."""
        with progress_bar("upload", None, "bytes", enabled=bar) as pbar:
            self._upload_with(options, only=only, progress=progress, unsealed=unsealed, pbar=pbar)

    def _upload_with(
        self,
        options: UploadOptions,
        *,
        only: set[int] | None,
        progress: ProgressCallback | None,
        unsealed: UnsealedPolicy,
        pbar: ProgressBar | None,
    ) -> None:
        ml = self._ml
        log = self._log
        pending = [e for e in self._manifest.entries(REGISTERED) if only is None or e.key in only]
        missing: list[str] = []
        refused: list[str] = []
        skipped: list[str] = []
        sizes: dict[int, int] = {}
        sources: dict[int, tuple[Path, str | None]] = {}
        live_done = self._live and self.status is Status.completed
        partial_keys: list[ManifestEntry] = []
        for e in pending:
            try:
                src = self._verified_path(e)
            except UploadFailed as exc:
                refused.append(str(exc))
                log.error("output refused", file=e.path, error=str(exc))
                continue
            if src is None:
                missing.append(e.path)
                continue
            md5: str | None = None
            if e.seal is not None and _matches(e.seal, src):
                md5 = e.seal.md5
            elif live_done or unsealed == "complete":
                # the process that ran the execution to its normal end (or the user, explicitly) vouches for it
                md5 = self._seal_entry(e, src).md5
            elif unsealed == "skip":
                skipped.append(e.path)
                continue
            else:
                partial_keys.append(e)
            sources[e.key] = (src, md5)
            sizes[e.key] = src.stat().st_size
        if partial_keys:
            ml.add_term("Asset_Type", PARTIAL_OUTPUT, _PARTIAL_DESCRIPTION, exists_ok=True)
            for e in partial_keys:
                if PARTIAL_OUTPUT not in e.asset_types:
                    self._manifest.set_asset_types(e.key, (*e.asset_types, PARTIAL_OUTPUT))
            log.warning(
                "uploading unsealed outputs marked Partial_Output",
                count=len(partial_keys),
                files=[e.path for e in partial_keys[:20]],
            )
        total = sum(sizes.values())
        if pbar is not None:
            pbar.set_total(total)
        reporter = progress or _ProgressLog(log, total, pbar)
        moved: dict[int, int] = {}
        lock = threading.Lock()

        def report(key: int, n: int) -> None:
            with lock:
                moved[key] = n
                reporter(sum(moved.values()), total)

        def put(e: ManifestEntry) -> tuple[ManifestEntry, StoredObject]:
            path, md5 = sources[e.key]
            try:
                if md5 is None:
                    md5, _length = _md5_nofollow(path)
                stored = store.put(
                    path,
                    table=e.asset_table,
                    filename=e.filename,
                    md5=md5,
                    options=options,
                    progress=functools.partial(_forward_progress, report, e.key),
                )
            except DerivaMLException:
                raise
            except OSError as exc:  # a full disk, an I/O error: name the file, keep the cause
                raise UploadFailed(f"{str(path)!r} ({e.asset_table}/{e.filename}): {exc}") from exc
            report(e.key, stored.length)
            return e, stored

        # a local store defers its fsyncs: one sync makes a whole group durable before the manifest records it
        deferred = ml.store.deferred() if isinstance(ml.store, DeferredDurability) else None
        store: ObjectStore = deferred if deferred is not None else ml.store
        landed: list[tuple[ManifestEntry, StoredObject]] = []

        def record_landed() -> None:
            batch, landed[:] = list(landed), []  # taken once: a failure here is not retried by the finally
            if not batch:
                return
            if deferred is not None:
                deferred.sync()  # every object durable before anything (manifest, then catalog) points at it
            self._manifest.mark_stored_many([(e.key, s.url, s.md5, s.length) for e, s in batch])
            for e, s in batch:
                log.info("stored", file=e.filename, table=e.asset_table, bytes=s.length, url=s.url)

        failures: list[str] = []
        first_error: BaseException | None = None
        todo = [e for e in pending if e.key in sources]
        workers = max(1, min(self._ml.upload_workers, len(todo)))
        group = 1 if deferred is None else _SYNC_GROUP
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deriva-ml-upload") as pool:
            try:
                for fut in _bounded(pool, put, todo, window=workers * _WINDOW_PER_WORKER):
                    try:
                        landed.append(fut.result())
                    except DerivaMLException as exc:
                        failures.append(str(exc))
                        first_error = first_error or exc
                        log.error("upload failed", error=str(exc))
                        continue
                    # recorded as files land (in groups when a sync is deferred), so a crash re-sends few bytes
                    if len(landed) >= group:
                        record_landed()
            finally:
                record_landed()
        stored_entries = [e for e in self._manifest.entries(STORED) if only is None or e.key in only]
        if stored_entries:
            self._catalog_outputs(stored_entries)
        # features (branch features): staged feature values, after the asset rows they may reference
        write_pending_features(ml.catalog, self._manifest, self.execution_rid, log, only=only)
        if skipped:
            log.warning("unsealed outputs left local (unsealed='skip')", count=len(skipped), files=skipped[:20])
        if failures:
            raise UploadFailed(
                f"{len(failures)} output file(s) failed to upload (the others are recorded; call "
                f"upload_execution_outputs() again to retry): " + "; ".join(failures[:5])
            ) from first_error
        if refused:
            raise UploadFailed(
                f"{len(refused)} registered output(s) refused, the rest were uploaded: " + "; ".join(refused[:5])
            )
        if missing:
            raise UploadFailed(
                f"{len(missing)} registered output file(s) do not exist, the rest were uploaded: "
                + ", ".join(missing[:20])
                + ". Write them and upload again, or drop each registration with exe.discard_output(path)"
            )

    def _catalog_outputs(self, entries: Sequence[ManifestEntry]) -> None:
        ml = self._ml
        hint, self._catalog_hint = self._catalog_hint, None  # metadata files: see _metadata_catalog_hint
        existing: dict[tuple[str, str, str], RID] = dict(hint.existing) if hint else {}
        by_table: dict[tuple[str, str], list[str]] = {}
        for e in entries:
            by_table.setdefault((e.schema, e.asset_table), []).append(e.url or "")
        for (schema, table), urls in by_table.items():
            ask = sorted({u for u in urls if (schema, table, u) not in existing and not (hint and u in hint.probed)})
            if hint and hint.skip_conflicts:
                ask = []
            for row in ml.catalog.query(schema, table, {"URL": ask}, columns=["RID", "URL"]) if ask else []:
                existing[(schema, table, row["URL"])] = RID(row["RID"])
        outputs = [
            StoredOutput(
                key=e.key,
                schema=e.schema,
                table=e.asset_table,
                url=e.url or "",
                filename=e.filename,
                length=e.length or 0,
                md5=e.md5 or "",
                description=e.description,
                asset_types=e.asset_types,
                metadata=e.metadata,
            )
            for e in entries
        ]
        batch, ident = plan_output_rows(
            self.execution_rid, outputs, existing, skip_conflicts=bool(hint and hint.skip_conflicts)
        )
        try:
            result = ml.catalog.apply(batch)
        except DerivaMLException as exc:
            if not (hint and hint.remembered):
                raise
            # a remembered metadata row is gone or changed: forget what this handle remembers, ask the catalog
            self._log.warning("remembered metadata rows are stale; probing the catalog", error=str(exc))
            ml._stored_objects.clear()
            self._catalog_outputs(entries)
            return
        rids = {key: result.rids.get(v, v) for key, v in ident.items()}
        self._manifest.mark_cataloged({k: str(v) for k, v in rids.items()})
        self._log.info("cataloged outputs", count=len(entries), tables=sorted(t for _, t in by_table))

    # ---------------------------------------------------------------------------------------- datasets

    def download_dataset_bag(self, dataset: DatasetSpec | str) -> Any:
        """The bag of an input dataset (already downloaded at initialization when listed in the config)."""
        spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec(rid=dataset)
        for bag in self.datasets:
            if bag.dataset_rid == spec.rid and (spec.version is None or bag.version == spec.version):
                return bag
        return self._ml.download_dataset_bag(spec)

    def create_dataset(
        self,
        description: str = "",
        dataset_types: Sequence[str] | str | None = None,
        version: Any = None,
    ) -> Any:
        """A new dataset recorded as an output of this execution."""
        ds = self._ml.create_dataset(
            dataset_types=dataset_types, description=description, version=version, execution_rid=self.execution_rid
        )
        if not self.dry_run:
            from deriva_ml.core.plans import dataset_link_row

            row = dataset_link_row(ds.dataset_rid, self.execution_rid, AssetRole.output, self._ml.layout)
            self._ml.catalog.apply(Batch([Insert(ML_SCHEMA, "Dataset_Execution", [row], on_conflict_skip=True)]))
        return ds

    def download_asset(self, asset_rid: str, cache: bool = False) -> Path:
        """Download one asset into this execution's inputs (and link it as an Input)."""
        fetched = self._ml._download_assets(
            [AssetSpec(rid=asset_rid, cache=cache)], self.working_dir / "inputs" / "assets"
        )
        (schema, table), rid, path = fetched[0]
        if not self.dry_run:
            from deriva_ml.core.plans import plan_input_links

            self._ml.catalog.apply(plan_input_links(self.execution_rid, [], {(schema, table): [rid]}, self._ml.layout))
        self.asset_paths.setdefault(table, []).append(path)
        return path

    # ----------------------------------------------------------------------------------------- nesting

    def add_nested_execution(self, child: Execution | str, sequence: int | None = None) -> None:
        """Link ``child`` under this execution (Execution_Execution), rejecting self-links and cycles."""
        child_rid = parse_rid(child.execution_rid if isinstance(child, Execution) else child, "child")
        self._ml._add_nested(self.execution_rid, child_rid, sequence)

    def list_nested_executions(self, recurse: bool = False) -> list[ExecutionRecord]:
        """Child executions (in Sequence order); with ``recurse=True`` all descendants, level by level."""
        return self._ml.list_nested_executions(self.execution_rid, recurse=recurse)

    def list_parent_executions(self, recurse: bool = False) -> list[ExecutionRecord]:
        """Executions this one is nested under."""
        return self._ml.list_parent_executions(self.execution_rid, recurse=recurse)

    def is_nested(self) -> bool:
        return bool(self.list_parent_executions())

    def is_parent(self) -> bool:
        return bool(self.list_nested_executions())

    # --- metrics (branch metrics)

    @functools.cached_property
    def _metric_log(self) -> MetricLog:
        import time

        from deriva_ml._ml import _utcnow
        from deriva_ml.execution._metrics import MetricLog, log_path

        clock = self._ml.ports.clock
        if clock is _utcnow:  # the default clock: read the system time directly (the same time, no datetime)
            return MetricLog(log_path(self.working_dir), time.time_ns, ns=True)
        return MetricLog(log_path(self.working_dir), clock)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record one metric value (e.g. ``exe.log_metric("loss", 0.31, step=epoch)``) with the time now.

        Appended at once to ``metrics/metrics.jsonl`` in the working directory (kept if the process is
        killed); uploaded by ``upload_execution_outputs()``. See ``docs/metrics.md``.
        """
        self._metric_log.log(name, value, step)

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Record several metric values at one step and time (one write)."""
        self._metric_log.log_many(values, step)

    def metrics(self) -> tuple[MetricValue, ...]:
        """Every value this execution logged (from the local log), in the order logged."""
        return self._metric_log.read()

    def metric_summary(self) -> dict[str, MetricSummary]:
        """Last value (step, time), min, max and count of each metric logged so far, by name."""
        from deriva_ml.execution._metrics import summarize

        return {s.name: s for s in summarize(self.metrics())}

    def _register_metrics_file(self, path: Path, asset_type: str) -> None:
        entry = self._register(MLAsset.execution_metadata.value, ML_SCHEMA, path, path.name, (asset_type,), {})
        if entry.state == REGISTERED:
            self._seal_entry(entry, path)  # written completely by us

    # --- features (branch features)

    def add_features(self, records: Iterable[Any]) -> int:
        """Validate feature records at once and commit them to this execution's manifest; they are written
        by ``upload_execution_outputs()`` after the asset rows (a value may name an output by the path
        ``asset_file_path`` returned). Returns how many new values were recorded."""
        from deriva_ml.execution._feature_manifest import stage_features

        return stage_features(self._ml.catalog, self._manifest, self.execution_rid, self.working_dir, records)

    # --- data (branch data)

    def list_assets(self, role: str | None = None) -> list[Any]:
        """Assets this execution read (``role="Input"``), wrote (``"Output"``) or both (None), as Asset records."""
        from deriva_ml.data import _assets

        if role is not None:
            role = self._ml._validate_terms("Asset_Role", [role])[0]
        return _assets.execution_assets(self._ml.ports, self.execution_rid, role)

    def list_input_datasets(self) -> list[Any]:
        """The datasets this execution took as inputs (Dataset handles)."""
        from deriva_ml.data import _assets

        return [self._ml.lookup_dataset(r) for r in _assets.execution_dataset_rids(self._ml.ports, self.execution_rid)]


_METADATA_TYPES = (
    ("configuration.json", ExecMetadataType.deriva_config.value),
    ("uv.lock", ExecMetadataType.execution_config.value),
    ("environment_snapshot_", ExecMetadataType.runtime_env.value),
    ("hydra-", ExecMetadataType.hydra_config.value),
)


def rebuild_manifest(ml: DerivaML, execution_rid: RID, work: Path, stamp: str) -> Manifest:
    """A new manifest for ``work`` rebuilt from the catalog and the directory (the old file set aside).

    Outputs the catalog links to the execution become cataloged entries (nothing is uploaded twice);
    regular files under ``outputs/<table>/`` and ``metadata/`` that are not cataloged become registered,
    unsealed entries (uploaded marked ``Partial_Output`` unless declared complete). Symlinks are not
    re-registered: what was staged cannot be known from the directory alone.
    """
    path = work / "manifest.sqlite"
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{path}{suffix}")
        if old.exists():
            old.rename(Path(f"{path}.corrupt-{stamp}{suffix}"))
    manifest = Manifest(path)
    cataloged: set[str] = set()
    for table_name in ml.list_asset_tables():
        table = ml._asset_table(table_name)
        links = ml.catalog.query(table.schema, f"{table.name}_Execution", {"Execution": execution_rid})
        rids = [r[table.name] for r in links if r.get("Asset_Role") in (None, AssetRole.output.value)]
        if not rids:
            continue
        wanted = sorted(set(rids))  # one request each for the rows and their types: the adapter splits long lists
        types_of: dict[str, list[str]] = {}
        for t in ml.catalog.query(table.schema, f"{table.name}_Asset_Type", {table.name: wanted}):
            types_of.setdefault(t[table.name], []).append(t["Asset_Type"])
        for row in ml.catalog.query(table.schema, table.name, {"RID": wanted}):
            sub = "metadata" if table.name == MLAsset.execution_metadata.value else f"outputs/{table.name}"
            rel = f"{sub}/{row['Filename']}"
            e = manifest.register(
                schema=table.schema,
                asset_table=table.name,
                path=rel,
                filename=row["Filename"],
                asset_types=types_of.get(row["RID"], []),
            )
            manifest.mark_stored(e.key, url=row["URL"], md5=row["MD5"], length=int(row["Length"] or 0))
            manifest.mark_cataloged({e.key: row["RID"]})
            cataloged.add(rel)
    for sub, table_name in [("metadata", MLAsset.execution_metadata.value)] + [
        (f"outputs/{d.name}", d.name) for d in sorted((work / "outputs").glob("*")) if d.is_dir()
    ]:
        folder = work / sub
        if not folder.is_dir():
            continue
        try:
            table = ml._asset_table(table_name)
        except DerivaMLException:
            continue
        for f in sorted(folder.iterdir()):
            rel = f"{sub}/{f.name}"
            if rel in cataloged or f.is_symlink() or not f.is_file():
                continue
            types: tuple[str, ...] = ()
            if sub == "metadata":
                types = tuple(t for prefix, t in _METADATA_TYPES if f.name.startswith(prefix))[:1]
            else:
                types = ml._default_asset_types(table.name)
            manifest.register(schema=table.schema, asset_table=table.name, path=rel, filename=f.name, asset_types=types)
    return manifest


_T = TypeVar("_T")
_R = TypeVar("_R")

#: In-flight uploads per worker thread: enough to keep every worker busy, while memory stays bounded by
#: the window (not by the number of outputs) however many files an execution wrote.
_WINDOW_PER_WORKER = 2

#: Outputs made durable (one store sync) and recorded in the manifest (one transaction) together, when
#: the store defers its fsyncs: a crash loses at most this many records, whose bytes are then re-put.
_SYNC_GROUP = 256


def _bounded(
    pool: ThreadPoolExecutor, fn: Callable[[_T], _R], items: Iterable[_T], *, window: int
) -> Iterator[Future[_R]]:
    """Submit ``fn(item)`` for each item with at most ``window`` futures in flight; yield each one done."""
    it = iter(items)
    in_flight: set[Future[_R]] = set()
    for item in it:
        in_flight.add(pool.submit(fn, item))
        if len(in_flight) >= window:
            break
    while in_flight:
        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
        for item in itertools.islice(it, len(done)):
            in_flight.add(pool.submit(fn, item))
        yield from done


def _forward_progress(report: Callable[[int, int], None], key: int, done: int, _total: int) -> None:
    report(key, done)


def _describe(exc: BaseException) -> str:
    """Status_Detail text for a failure (redacted: it goes to the catalog, the journal and sync)."""
    text = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return redact_text(text if len(text) > 2000 else f"{text}\n{tb}")[:4000]


def _md5_nofollow(path: Path) -> tuple[str, int]:
    """``(md5, length)`` of a regular file, never following a symlink put there since it was checked."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise UploadFailed(f"cannot read {str(path)!r}: {exc}") from exc
    h = hashlib.md5()
    n = 0
    with os.fdopen(fd, "rb") as f:
        while buf := f.read(1 << 20):
            h.update(buf)
            n += len(buf)
    return h.hexdigest(), n


def _seal_of(path: Path) -> Seal:
    md5, length = _md5_nofollow(path)
    st = os.stat(path)
    return Seal(md5=md5, length=length, mtime_ns=st.st_mtime_ns, ino=st.st_ino)


def _matches(seal: Seal, path: Path) -> bool:
    """The file is still what was sealed (same inode, length and modification time)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_ino, st.st_size, st.st_mtime_ns) == (seal.ino, seal.length, seal.mtime_ns)


class _ProgressLog:
    """Default upload progress: a log line per ~10% of the bytes, and the terminal bar when one is shown."""

    def __init__(self, log: Any, total: int, bar: ProgressBar | None = None) -> None:
        self.log = log
        self.total = total
        self.next_mark = 0.0
        self.bar = bar

    def __call__(self, done: int, total: int) -> None:
        frac = 1.0 if total == 0 else done / total
        if self.bar is not None:
            self.bar(done, total)
        if frac >= self.next_mark:
            self.log.info("upload progress", bytes_done=done, bytes_total=total, percent=round(frac * 100))
            self.next_mark = frac + 0.1


@attrs.frozen
class _CatalogHint:
    """What ``_metadata_catalog_hint`` learned for ``_catalog_outputs``: rows known to exist by URL,
    URLs already probed (absent then), whether to insert with on-conflict-skip instead of probing, and
    whether any known row was remembered from an earlier execution (not read now)."""

    existing: Mapping[tuple[str, str, str], RID]
    probed: frozenset[str]
    skip_conflicts: bool
    remembered: bool


def _plain_object_url(table: str, md5: str, filename: str) -> str | None:
    """The object URL the store gives these bytes under this name (its first choice), None if not valid."""
    from deriva_ml.store.names import object_url

    try:
        return object_url(table, md5, filename)
    except DerivaMLException:
        return None
