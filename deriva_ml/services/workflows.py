"""Workflows: built from the calling source, registered (deduplicated by URL and checksum), looked up.

Takes the handle's :class:`~deriva_ml.context.Ports` and :class:`~deriva_ml.services.schema.SchemaService`;
every write is planned by a pure function of :mod:`deriva_ml.core.plans`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.context import Ports
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.errors import DerivaMLException, ExecutionError, RIDNotFound
from deriva_ml.core.plans import plan_add_workflow, plan_replace_workflow_types, plan_workflow_description
from deriva_ml.core.records import Workflow
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.services.schema import SchemaService


class WorkflowService:
    """Workflow registration and lookup for one handle (remembers the RIDs it registered or found)."""

    def __init__(
        self,
        ports: Ports,
        schema: SchemaService,
        *,
        allow_dirty: bool = True,
        on_repo_root: Callable[[Path], None] | None = None,
    ) -> None:
        self.ports = ports
        self.schema = schema
        self.allow_dirty = allow_dirty
        #: called with the repository root of the first detected source (the facade records it in its ports)
        self.on_repo_root = on_repo_root
        #: (url, checksum) -> RID of workflows registered or found (rows are never re-keyed)
        self._rids: dict[tuple[str | None, str | None], RID] = {}

    def create(self, workflow: Workflow, *, caller_file: str | os.PathLike[str] | None = None) -> Workflow:
        """``workflow`` with validated types and its source detected (not registered)."""
        wf = attrs.evolve(
            workflow, workflow_type=self.schema.validate_terms(MLVocab.workflow_type, workflow.workflow_type)
        )
        return self.with_source(wf, caller_file=caller_file)

    def with_source(self, wf: Workflow, *, caller_file: str | os.PathLike[str] | None = None) -> Workflow:
        """Fill url/checksum/version/is_notebook from the calling source where the workflow lacks them."""
        from deriva_ml.source import detect_source
        from deriva_ml.source.detect import UNKNOWN_VERSION

        if wf.url and wf.checksum:  # the caller says what ran; nothing to detect a version from
            return wf if wf.version else attrs.evolve(wf, version=UNKNOWN_VERSION)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            info = detect_source(
                caller_file=caller_file, url=wf.url, checksum=wf.checksum, allow_dirty=self.allow_dirty
            )
        for w in caught:  # re-issue at the user's line, not ours
            warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
        if info.repo_root and self.ports.dirs.project_root is None and self.on_repo_root is not None:
            self.on_repo_root(Path(info.repo_root))
        return attrs.evolve(
            wf,
            url=wf.url or info.url,
            checksum=wf.checksum or info.checksum,
            version=wf.version or info.version or UNKNOWN_VERSION,
            is_notebook=wf.is_notebook or info.is_notebook,
        )

    def add(self, workflow: Workflow) -> RID:
        """Register ``workflow``; an existing row with the same URL *and* checksum is reused."""
        wf = self.with_source(workflow)
        types = self.schema.validate_terms(MLVocab.workflow_type, wf.workflow_type)
        known = self._rids.get((wf.url, wf.checksum))
        if known is not None:  # registered or found by this handle already: no second lookup
            return known
        existing = self.find_row(wf.url, wf.checksum)
        if existing is not None:
            rid = self._rids[(wf.url, wf.checksum)] = RID(existing["RID"])
            return rid
        result = self.ports.catalog.apply(plan_add_workflow(attrs.evolve(wf, workflow_type=types), self.schema.layout))
        rid = self._rids[(wf.url, wf.checksum)] = result.rids["workflow"]
        if self.ports.log is not None:
            self.ports.log.info("workflow registered", workflow_rid=rid, name=wf.name, url=wf.url)
        return rid

    def find_row(self, url: str | None, checksum: str | None) -> dict[str, Any] | None:
        """The workflow row to reuse: the first (in RID order) whose URL and Checksum both equal ours (a missing
        value matches only a missing value), so a reused row never names other code. One indexed query."""
        if not url and not checksum:
            return None
        rows = self.ports.catalog.query(
            ML_SCHEMA, "Workflow", {"URL": url or None, "Checksum": checksum or None}, order_by=["RID"], limit=1
        )
        return dict(rows[0]) if rows else None

    def from_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[CatalogWorkflow]:
        if not rows:
            return []
        rids = [r["RID"] for r in rows]
        types: dict[str, list[str]] = {r: [] for r in rids}
        if self.schema.layout.workflow_types == "column":
            for r in rows:
                if r.get("Workflow_Type"):
                    types[r["RID"]].append(r["Workflow_Type"])
        else:
            for t in self.ports.catalog.query(ML_SCHEMA, "Workflow_Workflow_Type", {"Workflow": rids}):
                types[t["Workflow"]].append(t["Workflow_Type"])
        return [CatalogWorkflow(self, workflow_from_row(r, types[r["RID"]])) for r in rows]

    def lookup(self, rid: str) -> CatalogWorkflow:
        rid = parse_rid(rid, "workflow rid")
        rows = self.ports.catalog.query(ML_SCHEMA, "Workflow", {"RID": rid})
        if not rows:
            raise RIDNotFound(rid, "Workflow")
        return self.from_rows(rows)[0]

    def lookup_by_url(self, url_or_checksum: str) -> CatalogWorkflow:
        catalog = self.ports.catalog
        rows = catalog.query(ML_SCHEMA, "Workflow", {"URL": url_or_checksum}, order_by=["RID"], limit=1)
        if not rows:
            rows = catalog.query(ML_SCHEMA, "Workflow", {"Checksum": url_or_checksum}, order_by=["RID"], limit=1)
        if not rows:
            raise DerivaMLException(f"no workflow with URL or checksum {url_or_checksum!r}")
        return self.from_rows([dict(rows[0])])[0]

    def find(self) -> list[CatalogWorkflow]:
        return self.from_rows(self.ports.catalog.query(ML_SCHEMA, "Workflow", order_by=["RID"]))


def workflow_from_row(row: Mapping[str, Any], types: Sequence[str]) -> Workflow:
    """The :class:`Workflow` of a ``Workflow`` row and its type names (pure)."""
    return Workflow(
        name=row.get("Name") or "(unnamed)",
        workflow_type=sorted(types) or ["(none)"],
        description=row.get("Description"),
        url=row.get("URL"),
        checksum=row.get("Checksum"),
        version=row.get("Version"),
        rid=row["RID"],
        is_notebook=str(row.get("URL") or "").endswith(".ipynb"),
    )


class CatalogWorkflow:
    """A workflow bound to its catalog row: ``description`` and ``workflow_type`` write through.

    Reading any field reads the frozen :class:`Workflow` record (``.record``); assigning
    ``description`` or ``workflow_type`` validates, writes the catalog, then swaps in the evolved record.
    """

    __slots__ = ("_record", "_service")

    def __init__(self, service: WorkflowService, record: Workflow) -> None:
        object.__setattr__(self, "_service", service)
        object.__setattr__(self, "_record", record)

    @property
    def record(self) -> Workflow:
        return self._record  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_record"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        rec: Workflow = self._record
        svc: WorkflowService = self._service
        if rec.rid is None:
            raise ExecutionError("this workflow is not registered in a catalog")
        if name == "description":
            new = attrs.evolve(rec, description=value)
            svc.ports.catalog.apply(plan_workflow_description(rec.rid, new.description))
        elif name == "workflow_type":
            new = attrs.evolve(rec, workflow_type=value)
            types = svc.schema.validate_terms(MLVocab.workflow_type, new.workflow_type)
            batch = plan_replace_workflow_types(rec.rid, rec.workflow_type, types, svc.schema.layout)
            if batch:
                svc.ports.catalog.apply(batch)
            new = attrs.evolve(new, workflow_type=types)
        else:
            raise AttributeError(f"workflow field {name!r} cannot be changed; only description and workflow_type")
        object.__setattr__(self, "_record", new)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CatalogWorkflow):
            return bool(self._record == other._record)
        return bool(self._record == other)

    def __hash__(self) -> int:
        return hash(self._record.rid)

    def __repr__(self) -> str:
        return f"CatalogWorkflow({self._record!r})"


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside deriva_ml."""
    pkg = str(Path(__file__).resolve().parent.parent)
    frame = sys._getframe(1)
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(pkg):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
