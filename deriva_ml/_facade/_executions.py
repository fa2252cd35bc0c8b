"""The facade's workflow and execution calls: register workflows, create, find, restore and nest executions,
read their metrics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from deriva_ml._facade._base import FacadeBase
from deriva_ml.core.records import ExecutionConfiguration, ExecutionRecord, Workflow
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status
from deriva_ml.services.workflows import CatalogWorkflow

if TYPE_CHECKING:
    from deriva_ml.execution._execution import Execution


class ExecutionFacade(FacadeBase):
    """``DerivaML``'s calls on workflows, executions and metrics (``services.workflows``,
    ``services.executions``, ``execution._lifecycle``, ``execution._metrics``)."""

    # ------------------------------------------------------------------------------------ workflows

    def create_workflow(
        self,
        name: str,
        workflow_type: str | Sequence[str],
        description: str = "",
        *,
        url: str | None = None,
        checksum: str | None = None,
        version: str | None = None,
        caller_file: str | os.PathLike[str] | None = None,
    ) -> Workflow:
        """A workflow for the calling script or notebook (validated, detected, not yet registered)."""
        wf = Workflow(
            name=name, workflow_type=workflow_type, description=description, url=url, checksum=checksum, version=version
        )
        return self._workflows.create(wf, caller_file=caller_file)

    def create_workflow_from_record(
        self, workflow: Workflow, *, caller_file: str | os.PathLike[str] | None = None
    ) -> Workflow:
        """:meth:`create_workflow` for a :class:`Workflow` record you already have (e.g. instantiated from a
        hydra-zen ``workflow`` config): its types validated against the ``Workflow_Type`` vocabulary (an
        unknown type raises, naming the valid ones) and its source detected from ``caller_file`` (default:
        the calling script or notebook) where the record lacks ``url``/``checksum``; an explicit
        ``url`` and ``checksum`` are kept as they are. Every other field of the record (``is_notebook``,
        ``version``, ``description``...) is kept. The workflow is not yet registered: pass it to
        :meth:`create_execution` or :meth:`add_workflow`."""
        if not isinstance(workflow, Workflow):
            from deriva_ml.core.errors import ValidationError

            raise ValidationError(f"workflow={workflow!r} must be a Workflow record")
        return self._workflows.create(workflow, caller_file=caller_file)

    def add_workflow(self, workflow: Workflow) -> RID:
        """Register ``workflow``; an existing row with the same URL *and* checksum is reused (its RID returned).

        A row's (URL, Checksum) always describes the code that ran: a run whose source file differs from
        the commit its URL names (a dirty run) has another checksum, so it gets a row of its own rather
        than joining the clean row of that URL (``docs/source-detection.md``, "Workflow identity")."""
        return self._workflows.add(workflow)

    def lookup_workflow(self, rid: str) -> CatalogWorkflow:
        """A catalog-bound workflow by RID (its description and workflow_type write through)."""
        return self._workflows.lookup(rid)

    def lookup_workflow_by_url(self, url_or_checksum: str) -> CatalogWorkflow:
        """A catalog-bound workflow by URL or git checksum (the first in RID order: a URL may have rows for
        its committed file and for dirty runs based on that commit, each with its own checksum)."""
        return self._workflows.lookup_by_url(url_or_checksum)

    def find_workflows(self) -> list[CatalogWorkflow]:
        """Every workflow in the catalog."""
        return self._workflows.find()

    # ------------------------------------------------------------------------------------ executions

    def create_execution(
        self,
        configuration: ExecutionConfiguration,
        workflow: Workflow | str | None = None,
        *,
        dry_run: bool = False,
        metadata_files: Sequence[tuple[str | os.PathLike[str], str]] = (),
    ) -> Execution:
        """Create and initialize an execution (status Pending when this returns).

        The workflow comes from ``workflow`` or ``configuration.workflow`` (neither: DerivaMLException);
        it is registered (deduplicated). Every input dataset and asset RID is checked before anything is
        written. ``dry_run=True`` downloads inputs but writes nothing to the catalog.
        """
        from deriva_ml.execution import _lifecycle

        return _lifecycle.create_execution(
            self._services(), configuration, workflow, dry_run=dry_run, metadata_files=metadata_files
        )

    def execution_dir(self, rid: str) -> Path:
        return self._ports.dirs.working_dir / "executions" / rid

    def lookup_execution(self, rid: str) -> ExecutionRecord:
        """The catalog's record of an execution."""
        from deriva_ml.services import executions as _executions

        return _executions.lookup_execution(self._ports, self._schema, rid)

    def find_executions(
        self,
        status: Status | str | None = None,
        *,
        parent: str | None = None,
        metric: str | None = None,
        order: Literal["min", "max"] | None = "min",
        min_value: float | None = None,
        max_value: float | None = None,
        limit: int | None = None,
    ) -> list[ExecutionRecord]:
        """Executions (by RID), optionally only ``status``, only the children of ``parent``; with ``metric``
        only those that logged it, whose last value is within ``[min_value, max_value]``, sorted by it
        (``order="min"``: smallest first; ``"max"``; ``None``: by RID); at most ``limit`` (docs/metrics.md)."""
        from deriva_ml.services import executions as _executions

        if parent is None and metric is None and limit is None and min_value is None and max_value is None:
            return _executions.find_executions(self._ports, status)
        from deriva_ml.execution._metrics import select_executions

        records = _executions.find_executions(self._ports, status, parent=parent)
        if metric is None and limit is None and min_value is None and max_value is None:
            return records
        return select_executions(
            self._ports, records, metric=metric, order=order, min_value=min_value, max_value=max_value, limit=limit
        )

    def restore_execution(self, execution_rid: str) -> Execution:
        """Rebuild an Execution from the catalog and its local manifest (to finish an interrupted upload)."""
        from deriva_ml.execution import _lifecycle

        return _lifecycle.restore_execution(self._services(), execution_rid)

    def abort_stale_executions(self, older_than: timedelta | None = None) -> list[ExecutionRecord]:
        """Mark as Aborted executions whose process died.

        Executions started from this machine are checked by their lease (host, pid and process start
        time); with ``older_than``, any non-terminal execution whose row was last modified longer ago is
        aborted too (progress updates refresh that time). Returns the aborted records.
        """
        from deriva_ml.execution import _lifecycle

        return _lifecycle.abort_stale_executions(self._services(), older_than)

    # --------------------------------------------------------------------------------------- nesting

    def list_nested_executions(self, execution_rid: str, recurse: bool = False) -> list[ExecutionRecord]:
        """Children in Sequence order (then RID); ``recurse`` adds grandchildren level by level."""
        from deriva_ml.services import executions as _executions

        return _executions.list_nested(self._ports, execution_rid, recurse=recurse)

    def list_parent_executions(self, execution_rid: str, recurse: bool = False) -> list[ExecutionRecord]:
        from deriva_ml.services import executions as _executions

        return _executions.list_parents(self._ports, execution_rid, recurse=recurse)

    # --------------------------------------------------------------------------------------- metrics

    def list_metrics(self, execution_rid: str) -> list[Any]:
        """Every metric value an execution logged (frozen ``MetricValue`` records, in the order logged).

        Read from its uploaded ``metrics.jsonl``; for an execution not uploaded yet, from its local log."""
        from deriva_ml.execution._metrics import read_series

        rid = parse_rid(execution_rid, "execution rid")
        return list(read_series(self._ports, rid, self.execution_dir(rid)))

    def metric_summary(self, execution_rid: str) -> dict[str, Any]:
        """Per metric name, its ``MetricSummary`` (last value, step and time, min, max, count); ``.best("min")``."""
        from deriva_ml.execution._metrics import read_summaries, summarize

        rid = parse_rid(execution_rid, "execution rid")
        found = read_summaries(self._ports, [rid]).get(str(rid))
        if found is None:
            found = summarize(self.list_metrics(rid))
        return {s.name: s for s in found}

    def add_metrics_table(self) -> bool:
        """Add the optional ``Execution_Metric`` summary table to this catalog (True if it was created)."""
        from deriva_ml.execution._metrics import add_summary_table

        return add_summary_table(self._ports)

    def best_execution(self, parent_rid: str, metric: str, order: str = "min") -> ExecutionRecord | None:
        """The child of ``parent_rid`` (a sweep) with the best last value of ``metric`` (None: no child has it)."""
        found = self.find_executions(parent=parent_rid, metric=metric, order=order, limit=1)  # type: ignore[arg-type]
        return found[0] if found else None
