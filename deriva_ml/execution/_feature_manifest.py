"""Feature values staged by ``exe.add_features``, kept in the execution's crash-safe manifest.

``add_features`` validates every record at once (record class, target rows, referenced assets) and commits
the values to a ``feature_value`` table of the execution's ``manifest.sqlite`` (same file, same WAL
connection and transactions as the output entries) before returning. ``upload_execution_outputs()`` writes
them after the asset rows (:func:`write_pending_features`), so a value may name an output of the same
execution by the path ``asset_file_path`` returned: the path is resolved to the asset's RID then.

Exactly once: each value is ``pending`` until the catalog accepted it, then ``written``. The feature table's
unique key (Execution, target, Feature_Name) makes the insert idempotent (``on_conflict_skip``), so a crash
between the catalog write and the manifest update (or a restored execution uploading again) writes nothing
twice. One execution holds one value per target row and feature.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.catalog.port import Catalog
from deriva_ml.core.codec import parse_json
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import RIDNotFound, ValidationError
from deriva_ml.execution._manifest import CATALOGED, Manifest, staged_table_sql
from deriva_ml.feature._model import EXECUTION_COLUMN, Feature
from deriva_ml.feature._records import FeatureRecord, InvalidFeatureValue

PENDING = "pending"
WRITTEN = "written"

_SCHEMA = staged_table_sql(
    "feature_value",
    "feature_table",
    ("target TEXT NOT NULL", "row TEXT NOT NULL", "asset_paths TEXT NOT NULL DEFAULT '{}'"),
    PENDING,
    unique="schema, feature_table, target",
)


@attrs.frozen
class StagedFeature:
    """One feature value waiting in (or written from) the manifest."""

    key: int
    schema: str
    feature_table: str
    target: str
    row: Mapping[str, Any]
    #: asset column -> output path (relative to the working directory) to resolve at upload
    asset_paths: Mapping[str, str]
    state: str


class FeatureManifest:
    """The ``feature_value`` table of one execution's manifest (created on first use)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        with manifest._txn() as db:
            for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                db.execute(stmt)

    def entries(self, state: str | None = None) -> list[StagedFeature]:
        if state is None:
            rows = self.manifest._read("SELECT * FROM feature_value ORDER BY key")
        else:
            rows = self.manifest._read("SELECT * FROM feature_value WHERE state=? ORDER BY key", (state,))
        return [
            StagedFeature(
                key=r["key"],
                schema=r["schema"],
                feature_table=r["feature_table"],
                target=r["target"],
                row=parse_json(r["row"], f"{self.manifest.path}: feature value {r['key']}"),
                asset_paths=parse_json(r["asset_paths"], f"{self.manifest.path}: feature value {r['key']}"),
                state=r["state"],
            )
            for r in rows
        ]

    def stage(self, values: Sequence[tuple[str, str, str, Mapping[str, Any], Mapping[str, str]]]) -> int:
        """Commit ``(schema, feature_table, target, row, asset_paths)`` values at once; returns how many are new.

        A value identical to one already staged is a no-op; a different value for the same target and feature
        is refused (one execution holds one value per target row and feature: the table's unique key).
        """
        added = 0
        with self.manifest._txn() as db:
            for schema, table, target, row, paths in values:
                row_json = json.dumps(dict(row), sort_keys=True, default=str)
                paths_json = json.dumps(dict(paths), sort_keys=True)
                old = db.execute(
                    "SELECT row, asset_paths FROM feature_value WHERE schema=? AND feature_table=? AND target=?",
                    (schema, table, target),
                ).fetchone()
                if old is not None:
                    if (old[0], old[1]) == (row_json, paths_json):
                        continue
                    raise ValidationError(
                        f"{table}: target {target!r} already has a value from this execution ({old[0]}); "
                        f"an execution records one value per target row and feature"
                    )
                db.execute(
                    "INSERT INTO feature_value(schema, feature_table, target, row, asset_paths) VALUES(?, ?, ?, ?, ?)",
                    (schema, table, target, row_json, paths_json),
                )
                added += 1
        return added

    def mark_written(self, keys: Iterable[int]) -> None:
        with self.manifest._txn() as db:
            db.executemany("UPDATE feature_value SET state='written' WHERE key=?", [(k,) for k in keys])


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def stage_features(
    catalog: Catalog,
    manifest: Manifest,
    execution_rid: str,
    working_dir: Path,
    records: Iterable[FeatureRecord],
) -> int:
    """Validate ``records`` and commit them to the manifest (see the module docstring); returns how many."""
    records = list(records)
    staged: list[tuple[str, str, str, Mapping[str, Any], Mapping[str, str]]] = []
    targets: dict[tuple[str, str], set[str]] = {}
    asset_rids: dict[tuple[str, str], set[str]] = {}
    for rec in records:
        feature = getattr(type(rec), "feature", None)
        if not isinstance(rec, FeatureRecord) or not isinstance(feature, Feature):
            raise ValidationError(
                f"add_features: {rec!r} is not a feature record; build records with "
                f"ml.feature_record_class(table, feature_name)(...)"
            )
        cls_name = type(rec).__name__
        if rec.Execution not in (None, execution_rid):  # type: ignore[attr-defined]
            raise InvalidFeatureValue(
                cls_name,
                EXECUTION_COLUMN,
                f"{rec.Execution!r} is another execution; values are recorded for {execution_rid!r}",  # type: ignore[attr-defined]
            )
        row = {k: _json_value(v) for k, v in rec.column_values().items()}
        row[EXECUTION_COLUMN] = execution_rid
        target = row[feature.target_column]
        targets.setdefault((feature.target_table.schema, feature.target_table.name), set()).add(target)
        paths: dict[str, str] = {}
        for col, schema, table in feature.asset_tables:
            value = row.get(col)
            if isinstance(value, Path):
                key = os.path.relpath(value if value.is_absolute() else working_dir / value, working_dir)
                entry = manifest.get(key)
                if entry is None or (entry.schema, entry.asset_table) != (schema, table):
                    outputs = [e.path for e in manifest.entries() if (e.schema, e.asset_table) == (schema, table)]
                    raise InvalidFeatureValue(
                        cls_name,
                        col,
                        f"{str(value)!r} is not an output of this execution registered in {table!r}; "
                        f"registered: {outputs[:20]}",
                    )
                paths[col] = key
                row[col] = None
            elif value is not None:
                asset_rids.setdefault((schema, table), set()).add(value)
        staged.append(
            (feature.feature_table.schema, feature.feature_table.name, target, row, paths),
        )
    seen: dict[tuple[str, str, str], tuple[Any, Any]] = {}
    for s_schema, s_table, s_target, s_row, s_paths in staged:
        prior = seen.setdefault((s_schema, s_table, s_target), (s_row, s_paths))
        if prior != (s_row, s_paths):
            raise ValidationError(
                f"add_features: two different values of {s_table} for target {s_target!r}; an execution records one "
                f"value per target row and feature"
            )
    # one query per referenced table checks every target row and asset RID at once
    for (schema, table), rids in (*targets.items(), *asset_rids.items()):
        found = {r["RID"] for r in catalog.query(schema, table, {"RID": sorted(rids)}, columns=["RID"])}
        missing = sorted(rids - found)
        if missing:
            raise RIDNotFound(", ".join(missing[:20]), f"{schema}:{table}")
    return FeatureManifest(manifest).stage(staged)


def plan_feature_rows(values: Sequence[Mapping[str, Any]], tables: Sequence[tuple[str, str]]) -> Batch:
    """One idempotent insert per feature table (pure): ``values[i]`` goes to ``tables[i]``."""
    by_table: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row, table in zip(values, tables, strict=True):
        by_table.setdefault(table, []).append(row)
    return Batch([Insert(s, t, rows, on_conflict_skip=True) for (s, t), rows in by_table.items()])


def write_pending_features(
    catalog: Catalog, manifest: Manifest, execution_rid: str, log: Any, *, only: object = None
) -> int:
    """Write the staged values not yet written, after the execution's asset rows (the upload's last step).

    Asset paths are resolved to the RIDs of the cataloged outputs; a value whose asset is not cataloged yet
    (its file failed or was left local) stays pending for the next upload. Returns how many were written.
    ``only`` (a partial upload of chosen outputs) writes nothing.
    """
    if only is not None:
        return 0
    if not manifest._read("SELECT name FROM sqlite_master WHERE type='table' AND name='feature_value'"):
        return 0  # no add_features in this execution: no write to the manifest either
    fm = FeatureManifest(manifest)
    pending = fm.entries(PENDING)
    if not pending:
        return 0
    rids = {e.path: e.asset_rid for e in manifest.entries(CATALOGED)}
    ready: list[StagedFeature] = []
    rows: list[dict[str, Any]] = []
    waiting: list[str] = []
    for s in pending:
        row = dict(s.row)
        row[EXECUTION_COLUMN] = execution_rid
        unresolved = [p for p in s.asset_paths.values() if not rids.get(p)]
        if unresolved:
            waiting.extend(unresolved)
            continue
        for col, path in s.asset_paths.items():
            row[col] = rids[path]
        ready.append(s)
        rows.append(row)
    if ready:
        manifest.make_durable()  # the staged values and the asset rows they name on disk before the rows
        catalog.apply(plan_feature_rows(rows, [(s.schema, s.feature_table) for s in ready]))
        fm.mark_written(s.key for s in ready)
    if log is not None:
        log.info("feature values written", count=len(ready), tables=sorted({s.feature_table for s in ready}))
        if waiting:
            log.warning(
                "feature values wait for outputs not uploaded yet",
                count=len(pending) - len(ready),
                outputs=waiting[:20],
            )
    return len(ready)
