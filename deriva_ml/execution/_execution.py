"""The ``Execution``: one run of a workflow, as a context manager.

Shell code: it gathers inputs, calls pure functions (``transition``, ``plan_*``), hands the effects to the
catalog adapter and logs what happened. The in-memory :class:`ExecutionRecord` is replaced only after the
catalog accepted the change, so the two never disagree.
"""

from __future__ import annotations

import functools
import os
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
from deriva_ml.core.errors import ExecutionError
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    ExecutionConfiguration,
    ExecutionRecord,
    Workflow,
)
from deriva_ml.core.redact import redact_description
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status
from deriva_ml.execution import _outputs, _status
from deriva_ml.execution._inputs import download_inputs, write_metadata_files
from deriva_ml.execution._inputs import redacted_configuration_json as redacted_configuration_json
from deriva_ml.execution._manifest import REGISTERED, Manifest, ManifestEntry, Seal
from deriva_ml.execution._paths import AssetFilePath, UploadedAsset
from deriva_ml.execution._upload import (
    PARTIAL_OUTPUT as PARTIAL_OUTPUT,
)
from deriva_ml.execution._upload import (
    CatalogHint,
    ProgressCallback,
    UnsealedPolicy,
    upload,
    uploaded_assets,
)
from deriva_ml.services.assets import download_assets
from deriva_ml.services.executions import add_nested, list_nested, list_parents
from deriva_ml.store.port import DEFAULT_CHUNK_SIZE, UploadOptions

if TYPE_CHECKING:
    from deriva_ml.execution._metrics import MetricLog, MetricSummary, MetricValue
    from deriva_ml.services import Services


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
        state: Mapping[str, str] | None = None,
    ) -> None:
        """``manifest``: a restored execution's (else a new one is created); ``state``: more manifest states
        written in the same commit as the record, configuration and workflow (identity, lease)."""
        working_dir.mkdir(parents=True, exist_ok=True)
        self._services, self._record, self.dry_run = services, record, dry_run
        self.configuration, self.workflow, self.working_dir = configuration, workflow, working_dir
        self._manifest = manifest or Manifest(working_dir / "manifest.sqlite")
        #: True in the process that created this execution and ran it (not a restored one)
        self._live = manifest is None
        self._catalog_hint: CatalogHint | None = None
        self.datasets: list[Any] = []
        self.asset_paths: dict[str, list[Path]] = {}
        self._log = get_logger("deriva_ml.execution", execution_rid=record.rid, workflow_rid=workflow.rid)
        self._persist_record(state or {})

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

    def _persist_record(self, extra: Mapping[str, str]) -> None:
        """The record, configuration and workflow (and ``extra`` states) in the manifest: one commit."""
        workflow = attrs.evolve(self.workflow, description=redact_description(self.workflow.description))
        self._manifest.set_states(
            {
                "record": dumps(self._record, indent=None),
                "configuration": redacted_configuration_json(self.configuration),
                "workflow": dumps(workflow, indent=None),
                **extra,
            }
        )

    def _set_status(self, to: Status, detail: str) -> None:
        _status.set_status(self, to, detail)

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
        if self.status is Status.initializing:  # the lease was taken with the record (create_execution)
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
            self._set_status(Status.failed, _status.describe(exc))
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
            self._set_status(Status.failed, _status.describe(error))

    def __enter__(self) -> Execution:
        self.execution_start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        _status.end_run(self, exc)
        return False  # never swallow the user's exception

    # ----------------------------------------------------------------------------------------- outputs

    def _manifest_key(self, path: Path) -> str:
        return _outputs.manifest_key(self, path)

    def _register(self, table: str, schema: str, path: Path, filename: str, *args: Any) -> ManifestEntry:
        return _outputs.register(self, table, schema, path, filename, *args)

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
        meta = {**(metadata or {}), **kwargs}
        return _outputs.asset_file_path(
            self, asset_name, file_name, asset_types, copy_file, rename_file, meta, description
        )

    def _set_metadata(self, path: AssetFilePath, column: str, value: Any) -> None:
        _outputs.set_metadata(self, path, column, value)

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
        return uploaded_assets(self)

    def discard_output(self, path: str | os.PathLike[str]) -> None:
        """Forget a registered output not uploaded yet (e.g. a file registered but never written).

        ``path`` is the path ``asset_file_path`` returned (or its path relative to the working directory).
        The file itself, if any, is left alone. A cataloged output cannot be discarded.
        """
        _outputs.discard_output(self, path)

    # ------------------------------------------------------------------------------- sealing and trust

    def seal_outputs(self) -> int:
        """Seal every registered output that exists (length, MD5, mtime, inode): declare it complete.

        Done when the run ends normally; call it yourself after writing outputs outside the ``with``
        block or to vouch for the outputs of a failed run. Returns the number of outputs sealed.
        """
        return _outputs.seal_outputs(self)

    def _seal_entry(self, e: ManifestEntry, path: Path | None = None) -> Seal:
        return _outputs.seal_entry(self, e, path)

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
