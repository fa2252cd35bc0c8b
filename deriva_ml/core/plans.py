"""Pure planning functions: gathered facts in, effects out.

The shell gathers what exists (rows it queried, files it hashed), calls one of these, and hands the
returned :class:`~deriva_ml.core.effects.Batch` to the catalog adapter. Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from deriva_ml.core.definitions import ML_SCHEMA, AssetRole
from deriva_ml.core.effects import Batch, Effect, Insert, Ref, SetStatus, StatusWrite, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.fields import str_tuple
from deriva_ml.core.records import ExecutionRecord, Workflow
from deriva_ml.core.redact import redact_description
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel
from deriva_ml.core.status import Status


@attrs.frozen
class MLLayout:
    """Which variant of the deriva-ml schema a catalog has (ours, or one made by a reference version).

    ``workflow_types``: ``"association"`` (a ``Workflow_Workflow_Type`` table, several types per workflow) or
    ``"column"`` (a ``Workflow_Type`` column on ``Workflow``, one type). ``dataset_role``: whether
    ``Dataset_Execution`` has the ``Asset_Role`` column that tells input from output datasets.
    """

    workflow_types: str = "association"
    dataset_role: bool = True


def ml_layout(model: CatalogModel) -> MLLayout:
    """Read the layout off a catalog model (pure)."""
    wf = model.table(ML_SCHEMA, "Workflow")
    assoc = model.table(ML_SCHEMA, "Workflow_Workflow_Type") is not None
    column = wf is not None and wf.column("Workflow_Type") is not None
    de = model.table(ML_SCHEMA, "Dataset_Execution")
    return MLLayout(
        workflow_types="column" if column and not assoc else "association",
        dataset_role=de is None or de.column("Asset_Role") is not None,
    )


def dataset_link_row(dataset: RID, execution: RID, role: AssetRole, layout: MLLayout) -> dict[str, Any]:
    """A ``Dataset_Execution`` row; the role is kept where the catalog has the column for it."""
    row: dict[str, Any] = {"Dataset": dataset, "Execution": execution}
    if layout.dataset_role:
        row["Asset_Role"] = role.value
    return row


def plan_add_workflow(workflow: Workflow, layout: MLLayout = MLLayout()) -> Batch:
    """Insert a workflow and its types in one batch (the row is labelled ``workflow``)."""
    row: dict[str, Any] = {
        "Name": workflow.name,
        "Description": redact_description(workflow.description),
        "URL": workflow.url,
        "Checksum": workflow.checksum,
        "Version": workflow.version,
    }
    if layout.workflow_types == "column":
        row["Workflow_Type"] = workflow.workflow_type[0]
        return Batch([Insert(ML_SCHEMA, "Workflow", [row], labels=["workflow"])])
    return Batch(
        [
            Insert(ML_SCHEMA, "Workflow", [row], labels=["workflow"]),
            Insert(
                ML_SCHEMA,
                "Workflow_Workflow_Type",
                [{"Workflow": Ref("workflow"), "Workflow_Type": t} for t in dict.fromkeys(workflow.workflow_type)],
            ),
        ]
    )


def plan_replace_workflow_types(
    workflow_rid: RID, old: Sequence[str], new: Sequence[str], layout: MLLayout = MLLayout()
) -> Batch:
    """Set a workflow's types to ``new``: delete the ones no longer wanted, insert the new ones."""
    from deriva_ml.core.effects import Delete

    if layout.workflow_types == "column":
        if len(new) != 1:
            raise ValidationError(f"this catalog keeps one workflow type per workflow; got {list(new)}")
        return Batch([Update(ML_SCHEMA, "Workflow", [{"RID": workflow_rid, "Workflow_Type": new[0]}])])
    gone = [t for t in old if t not in new]
    added = [t for t in dict.fromkeys(new) if t not in old]
    effects: list[Effect] = []
    if gone:
        effects.append(
            Delete(ML_SCHEMA, "Workflow_Workflow_Type", "Workflow_Type", gone, where={"Workflow": workflow_rid})
        )
    if added:
        effects.append(
            Insert(
                ML_SCHEMA,
                "Workflow_Workflow_Type",
                [{"Workflow": workflow_rid, "Workflow_Type": t} for t in added],
                on_conflict_skip=True,
            )
        )
    return Batch(effects)


def status_write(record: ExecutionRecord) -> StatusWrite:
    """The compare-and-set for a record that :func:`transition` just produced (its last history entry).

    A record whose status did not come from ``transition()`` (no history entry ending in its status) is
    refused: there is no status to compare against.
    """
    if not record.history or record.history[-1].to_status is not record.status:
        raise ValidationError(
            f"execution {record.rid}: status {record.status.value!r} was not produced by transition() "
            f"(its history does not end in that change); refusing to write it"
        )
    last = record.history[-1]
    if last.from_status is None:
        raise ValidationError(f"execution {record.rid}: the last status change has no previous status")
    return StatusWrite(record.rid, last.from_status, record.status, record.status_detail, record.duration_text)


def plan_status_update(*records: ExecutionRecord, skip_lost: bool = False) -> Batch:
    """Write each record's status, detail and (when known) duration as one compare-and-set
    (:class:`SetStatus`): the row changes only if it still holds the status the transition started from."""
    if not records:
        return Batch(())
    return Batch([SetStatus([status_write(r) for r in records], skip_lost=skip_lost)])


def plan_input_links(
    execution_rid: RID,
    dataset_rids: Sequence[RID],
    assets_by_table: Mapping[tuple[str, str], Sequence[RID]],
    layout: MLLayout = MLLayout(),
) -> Batch:
    """Link input datasets and assets to an execution (role Input), idempotently."""
    effects: list[Effect] = []
    if dataset_rids:
        effects.append(
            Insert(
                ML_SCHEMA,
                "Dataset_Execution",
                [dataset_link_row(d, execution_rid, AssetRole.input, layout) for d in dict.fromkeys(dataset_rids)],
                on_conflict_skip=True,
            )
        )
    for (schema, table), rids in sorted(assets_by_table.items()):
        if rids:
            effects.append(
                Insert(
                    schema,
                    f"{table}_Execution",
                    [
                        {table: r, "Execution": execution_rid, "Asset_Role": AssetRole.input.value}
                        for r in dict.fromkeys(rids)
                    ],
                    on_conflict_skip=True,
                )
            )
    return Batch(effects)


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ValidationError(f"StoredOutput.metadata={value!r} must be a mapping of column to value")
    return MappingProxyType(dict(value))


@attrs.frozen
class StoredOutput:
    """An output file that is in the object store and needs (or has) its catalog rows."""

    key: int
    schema: str
    table: str
    url: str
    filename: str
    length: int
    md5: str
    description: str | None = None
    asset_types: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    #: Read-only (``types.MappingProxyType``), so the frozen record cannot change in place.
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map, hash=False)


def plan_output_rows(
    execution_rid: RID,
    outputs: Sequence[StoredOutput],
    existing: Mapping[tuple[str, str, str], RID],
    *,
    skip_conflicts: bool = False,
) -> tuple[Batch, dict[int, str | RID]]:
    """Asset rows, asset types and Output links for stored outputs, batched per table.

    ``skip_conflicts``: the asset rows are inserted with on-conflict-skip (URL is a key), so a row whose URL
    is already cataloged (not probed first) is reused rather than refused; its RID is looked up then.

    ``existing`` maps ``(schema, table, URL)`` to the RID of a row already in the catalog (an earlier,
    interrupted upload of the same file, or the same bytes uploaded by another run): such a row is reused,
    never duplicated. Returns the batch and, per output key, the label (new row) or RID (existing row)
    that identifies its asset row, so the caller can map results back to manifest entries.
    """
    by_table: dict[tuple[str, str], list[StoredOutput]] = {}
    for out in outputs:
        by_table.setdefault((out.schema, out.table), []).append(out)
    effects: list[Effect] = []
    ident: dict[int, str | RID] = {}
    for (schema, table), outs in sorted(by_table.items()):
        rows: list[dict[str, Any]] = []
        labels: list[str | None] = []
        seen: dict[str, str | RID] = {}
        for out in outs:
            found = existing.get((schema, table, out.url))
            if found is not None:
                ident[out.key] = found
                continue
            if out.url in seen:  # the same bytes and name registered twice in one run: one row
                ident[out.key] = seen[out.url]
                continue
            label = f"out{out.key}"
            seen[out.url] = label
            ident[out.key] = label
            row: dict[str, Any] = {
                "URL": out.url,
                "Filename": out.filename,
                "Length": out.length,
                "MD5": out.md5,
            }
            if out.description is not None:
                row["Description"] = redact_description(out.description)
            for col, val in out.metadata.items():
                if col in row:
                    raise ValidationError(f"metadata column {col!r} of {table} is set by the upload itself")
                row[col] = val
            rows.append(row)
            labels.append(label)
        if rows:
            effects.append(Insert(schema, table, rows, labels=labels, on_conflict_skip=skip_conflicts))

        def ref(key: int) -> Any:
            v = ident[key]
            return Ref(v) if isinstance(v, str) and v.startswith("out") else v

        type_rows = [{table: ref(o.key), "Asset_Type": t} for o in outs for t in dict.fromkeys(o.asset_types)]
        if type_rows:
            effects.append(Insert(schema, f"{table}_Asset_Type", _unique(type_rows), on_conflict_skip=True))
        link_rows = [
            {table: ref(o.key), "Execution": execution_rid, "Asset_Role": AssetRole.output.value} for o in outs
        ]
        effects.append(Insert(schema, f"{table}_Execution", _unique(link_rows), on_conflict_skip=True))
    return Batch(effects), ident


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without repeats (the first of equal rows kept, in order)."""
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for row in rows:
        try:
            key: Any = frozenset(row.items())  # hashes every (column, value) pair
        except TypeError:  # a value that cannot be hashed (a list, a mapping): compared by its text
            key = tuple(sorted((k, repr(v)) for k, v in row.items()))
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def would_create_cycle(parent: RID, child: RID, edges: Iterable[tuple[RID, RID]]) -> bool:
    """True when linking ``parent -> child`` closes a cycle over the existing ``(parent, child)`` edges."""
    from deriva_ml.core.graph import nesting_cycle

    return nesting_cycle(parent, [child], edges) is not None


# ------------------------------------------------------------------------- executions, nesting, terms


def plan_insert_execution(record: ExecutionRecord) -> Batch:
    """The ``Execution`` row of a record not yet in the catalog (labelled ``execution``): its workflow,
    redacted description, and the status and detail it is inserted with (Initializing: one request
    instead of an insert and an update)."""
    row = {
        "Workflow": record.workflow_rid,
        "Description": redact_description(record.description),
        "Status": record.status.value,
        "Status_Detail": record.status_detail,
    }
    return Batch([Insert(ML_SCHEMA, "Execution", [row], labels=["execution"])])


def plan_add_nested(parent: RID, child: RID, sequence: int | None, ancestors: Iterable[tuple[RID, RID]] = ()) -> Batch:
    """Link ``child`` under ``parent`` (``Execution_Execution``, idempotent). ``ancestors``: the known
    ``(parent, child)`` edges above ``parent``; a link that would close a cycle (or nest an execution in
    itself), or a sequence that is not an integer, raises :class:`ValidationError` (nothing is planned)."""
    if parent == child:
        raise ValidationError(f"an execution cannot be nested in itself ({parent})")
    if sequence is not None and (not isinstance(sequence, int) or isinstance(sequence, bool)):
        raise ValidationError(f"sequence={sequence!r} must be an integer or None")
    if would_create_cycle(parent, child, ancestors):
        raise ValidationError(f"nesting {child} under {parent} would create a cycle")
    row = {"Execution": parent, "Nested_Execution": child, "Sequence": sequence}
    return Batch([Insert(ML_SCHEMA, "Execution_Execution", [row], on_conflict_skip=True)])


def plan_workflow_description(workflow_rid: RID, description: str | None) -> Batch:
    """Set a workflow's description (redacted like every user text the library writes)."""
    row = {"RID": workflow_rid, "Description": redact_description(description)}
    return Batch([Update(ML_SCHEMA, "Workflow", [row])])


def plan_add_term(
    schema: str, vocabulary: str, name: str, description: str = "", synonyms: Sequence[str] = ()
) -> Batch:
    """Insert one vocabulary term (skipped when another process added it meanwhile: the caller re-reads)."""
    row = {"Name": name, "Description": redact_description(description), "Synonyms": list(synonyms)}
    return Batch([Insert(schema, vocabulary, [row], on_conflict_skip=True)])


def plan_abort(records: Sequence[ExecutionRecord]) -> Batch:
    """Mark executions Aborted (records produced by ``transition(..., Status.aborted, ...)``) with one
    compare-and-set; a row whose status changed since it was read is left alone (``skip_lost``)."""
    for r in records:
        if r.status is not Status.aborted:
            raise ValidationError(f"execution {r.rid}: plan_abort got status {r.status.value!r}, not Aborted")
    return plan_status_update(*records, skip_lost=True)
