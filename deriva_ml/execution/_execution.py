"""The ``Execution``: one run of a workflow, as a context manager.

Shell code: it gathers inputs, calls pure functions (``transition``, ``plan_*``), hands the effects to the
catalog adapter and logs what happened. The in-memory :class:`ExecutionRecord` is replaced only after the
catalog accepted the change, so the two never disagree.
"""

from __future__ import annotations

import functools
import os
import shutil
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import attrs

from deriva_ml._log import get_logger
from deriva_ml._progress import progress_enabled
from deriva_ml.core.codec import dumps
from deriva_ml.core.definitions import ML_SCHEMA, AssetRole, MLAsset
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import (
    DerivaMLException,
    ExecutionError,
    InvalidFileName,
    StatusConflict,
    UnknownColumn,
    UploadFailed,
)
from deriva_ml.core.plans import plan_status_update
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    ExecutionConfiguration,
    ExecutionRecord,
    Workflow,
    transition,
)
from deriva_ml.core.redact import redact_description, redact_text
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status
from deriva_ml.execution._inputs import download_inputs, write_metadata_files
from deriva_ml.execution._inputs import redacted_configuration_json as redacted_configuration_json
from deriva_ml.execution._lease import hold_lease
from deriva_ml.execution._manifest import CATALOGED, REGISTERED, Manifest, ManifestEntry, ManifestError, Seal
from deriva_ml.execution._paths import AssetFilePath, UploadedAsset, check_plain_name
from deriva_ml.execution._upload import (
    PARTIAL_OUTPUT as PARTIAL_OUTPUT,
)
from deriva_ml.execution._upload import (
    CatalogHint,
    ProgressCallback,
    UnsealedPolicy,
    _matches,
    _seal_of,
    upload,
    verified_path,
)
from deriva_ml.services.assets import download_assets
from deriva_ml.services.executions import add_nested, list_nested, list_parents
from deriva_ml.store.port import DEFAULT_CHUNK_SIZE, UploadOptions

if TYPE_CHECKING:
    from deriva_ml.execution._metrics import MetricLog, MetricSummary, MetricValue
    from deriva_ml.services import Services

#: Columns an asset row gets from the upload itself (not settable as metadata).
_ASSET_BUILTIN = frozenset({"URL", "Filename", "Length", "MD5", "Description"})
_SYSTEM = frozenset({"RID", "RCT", "RMT", "RCB", "RMB"})


class Execution:
    """One run of a workflow. Use ``with ml.create_execution(config) as exe:``."""

    def __init__(
        self,
        services: Services,
        record: ExecutionRecord,
        configuration: ExecutionConfiguration,
        workflow: Workflow,
        working_dir: Path,
        *,
        dry_run: bool = False,
        manifest: Manifest | None = None,
    ) -> None:
        self._services = services
        self._record = record
        self.configuration = configuration
        self.workflow = workflow
        self.working_dir = working_dir
        self.dry_run = dry_run
        working_dir.mkdir(parents=True, exist_ok=True)
        self._manifest = manifest or Manifest(working_dir / "manifest.sqlite")
        #: True in the process that created this execution and ran it (not a restored one)
        self._live = manifest is None
        self._catalog_hint: CatalogHint | None = None
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
        new = transition(self._record, to, detail, self._services.ports.now())  # raises before any I/O
        if not self.dry_run:
            try:
                # a compare-and-set: applied only if the catalog still holds the status we started from
                self._services.ports.catalog.apply(plan_status_update(new))
            except StatusConflict:
                self._refresh_from_catalog()
                raise
        self._record = new
        self._manifest.set_state("record", dumps(new, indent=None))
        if to in (Status.running, Status.initializing):
            hold_lease(self._manifest)
        self._log.info("status", status=to.value, detail=detail)

    def _refresh_from_catalog(self) -> None:
        """After a lost race: take the status the catalog holds (another handle or process changed it)."""
        from deriva_ml.core.execution_rows import caught_up
        from deriva_ml.services.executions import lookup_execution

        row = lookup_execution(self._services.ports, self._services.schema, self.execution_rid)
        self._record = caught_up(self._record, row)
        self._manifest.set_state("record", dumps(self._record, indent=None))
        self._log.warning("status changed elsewhere", status=self._record.status.value)

    def update_status(self, status: Status | str, msg: str = "") -> None:
        """Report progress (``Status.running`` with a message) or change status; validated first."""
        self._set_status(Status.parse(status), msg)

    # ---------------------------------------------------------------------------------- initialization

    def _initialize(
        self, *, extra_metadata_files: Sequence[tuple[Path, str]] = (), initializing_detail: str = ""
    ) -> None:
        """Created -> Initializing -> Pending: fetch inputs, link them, write and upload metadata files.

        ``create_execution`` inserts the row already Initializing (one request); then only the lease is taken.
        """
        if self.status is Status.initializing:
            hold_lease(self._manifest)
            self._log.info("status", status=Status.initializing.value, detail=self._record.status_detail)
        else:
            self._set_status(Status.initializing, initializing_detail)
        try:
            resolved = download_inputs(self)
            # configuration.json records the versions actually used
            self.configuration = attrs.evolve(self.configuration, datasets=resolved)
            write_metadata_files(self, extra_metadata_files)
            self._set_status(Status.pending, "Inputs ready")
        except BaseException as exc:
            self._set_status(Status.failed, _describe(exc))
            raise

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
        schema = self._services.schema
        if rename_file is not None:  # checked first: its error names rename_file, whatever file_name is
            from deriva_ml.store.names import validate_filename

            validate_filename(rename_file, what="rename_file")
        table = schema.asset_table(asset_name)
        meta = dict(metadata or {})
        meta.update(kwargs)
        self._validate_metadata(table, meta)
        if isinstance(asset_types, str):
            asset_types = [asset_types]
        types = tuple(asset_types) if asset_types is not None else schema.default_asset_types(table.name)
        schema.validate_terms("Asset_Type", types)
        source = Path(file_name)
        existing = os.path.exists(source) and (source.is_absolute() or os.sep in str(file_name) or source.is_file())
        staged: tuple[str, int, int] | None = None
        if existing and source.is_file():
            name = check_plain_name(rename_file or source.name)
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
            name = check_plain_name(rename_file or str(file_name))
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
        table = self._services.schema.asset_table(path.asset_name)
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
            self._services.ports,
            self._services.schema,
            self.execution_rid,
            self.working_dir,
            self._register_metrics_file,
        )
        if callable(progress):
            upload(self, options, only=None, progress=progress, unsealed=unsealed)
        else:
            upload(self, options, only=None, progress=None, unsealed=unsealed, bar=progress_enabled(progress))
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
                path = verified_path(self, e)
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
        path = path or verified_path(self, e)
        if path is None:
            raise UploadFailed(f"{e.path}: cannot seal a file that does not exist")
        seal = _seal_of(path)
        self._manifest.seal(e.key, seal)
        return seal

    # ---------------------------------------------------------------------------------------- datasets

    def download_dataset_bag(self, dataset: DatasetSpec | str) -> Any:
        """The bag of an input dataset (already downloaded at initialization when listed in the config)."""
        spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec(rid=dataset)
        for bag in self.datasets:
            if bag.dataset_rid == spec.rid and (spec.version is None or bag.version == spec.version):
                return bag
        return self._services.download_bag(spec)

    def create_dataset(
        self,
        description: str = "",
        dataset_types: Sequence[str] | str | None = None,
        version: Any = None,
    ) -> Any:
        """A new dataset recorded as an output of this execution."""
        from deriva_ml.dataset._datasets import create_dataset

        ds = create_dataset(self._services, dataset_types, description, version, execution_rid=self.execution_rid)
        if not self.dry_run:
            from deriva_ml.core.plans import dataset_link_row

            row = dataset_link_row(ds.dataset_rid, self.execution_rid, AssetRole.output, self._services.schema.layout)
            self._services.ports.catalog.apply(
                Batch([Insert(ML_SCHEMA, "Dataset_Execution", [row], on_conflict_skip=True)])
            )
        return ds

    def download_asset(self, asset_rid: str, cache: bool = False) -> Path:
        """Download one asset into this execution's inputs (and link it as an Input)."""
        services = self._services
        fetched = download_assets(
            services.ports,
            services.schema,
            [AssetSpec(rid=asset_rid, cache=cache)],
            self.working_dir / "inputs" / "assets",
        )
        (schema, table), rid, path = fetched[0]
        if not self.dry_run:
            from deriva_ml.core.plans import plan_input_links

            services.ports.catalog.apply(
                plan_input_links(self.execution_rid, [], {(schema, table): [rid]}, services.schema.layout)
            )
        self.asset_paths.setdefault(table, []).append(path)
        return path

    # ----------------------------------------------------------------------------------------- nesting

    def add_nested_execution(self, child: Execution | str, sequence: int | None = None) -> None:
        """Link ``child`` under this execution (Execution_Execution), rejecting self-links and cycles."""
        child_rid = parse_rid(child.execution_rid if isinstance(child, Execution) else child, "child")
        add_nested(self._services.ports, self.execution_rid, child_rid, sequence)

    def list_nested_executions(self, recurse: bool = False) -> list[ExecutionRecord]:
        """Child executions (in Sequence order); with ``recurse=True`` all descendants, level by level."""
        return list_nested(self._services.ports, self.execution_rid, recurse=recurse)

    def list_parent_executions(self, recurse: bool = False) -> list[ExecutionRecord]:
        """Executions this one is nested under."""
        return list_parents(self._services.ports, self.execution_rid, recurse=recurse)

    def is_nested(self) -> bool:
        return bool(self.list_parent_executions())

    def is_parent(self) -> bool:
        return bool(self.list_nested_executions())

    # --- metrics (branch metrics)

    @functools.cached_property
    def _metric_log(self) -> MetricLog:
        import time

        from deriva_ml.context import utcnow
        from deriva_ml.execution._metrics import MetricLog, log_path

        clock = self._services.ports.clock
        if clock is utcnow:  # the default clock: read the system time directly (the same time, no datetime)
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

        return stage_features(
            self._services.ports.catalog, self._manifest, self.execution_rid, self.working_dir, records
        )

    # --- data (branch data)

    def list_assets(self, role: str | None = None) -> list[Any]:
        """Assets this execution read (``role="Input"``), wrote (``"Output"``) or both (None), as Asset records."""
        from deriva_ml.data import _assets

        if role is not None:
            role = self._services.schema.validate_terms("Asset_Role", [role])[0]
        return _assets.execution_assets(self._services.ports, self.execution_rid, role)

    def list_input_datasets(self) -> list[Any]:
        """The datasets this execution took as inputs (Dataset handles)."""
        from deriva_ml.data import _assets
        from deriva_ml.dataset._datasets import lookup_dataset

        services = self._services
        return [lookup_dataset(services, r) for r in _assets.execution_dataset_rids(services.ports, self.execution_rid)]


def _describe(exc: BaseException) -> str:
    """Status_Detail text for a failure (redacted: it goes to the catalog, the journal and sync)."""
    text = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return redact_text(text if len(text) > 2000 else f"{text}\n{tb}")[:4000]
