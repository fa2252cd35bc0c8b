"""Gathering the provenance facts of an execution from the catalog and the object store (shell).

:func:`gather_execution` reads the catalog rows of one execution — and with ``recurse=True`` of its nested
children — into a frozen :class:`~deriva_ml.provenance.facts.ExecutionFacts`. Its requests do not depend on
how many inputs or outputs the execution has: a fixed number per execution, plus one or three per asset
table and one per feature-shaped table of the model, plus two object reads (``configuration.json`` and the
environment snapshot). :func:`versions_used` (pure) pairs configured dataset versions with linked datasets.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml.core.definitions import ML_SCHEMA, AssetRole, ExecMetadataType
from deriva_ml.core.errors import RIDNotFound
from deriva_ml.provenance.facts import METRICS_FILE, AssetFact, DatasetFact, ExecutionFacts, FeatureFact, is_metadata

if TYPE_CHECKING:
    from deriva_ml.context import Ports
    from deriva_ml.core.schema_defs import CatalogModel, TableDef
    from deriva_ml.provenance.canonical import MetricsSource
    from deriva_ml.services.schema import SchemaService

__all__ = ["asset_link_tables", "feature_tables", "gather_execution", "versions_used"]

_SYSTEM = frozenset({"RID", "RCT", "RMT", "RCB", "RMB"})

# ------------------------------------------------------------------------------------------------ model


def feature_tables(model: CatalogModel) -> list[TableDef]:
    """Tables with the feature shape: an ``Execution`` column referencing deriva-ml's Execution and a
    ``Feature_Name`` column (how both deriva-ml packages lay out a feature's values)."""
    out = []
    for t in model.tables:
        names = {c.name for c in t.columns}
        if not {"Execution", "Feature_Name"} <= names or (t.schema == ML_SCHEMA and t.name == "Execution"):
            continue
        if any(fk.columns == ("Execution",) and fk.pk_table == "Execution" for fk in t.foreign_keys):
            out.append(t)
    return sorted(out, key=lambda t: (t.schema, t.name))


def asset_link_tables(model: CatalogModel) -> list[tuple[TableDef, TableDef, TableDef | None]]:
    """``(asset table, <asset>_Execution, <asset>_Asset_Type or None)`` for every asset table with a link."""
    from deriva_ml.catalog.schema import is_asset

    out = []
    for t in model.tables:
        if not is_asset(t):
            continue
        link = model.table(t.schema, f"{t.name}_Execution")
        if link is None or link.column("Execution") is None or link.column(t.name) is None:
            continue
        out.append((t, link, model.table(t.schema, f"{t.name}_Asset_Type")))
    return sorted(out, key=lambda x: (x[0].schema, x[0].name))


# ------------------------------------------------------------------------------------------------ shell


def _read_json_object(ports: Ports, asset: AssetFact, tmp: Path) -> Mapping[str, Any] | None:
    from deriva_ml.core.codec import parse_json

    dest = tmp / f"{asset.rid}-{asset.md5}"
    ports.store.get(asset.url, dest, md5=asset.md5)
    data = parse_json(dest.read_bytes(), f"{asset.table} {asset.rid} ({asset.filename})")
    return data if isinstance(data, Mapping) else None


def _metrics_of(ports: Ports, assets: Sequence[AssetFact], tmp: Path) -> dict[str, Any]:
    """The execution's logged metrics as content: ``{format, series: {name: [[step, value], ...]}}`` in the
    order logged, read from its largest uploaded metrics log (one object read, no catalog request; none when
    it logged no metric). The times of logging are left out: two runs that logged the same values are the
    same run."""
    logs = [a for a in assets if is_metadata(a) and METRICS_FILE in a.types]
    if not logs:
        return {}
    from deriva_ml.execution._metric_format import PROVENANCE_FORMAT, parse_series

    best = max(logs, key=lambda a: (a.length, a.rid))  # the log only grows: the largest holds every value
    dest = tmp / f"{best.rid}-{best.md5}"
    ports.store.get(best.url, dest, md5=best.md5)
    series: dict[str, list[list[Any]]] = {}
    for m in parse_series(dest.read_bytes()):
        series.setdefault(m.name, []).append([m.step, m.value])
    return {"format": PROVENANCE_FORMAT, "series": series} if series else {}


def _pick(assets: Sequence[AssetFact], asset_type: str, filename: str | None = None) -> AssetFact | None:
    """The newest metadata asset of ``asset_type`` (named ``filename`` when given: other files share the
    type, e.g. a replay's ``replay-of-RID.json`` is a Deriva_Config file too)."""
    found = sorted(
        (a for a in assets if is_metadata(a) and asset_type in a.types and filename in (None, a.filename)),
        key=lambda a: a.rid,
    )
    return found[-1] if found else None


def _gather_assets(ports: Ports, model: CatalogModel, rid: str) -> list[AssetFact]:
    cat = ports.catalog
    facts: list[AssetFact] = []
    for table, link, types_table in asset_link_tables(model):
        links = cat.query(link.schema, link.name, {"Execution": rid})
        if not links:
            continue
        rows = {
            r["RID"]: r
            for r in cat.query_linked(
                link.schema,
                link.name,
                {"Execution": rid},
                via=table.name,
                target_schema=table.schema,
                target_table=table.name,
            )
        }
        types: dict[str, list[str]] = {}
        if types_table is not None:
            for t in cat.query(types_table.schema, types_table.name, {table.name: sorted(rows)}):
                types.setdefault(t[table.name], []).append(t["Asset_Type"])
        for link_row in links:
            row = rows.get(link_row[table.name])
            if row is None:
                continue
            facts.append(
                AssetFact(
                    table=table.name,
                    rid=row["RID"],
                    filename=row.get("Filename") or "",
                    md5=row.get("MD5") or "",
                    length=int(row.get("Length") or 0),
                    url=row.get("URL") or "",
                    role=link_row.get("Asset_Role") or AssetRole.output.value,
                    types=types.get(row["RID"], ()),
                )
            )
    return facts


def _gather_datasets(ports: Ports, rid: str, configuration: Mapping[str, Any] | None) -> list[DatasetFact]:
    cat = ports.catalog
    links = cat.query(ML_SCHEMA, "Dataset_Execution", {"Execution": rid})
    if not links:
        return []
    rows = {
        r["RID"]: r
        for r in cat.query_linked(
            ML_SCHEMA,
            "Dataset_Execution",
            {"Execution": rid},
            via="Dataset",
            target_schema=ML_SCHEMA,
            target_table="Dataset",
        )
    }
    rids = sorted(rows)
    versions = cat.query(ML_SCHEMA, "Dataset_Version", {"Dataset": rids})
    by_rid = {v["RID"]: v for v in versions}
    by_version = {(v["Dataset"], v["Version"]): v for v in versions}
    types: dict[str, list[str]] = {}
    for t in cat.query(ML_SCHEMA, "Dataset_Dataset_Type", {"Dataset": rids}):
        types.setdefault(t["Dataset"], []).append(t["Dataset_Type"])
    specs = [(str(d.get("rid")), _version_text(d.get("version"))) for d in (configuration or {}).get("datasets") or []]
    inputs = [ln["Dataset"] for ln in links if (ln.get("Asset_Role") or AssetRole.input.value) == AssetRole.input.value]
    used = versions_used(specs, inputs)
    out = []
    for link in links:
        ds = rows.get(link["Dataset"])
        if ds is None:
            continue
        role = link.get("Asset_Role") or AssetRole.input.value
        version = used.get(ds["RID"]) if role == AssetRole.input.value else None
        vrow = by_version.get((ds["RID"], version)) if version else None
        if vrow is None:  # an output, or an input without configuration.json: the dataset's current version
            vrow = by_rid.get(ds.get("Version"))
        out.append(
            DatasetFact(
                rid=ds["RID"],
                role=role,
                version=version or (vrow or {}).get("Version"),
                snapshot=(vrow or {}).get("Snapshot"),
                description=ds.get("Description") or "",
                types=types.get(ds["RID"], ()),
            )
        )
    return out


def _rid_order(rid: str) -> tuple[int, str]:
    """Creation order of RIDs of one catalog (Crockford base32 digits sort like their values)."""
    digits = rid.replace("-", "")
    return (len(digits), digits)


def versions_used(specs: Sequence[tuple[str, str | None]], linked: Sequence[str]) -> dict[str, str | None]:
    """The version each linked input dataset was used at, from configuration.json's ``(rid, version)`` list.

    A linked RID named in the configuration takes its version. After ``deriva-ml sync`` configuration.json
    (copied byte for byte) still names the *source* catalog's RIDs: the entries left unmatched are paired
    with the linked datasets left unmatched in creation order (sync inserts rows in the order the source
    made them, so both catalogs number them in the same order). Pure.
    """
    out: dict[str, str | None] = {}
    named = dict(specs)
    for rid in linked:
        if rid in named:
            out[rid] = named[rid]
    rest_specs = sorted((r, v) for r, v in specs if r not in out)
    rest_specs.sort(key=lambda x: _rid_order(x[0]))
    rest_linked = sorted((r for r in dict.fromkeys(linked) if r not in out), key=_rid_order)
    if len(rest_specs) == len(rest_linked):
        for (_, version), rid in zip(rest_specs, rest_linked, strict=True):
            out[rid] = version
    return out


def _version_text(value: Any) -> str | None:
    """``configuration.json`` writes a version as ``{"major", "minor", "patch"}``; the catalog as text."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return f"{value.get('major')}.{value.get('minor')}.{value.get('patch')}"
    return str(value)


def _gather_features(ports: Ports, model: CatalogModel, rid: str, assets: Sequence[AssetFact]) -> list[FeatureFact]:
    """Feature values written by ``rid``, references reduced to content identities.

    A reference to a vocabulary keeps the term name; to an asset of this execution, its (table, filename,
    MD5); to any other row, the table and that row's own non-system, non-reference values (one request per
    referenced table).
    """
    from deriva_ml.catalog.schema import is_asset, is_vocabulary

    cat = ports.catalog
    own = {a.rid: {"table": a.table, "filename": a.filename, "md5": a.md5} for a in assets}
    out = []
    for table in feature_tables(model):
        rows = cat.query(table.schema, table.name, {"Execution": rid})
        if not rows:
            continue
        refs: dict[str, TableDef] = {}
        for fk in table.foreign_keys:
            if len(fk.columns) != 1 or fk.columns[0] == "Execution":
                continue
            target = model.table(fk.pk_schema, fk.pk_table)
            if target is not None and not is_vocabulary(target):
                refs[fk.columns[0]] = target
        resolved: dict[str, Any] = {}
        for col, target in sorted(refs.items()):
            wanted = sorted({r[col] for r in rows if r.get(col) and r[col] not in own})
            if not wanted:
                continue
            ref_cols = {c for fk in target.foreign_keys for c in fk.columns}
            skip = _SYSTEM | ref_cols | ({"URL"} if is_asset(target) else set())
            for r in cat.query(target.schema, target.name, {"RID": wanted}):
                resolved[r["RID"]] = {
                    "table": target.name,
                    "row": {k: _jsonable(v) for k, v in sorted(r.items()) if k not in skip},
                }
        values = []
        for r in rows:
            v: dict[str, Any] = {}
            for k, val in r.items():
                if k in _SYSTEM or k == "Execution":
                    continue
                if k in refs and val is not None:
                    v[k] = own.get(val) or resolved.get(val) or {"table": refs[k].name, "missing": True}
                else:
                    v[k] = _jsonable(val)
            values.append(v)
        out.append(FeatureFact(table=table.name, values=values))
    return out


def _jsonable(value: Any) -> Any:
    """A row value as plain JSON (dates and times as ISO text)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_iso))


def _iso(value: Any) -> str:
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def gather_execution(
    ports: Ports,
    schema: SchemaService,
    rid: str,
    recurse: bool = False,
    *,
    metrics: MetricsSource | None = None,
) -> ExecutionFacts:
    """Read the facts of execution ``rid`` (and with ``recurse``, of its nested children, depth first).

    Requests per execution, whatever the number of inputs and outputs: the Execution row, its Workflow, the
    dataset links (and when there are any: the datasets, their versions, their types), per asset table with
    an ``_Execution`` link its links (and when there are any: the rows, their types), the nested children,
    one per feature-shaped table; and two object reads (configuration.json, the environment snapshot).
    Raises :class:`RIDNotFound` when ``rid`` is not an execution.
    """
    cat = ports.catalog
    rows = cat.query(ML_SCHEMA, "Execution", {"RID": rid})
    if not rows:
        raise RIDNotFound(rid, table="Execution")
    row = rows[0]
    wf_rows = cat.query(ML_SCHEMA, "Workflow", {"RID": row["Workflow"]}) if row.get("Workflow") else []
    model = schema.model()
    assets = _gather_assets(ports, model, rid)
    configuration = environment = None
    with tempfile.TemporaryDirectory(prefix="deriva-ml-prov-") as tmp:
        cfg = _pick(assets, ExecMetadataType.deriva_config.value, "configuration.json")
        if cfg is not None:
            configuration = _read_json_object(ports, cfg, Path(tmp))
        env = _pick(assets, ExecMetadataType.runtime_env.value)
        if env is not None:
            environment = _read_json_object(ports, env, Path(tmp))
        from deriva_ml.provenance import canonical  # the hook is read at call time

        source = metrics or canonical.METRICS_SOURCE
        metric_values = (
            dict(source(ports, schema, rid)) if source is not None else _metrics_of(ports, assets, Path(tmp))
        )
    datasets = _gather_datasets(ports, rid, configuration)
    features = _gather_features(ports, model, rid, assets)
    nested = cat.query(ML_SCHEMA, "Execution_Execution", {"Execution": rid})
    child_rids = sorted(
        ((n.get("Sequence"), n["Nested_Execution"]) for n in nested),
        key=lambda x: (x[0] is None, x[0] or 0, x[1]),
    )
    children = (
        tuple((seq, gather_execution(ports, schema, child, True, metrics=metrics)) for seq, child in child_rids)
        if recurse
        else ()
    )
    return ExecutionFacts(
        rid=rid,
        execution=row,
        workflow=wf_rows[0] if wf_rows else None,
        datasets=datasets,
        assets=assets,
        configuration=configuration,
        environment=environment,
        features=features,
        metrics=metric_values,
        children=children,
        child_rids=child_rids,
        recursed=recurse,
    )
