"""The canonical provenance record of an execution, and its hash.

Three steps, each testable alone:

- :func:`gather_execution` (shell) reads the catalog rows of one execution — and with ``recurse=True`` of its
  nested children — into a frozen :class:`ExecutionFacts`. Its requests do not depend on how many inputs or
  outputs the execution has: a fixed number per execution, plus one or three per asset table and one per
  feature-shaped table of the model, plus two object reads (``configuration.json`` and the environment
  snapshot).
- :func:`canonical_record` (pure) turns the facts into the canonical JSON document: a ``content`` part (what
  the run *was*: code, inputs, configuration, environment, outputs, children) and a ``record`` part (what
  happened in *this* catalog: RIDs, snapshots, URLs, status, times, descriptions).
- :func:`provenance_hash` (pure) is the SHA-256 of the canonical JSON of the content part (sorted keys, no
  insignificant whitespace, UTF-8).

Inside ``content`` no RID, snapshot, URL or time appears: rows are named by content identities that survive
``deriva-ml sync`` (which gives every row a new RID and every dataset version a new snapshot, but copies
file names, MD5s, descriptions, version strings and terms unchanged). See docs/provenance.md for the list.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml.core.definitions import ML_SCHEMA, AssetRole, ExecMetadataType, MLAsset
from deriva_ml.core.errors import RIDNotFound, ValidationError

if TYPE_CHECKING:
    from deriva_ml.context import Ports
    from deriva_ml.core.schema_defs import CatalogModel, TableDef
    from deriva_ml.services.schema import SchemaService

__all__ = [
    "CANONICAL_VERSION",
    "AssetFact",
    "DatasetFact",
    "ExecutionFacts",
    "FeatureFact",
    "canonical_json",
    "canonical_record",
    "feature_tables",
    "gather_execution",
    "provenance_hash",
]

#: Names the shape of the canonical document; part of the hashed content (a new shape is a new hash).
CANONICAL_VERSION = "deriva-ml/provenance/1"

_SYSTEM = frozenset({"RID", "RCT", "RMT", "RCB", "RMB"})
#: Hydra writes ``hydra-<stamp>-config.yaml`` etc.; ``hydra.yaml`` holds run directories and times.
_HYDRA_NAME = re.compile(r"^hydra-[0-9_]+-(?P<name>.+)$")
_HYDRA_HASHED = ("config.yaml", "overrides.yaml")

#: Where an execution's metrics come from: by default its uploaded metrics log (:func:`_metrics_of`); a
#: caller may pass ``metrics=`` to :func:`gather_execution`, or set this, to read them elsewhere.
MetricsSource = Callable[["Ports", "SchemaService", str], Mapping[str, Any]]
METRICS_SOURCE: MetricsSource | None = None


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _opt_frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else _frozen(value)


def _sorted_names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(value))


def _frozen_rows(value: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    return tuple(_frozen(x) for x in value)


def _datasets(value: Iterable[DatasetFact]) -> tuple[DatasetFact, ...]:
    return tuple(value)


def _assets(value: Iterable[AssetFact]) -> tuple[AssetFact, ...]:
    return tuple(value)


def _features(value: Iterable[FeatureFact]) -> tuple[FeatureFact, ...]:
    return tuple(value)


def _children(value: Iterable[tuple[int | None, ExecutionFacts]]) -> tuple[tuple[int | None, ExecutionFacts], ...]:
    return tuple(value)


def _child_rids(value: Iterable[tuple[int | None, str]]) -> tuple[tuple[int | None, str], ...]:
    return tuple(value)


@attrs.frozen
class AssetFact:
    """One asset linked to an execution (input or output), as the catalog holds it."""

    table: str
    rid: str
    filename: str
    md5: str
    length: int
    url: str
    role: str
    types: tuple[str, ...] = attrs.field(default=(), converter=_sorted_names)


@attrs.frozen
class DatasetFact:
    """One dataset linked to an execution, with the version used (inputs) or made (outputs)."""

    rid: str
    role: str
    version: str | None
    snapshot: str | None
    description: str
    types: tuple[str, ...] = attrs.field(default=(), converter=_sorted_names)


@attrs.frozen
class FeatureFact:
    """Feature values written by an execution: ``values`` are rows already reduced to content identities."""

    table: str
    values: tuple[Mapping[str, Any], ...] = attrs.field(converter=_frozen_rows)


@attrs.frozen
class ExecutionFacts:
    """Everything the canonical record is made from: catalog rows and the two metadata files, parsed."""

    rid: str
    execution: Mapping[str, Any] = attrs.field(converter=_frozen)
    workflow: Mapping[str, Any] | None = attrs.field(converter=_opt_frozen)
    datasets: tuple[DatasetFact, ...] = attrs.field(converter=_datasets)
    assets: tuple[AssetFact, ...] = attrs.field(converter=_assets)
    #: ``configuration.json`` as uploaded (None when the execution has none).
    configuration: Mapping[str, Any] | None = attrs.field(default=None)
    #: The runtime-environment snapshot as uploaded (None when absent).
    environment: Mapping[str, Any] | None = attrs.field(default=None)
    features: tuple[FeatureFact, ...] = attrs.field(default=(), converter=_features)
    metrics: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen)
    #: ``(sequence, facts)`` of nested children, gathered only with ``recurse=True``.
    children: tuple[tuple[int | None, ExecutionFacts], ...] = attrs.field(default=(), converter=_children)
    #: ``(sequence, rid)`` of every nested child (also without ``recurse``).
    child_rids: tuple[tuple[int | None, str], ...] = attrs.field(default=(), converter=_child_rids)
    recursed: bool = False


# ------------------------------------------------------------------------------------------------ pure


def canonical_json(value: Any) -> str:
    """The canonical JSON text: sorted keys, no insignificant whitespace, non-ASCII kept (hashed as UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sorted(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(x) for x in items), key=canonical_json)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _python_version(version: Any) -> str | None:
    return str(version).split()[0] if version else None


def _packages_digest(packages: Any) -> str | None:
    if not packages:
        return None
    pairs = sorted((str(p.get("name", "")).lower(), str(p.get("version", ""))) for p in packages)
    return hashlib.sha256(canonical_json(pairs).encode("utf-8")).hexdigest()


def _hydra_name(filename: str) -> str:
    m = _HYDRA_NAME.match(filename)
    return m.group("name") if m else filename


def _is_metadata(a: AssetFact) -> bool:
    return a.table == MLAsset.execution_metadata.value


def _dataset_identity(d: DatasetFact) -> dict[str, Any]:
    return {"description": d.description, "version": d.version, "types": list(d.types)}


def _environment(facts: ExecutionFacts) -> dict[str, Any]:
    env = facts.environment or {}
    python = env.get("python") or {}
    osinfo = env.get("os") or {}
    locks = sorted(
        a.md5
        for a in facts.assets
        if _is_metadata(a) and a.filename == "uv.lock" and ExecMetadataType.execution_config.value in a.types
    )
    out: dict[str, Any] = {
        "lock_md5": locks[0] if locks else None,
        "python": _python_version(python.get("version")),
        "implementation": python.get("implementation"),
        "system": osinfo.get("system"),
        "machine": osinfo.get("machine"),
    }
    if not locks:  # no lock file recorded: the installed packages stand in for it
        out["packages_sha256"] = _packages_digest(env.get("packages"))
    return out


def _configuration(facts: ExecutionFacts) -> dict[str, Any]:
    cfg = facts.configuration or {}
    hydra = [
        {"name": _hydra_name(a.filename), "md5": a.md5}
        for a in facts.assets
        if _is_metadata(a)
        and ExecMetadataType.hydra_config.value in a.types
        and _hydra_name(a.filename) in _HYDRA_HASHED
    ]
    return {
        "config_choices": dict(sorted((cfg.get("config_choices") or {}).items())),
        # argv[0] is the program's path on the machine that ran it (the workflow names the code)
        "arguments": list(cfg.get("argv") or [])[1:],
        "hydra": _sorted(hydra),
    }


#: Metadata files whose content is represented elsewhere in the record (or carries times, paths, RIDs).
_REPRESENTED = frozenset(
    {
        ExecMetadataType.deriva_config.value,
        ExecMetadataType.runtime_env.value,
        ExecMetadataType.execution_config.value,
        ExecMetadataType.hydra_config.value,
    }
)


#: Asset type of the training-metric log uploaded by ``exe.log_metric`` (branch metrics).
_METRICS_FILE = "Metrics_File"


def _content(facts: ExecutionFacts) -> dict[str, Any]:
    wf = facts.workflow or {}
    inputs = [a for a in facts.assets if a.role == AssetRole.input.value]
    # the metrics log (times of logging in its bytes) is represented by ``outputs.metrics`` when a metrics
    # source is wired; without one, its MD5 stands for the metrics
    skip = _REPRESENTED | ({_METRICS_FILE} if facts.metrics else set())
    outputs = [
        a for a in facts.assets if a.role != AssetRole.input.value and not (_is_metadata(a) and skip & set(a.types))
    ]
    content: dict[str, Any] = {
        "canonical": CANONICAL_VERSION,
        "workflow": {"url": wf.get("URL"), "checksum": wf.get("Checksum"), "version": wf.get("Version")},
        "inputs": {
            "datasets": _sorted([_dataset_identity(d) for d in facts.datasets if d.role != AssetRole.output.value]),
            "assets": _sorted([{"table": a.table, "filename": a.filename, "md5": a.md5} for a in inputs]),
        },
        "configuration": _configuration(facts),
        "environment": _environment(facts),
        "outputs": {
            "assets": _sorted(
                [
                    {"table": a.table, "filename": a.filename, "md5": a.md5, "length": a.length, "types": list(a.types)}
                    for a in outputs
                ]
            ),
            "datasets": _sorted([_dataset_identity(d) for d in facts.datasets if d.role == AssetRole.output.value]),
            "features": sorted(
                ({"table": f.table, "values": _sorted(f.values)} for f in facts.features if f.values),
                key=canonical_json,
            ),
            "metrics": json.loads(canonical_json(dict(facts.metrics))),
        },
    }
    if facts.recursed:
        content["children"] = [{"sequence": seq, "content": c} for seq, c, _ in _ordered_children(facts)]
    return content


def _ordered_children(facts: ExecutionFacts) -> list[tuple[int | None, dict[str, Any], ExecutionFacts]]:
    """Children by sequence (unsequenced last), ties by content: the same order in content and record."""
    rows = [(seq, _content(child), child) for seq, child in facts.children]
    return sorted(rows, key=lambda x: (x[0] is None, x[0] or 0, canonical_json(x[1])))


def _record(facts: ExecutionFacts) -> dict[str, Any]:
    ex = facts.execution
    wf = facts.workflow or {}
    env = facts.environment or {}
    record: dict[str, Any] = {
        "rid": facts.rid,
        "description": ex.get("Description") or "",
        "status": ex.get("Status"),
        "status_detail": ex.get("Status_Detail") or "",
        "created": _text(ex.get("RCT")),
        "modified": _text(ex.get("RMT")),
        "duration": ex.get("Duration"),
        "environment_captured_at": env.get("captured_at"),
        "workflow": {"rid": wf.get("RID"), "name": wf.get("Name"), "description": wf.get("Description")},
        "datasets": sorted(
            (
                {"rid": d.rid, "role": d.role, "version": d.version, "snapshot": d.snapshot, "types": list(d.types)}
                for d in facts.datasets
            ),
            key=canonical_json,
        ),
        "assets": sorted(
            (
                {"table": a.table, "rid": a.rid, "url": a.url, "filename": a.filename, "md5": a.md5, "role": a.role}
                for a in facts.assets
            ),
            key=canonical_json,
        ),
        "children": [{"rid": rid, "sequence": seq} for seq, rid in facts.child_rids],
    }
    if facts.recursed:
        record["children"] = [
            {"rid": child.rid, "sequence": seq, "record": _record(child)} for seq, _, child in _ordered_children(facts)
        ]
    return record


def dataset_record(record: Mapping[str, Any], dataset: Mapping[str, Any], role: str) -> Mapping[str, Any] | None:
    """The ``record`` entry (RID, snapshot) of a dataset of the ``content`` part: same role, version, types."""
    for rd in record.get("datasets") or []:
        entry: Mapping[str, Any] = rd
        if (
            entry.get("role") == role
            and entry.get("version") == dataset.get("version")
            and sorted(entry.get("types") or []) == sorted(dataset.get("types") or [])
        ):
            return entry
    return None


def canonical_record(facts: ExecutionFacts) -> dict[str, Any]:
    """The canonical document ``{"content", "record", "hash"}`` of ``facts`` (pure: no I/O, no clock).

    ``content`` holds only content identities (hashed); ``record`` holds this catalog's RIDs, URLs,
    snapshots, status and times (not hashed). ``hash`` is :func:`provenance_hash` of ``content``.
    """
    content = _content(facts)
    return {"content": content, "record": _record(facts), "hash": _hash_content(content)}


def _hash_content(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def provenance_hash(doc_or_facts: ExecutionFacts | Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the content part.

    Accepts :class:`ExecutionFacts`, a canonical document (``{"content": ...}``) or a content part.
    """
    if isinstance(doc_or_facts, ExecutionFacts):
        content: Mapping[str, Any] = _content(doc_or_facts)
    elif "content" in doc_or_facts and "canonical" not in doc_or_facts:
        content = doc_or_facts["content"]
    else:
        content = doc_or_facts
    if not isinstance(content, Mapping) or content.get("canonical") != CANONICAL_VERSION:
        raise ValidationError(
            f"not a canonical provenance content part (expected key 'canonical' = {CANONICAL_VERSION!r}); "
            f"got keys {sorted(content) if isinstance(content, Mapping) else type(content).__name__}"
        )
    return _hash_content(content)


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


def _asset_link_tables(model: CatalogModel) -> list[tuple[TableDef, TableDef, TableDef | None]]:
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
    logs = [a for a in assets if _is_metadata(a) and _METRICS_FILE in a.types]
    if not logs:
        return {}
    from deriva_ml.execution._metrics import PROVENANCE_FORMAT, parse_series

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
        (a for a in assets if _is_metadata(a) and asset_type in a.types and filename in (None, a.filename)),
        key=lambda a: a.rid,
    )
    return found[-1] if found else None


def _gather_assets(ports: Ports, model: CatalogModel, rid: str) -> list[AssetFact]:
    cat = ports.catalog
    facts: list[AssetFact] = []
    for table, link, types_table in _asset_link_tables(model):
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
        source = metrics or METRICS_SOURCE
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
