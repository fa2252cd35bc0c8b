"""Assets as records: listing, finding, looking up, their executions, downloading, and File rows.

An asset row lives in an asset table ``T`` (URL, Filename, Length, MD5, Description); its types are the
rows of ``T_Asset_Type`` and its executions the rows of ``T_Execution`` (with ``Asset_Role`` Input or
Output). Every listing reads the assets, their types and their executions in one request each per asset
table, joined on the server — never one request per asset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.context import Ports
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.fields import str_tuple
from deriva_ml.core.filters import And, Cmp, In, PathQuery, Step
from deriva_ml.core.rid import RID, parse_rid, split_snapshot
from deriva_ml.core.schema_defs import TableDef
from deriva_ml.data._query import path_catalog
from deriva_ml.services.schema import SchemaService


@attrs.frozen
class Asset:
    """One asset: where it is (``table``, ``rid``, ``url``), what it is (``filename``, ``length``, ``md5``,
    ``description``, ``types``) and its provenance: ``produced_by`` (the execution that wrote it as an
    Output, None for an asset added outside an execution) and ``read_by`` (executions that used it as an
    Input). ``row`` holds every column of the row (domain metadata columns included)."""

    table: str
    rid: RID
    url: str
    filename: str | None
    length: int | None
    md5: str | None
    description: str | None = None
    types: tuple[str, ...] = ()
    produced_by: RID | None = None
    read_by: tuple[RID, ...] = ()
    schema: str = ""
    row: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen
class FileSpec:
    """A file for :func:`add_files`: a URL (``file://`` for a local file) with its MD5 and length."""

    url: str
    md5: str
    length: int
    description: str = ""
    file_types: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)

    @classmethod
    def from_path(cls, path: str | Path, description: str = "", file_types: Sequence[str] = ()) -> FileSpec:
        """A spec of a local file (MD5 and length read from it; URL ``file://<absolute path>``)."""
        p = Path(path).expanduser().absolute()
        if not p.is_file():
            raise ValidationError(f"{p} is not a file")
        h = hashlib.md5(usedforsecurity=False)
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return cls(p.as_uri(), h.hexdigest(), p.stat().st_size, description, tuple(file_types))


def _links(model: Any, t: TableDef) -> tuple[TableDef | None, TableDef | None]:
    """``T_Asset_Type`` and ``T_Execution`` of asset table ``t`` (None where the catalog lacks one)."""
    types = model.table(t.schema, f"{t.name}_Asset_Type")
    execs = model.table(t.schema, f"{t.name}_Execution")
    return types, execs


def assets_from(ports: Ports, t: TableDef, steps: Sequence[Step], *, snapshot: str | None = None) -> list[Asset]:
    """The assets the path ``steps`` (ending on asset table ``t``) selects, with types and executions:
    three requests (rows, types, executions) whatever their number."""
    cat = path_catalog(ports.catalog)
    rows = cat.select_path(PathQuery(tuple(steps)), snapshot=snapshot)
    if not rows:
        return []
    types_t, execs_t = _links(ports.catalog.model(), t)
    types: dict[str, list[str]] = {}
    produced: dict[str, str] = {}
    read: dict[str, list[str]] = {}
    if types_t is not None:
        q = PathQuery((*steps, Step(types_t.schema, types_t.name, None, "RID", t.name)), columns=(t.name, "Asset_Type"))
        for r in cat.select_path(q, snapshot=snapshot):
            types.setdefault(r[t.name], []).append(r["Asset_Type"])
    if execs_t is not None:
        cols = (t.name, "Execution", *(("Asset_Role",) if execs_t.column("Asset_Role") else ()))
        q = PathQuery((*steps, Step(execs_t.schema, execs_t.name, None, "RID", t.name)), columns=cols)
        for r in cat.select_path(q, snapshot=snapshot):
            if r.get("Asset_Role") == "Output":
                produced.setdefault(r[t.name], r["Execution"])
            else:
                read.setdefault(r[t.name], []).append(r["Execution"])
    return [
        Asset(
            table=t.name,
            rid=RID(r["RID"]),
            url=r["URL"],
            filename=r.get("Filename"),
            length=r.get("Length"),
            md5=r.get("MD5"),
            description=r.get("Description"),
            types=tuple(sorted(types.get(r["RID"], ()))),
            produced_by=RID(produced[r["RID"]]) if r["RID"] in produced else None,
            read_by=tuple(RID(x) for x in sorted(dict.fromkeys(read.get(r["RID"], [])))),
            schema=t.schema,
            row=dict(r),
        )
        for r in rows
    ]


def list_assets(ports: Ports, schema: SchemaService, table: str) -> list[Asset]:
    """Every asset of one asset table, in RID order (3 requests)."""
    t = schema.asset_table(table)
    return assets_from(ports, t, [Step(t.schema, t.name)])


def find_assets(
    ports: Ports,
    schema: SchemaService,
    table: str | None = None,
    *,
    asset_type: str | Sequence[str] | None = None,
    md5: str | None = None,
    filename: str | None = None,
    url: str | None = None,
) -> list[Asset]:
    """Assets matching every given criterion, in one asset table or all of them (3 requests per table
    with hits, 1 per table without). ``asset_type``: a term (or several: any of them)."""
    tables = [schema.asset_table(table)] if table else [schema.asset_table(n) for n in schema.list_asset_tables()]
    wanted_types: tuple[str, ...] = ()
    if asset_type is not None:
        wanted_types = schema.validate_terms(
            MLVocab.asset_type.value, [asset_type] if isinstance(asset_type, str) else asset_type
        )
    conds = [Cmp(c, "eq", v) for c, v in (("MD5", md5), ("Filename", filename), ("URL", url)) if v is not None]
    flt = None if not conds else conds[0] if len(conds) == 1 else And(tuple(conds))
    out: list[Asset] = []
    for t in tables:
        if wanted_types:
            types_t, _ = _links(ports.catalog.model(), t)
            if types_t is None:
                continue
            steps = [
                Step(types_t.schema, types_t.name, In("Asset_Type", wanted_types)),
                Step(t.schema, t.name, flt, t.name, "RID"),
            ]
        else:
            steps = [Step(t.schema, t.name, flt)]
        out.extend(assets_from(ports, t, steps))
    return out


def _asset_table_of(ports: Ports, schema: SchemaService, rid: str) -> tuple[RID, TableDef]:
    from deriva_ml.catalog.schema import is_asset

    base = split_snapshot(parse_rid(rid, "asset_rid"))[0]
    s, name = schema.resolve_rid(base)
    t = ports.catalog.model().table(s, name)
    if t is None or not is_asset(t):
        raise ValidationError(
            f"{base} is a row of {s}:{name}, which is not an asset table; asset tables: {schema.list_asset_tables()}"
        )
    return base, t


def lookup_asset(ports: Ports, schema: SchemaService, rid: str) -> Asset:
    """The asset with this RID (its table resolved once; then 3 requests)."""
    base, t = _asset_table_of(ports, schema, rid)
    found = assets_from(ports, t, [Step(t.schema, t.name, Cmp("RID", "eq", base))])
    if not found:
        raise schema.not_in_table(base, t.name)
    return found[0]


def asset_execution_rows(ports: Ports, schema: SchemaService, rid: str, role: str | None) -> list[dict[str, Any]]:
    """Execution rows linked to an asset (``role`` "Input" / "Output" / None for both): one request."""
    base, t = _asset_table_of(ports, schema, rid)
    if role is not None:
        role = schema.validate_terms(MLVocab.asset_role.value, [role])[0]
    _, execs_t = _links(ports.catalog.model(), t)
    if execs_t is None:
        return []
    f: Any = Cmp(t.name, "eq", base)
    if role is not None:
        f = And((f, Cmp("Asset_Role", "eq", role)))
    q = PathQuery((Step(execs_t.schema, execs_t.name, f), Step(ML_SCHEMA, "Execution", None, "Execution", "RID")))
    return path_catalog(ports.catalog).select_path(q)


def download_asset(ports: Ports, schema: SchemaService, rid: str, dest: Path, *, cache: bool = True) -> Path:
    """``dest/<Filename>`` with the asset's bytes, MD5 verified; through the asset cache (a symlink into
    it) unless ``cache=False``. The URL passes the object store's trust check before any request."""
    from deriva_ml.cache import download_uncached

    asset = lookup_asset(ports, schema, rid)
    if not asset.md5 or not asset.filename:
        raise ValidationError(f"asset {asset.rid} has no MD5 or filename; it cannot be downloaded and verified")
    dest.mkdir(parents=True, exist_ok=True)
    if cache:
        cached = ports.cache.fetch(asset.rid, asset.md5, asset.filename, asset.url, ports.store, length=asset.length)
        return Path(ports.cache.link_into(cached, dest, asset.filename))
    return Path(download_uncached(asset.url, asset.md5, asset.filename, ports.store, dest, length=asset.length))


# ---------------------------------------------------------------------------------------------- files


def as_file_specs(files: Iterable[Any], file_types: Sequence[str] = (), description: str = "") -> list[FileSpec]:
    """FileSpecs from paths, FileSpecs or mappings with url/md5/length."""
    out: list[FileSpec] = []
    if isinstance(files, str | Path | FileSpec | Mapping):
        files = [files]
    for f in files:
        if isinstance(f, FileSpec):
            out.append(f if f.file_types or not file_types else attrs.evolve(f, file_types=tuple(file_types)))
        elif isinstance(f, Mapping):
            missing = [k for k in ("url", "md5", "length") if k not in f]
            if missing:
                raise ValidationError(f"file entry {dict(f)!r} lacks {missing}")
            out.append(
                FileSpec(
                    str(f["url"]),
                    str(f["md5"]),
                    int(f["length"]),
                    str(f.get("description", description)),
                    tuple(f.get("file_types", file_types)),
                )
            )
        elif isinstance(f, str) and "://" in f:
            raise ValidationError(f"{f!r}: a remote file needs its MD5 and length: pass FileSpec(url, md5, length)")
        else:
            out.append(FileSpec.from_path(f, description, file_types))
    return out


def plan_add_files(specs: Sequence[FileSpec], types: Mapping[str, tuple[str, ...]]) -> Batch:
    """File rows (an existing URL is kept: on-conflict-skip) and their File_Asset_Type links (by URL label)."""
    rows = [
        {
            "URL": s.url,
            "Filename": s.url.rstrip("/").rsplit("/", 1)[-1],
            "Length": s.length,
            "MD5": s.md5,
            "Description": s.description,
        }
        for s in specs
    ]
    return Batch([Insert(ML_SCHEMA, "File", rows, on_conflict_skip=True)]) if rows else Batch(())


def add_files(
    ports: Ports,
    schema: SchemaService,
    files: Iterable[Any],
    *,
    file_types: Sequence[str] = (),
    description: str = "",
) -> list[RID]:
    """Catalog files in the File table (typed, ``File`` always among the types); returns their RIDs in the
    order given. Requests: one insert, one read of the RIDs by URL, one insert of type links."""
    specs = as_file_specs(files, file_types, description)
    if not specs:
        return []
    wanted = {s.url: schema.validate_terms(MLVocab.asset_type.value, ["File", *s.file_types]) for s in specs}
    ports.catalog.apply(plan_add_files(specs, wanted))
    rows = ports.catalog.query(ML_SCHEMA, "File", {"URL": [s.url for s in specs]}, columns=["RID", "URL"])
    by_url = {r["URL"]: RID(r["RID"]) for r in rows}
    links = [{"File": by_url[u], "Asset_Type": t} for u, ts in wanted.items() for t in dict.fromkeys(ts)]
    ports.catalog.apply(Batch([Insert(ML_SCHEMA, "File_Asset_Type", links, on_conflict_skip=True)]))
    return [by_url[s.url] for s in specs]


def list_files(ports: Ports, schema: SchemaService, file_types: Sequence[str] | None = None) -> list[Asset]:
    """Rows of the File table as Assets (with ``file_types``: those having any of them)."""
    return find_assets(ports, schema, "File", asset_type=file_types or None)


def execution_assets(ports: Ports, execution_rid: str, role: str | None = None) -> list[Asset]:
    """The assets an execution read (``role="Input"``), wrote (``"Output"``) or both, over every asset table:
    one request per asset table, plus two per table with hits."""
    from deriva_ml.catalog.schema import is_asset

    rid = parse_rid(execution_rid, "execution_rid")
    model = ports.catalog.model()
    out: list[Asset] = []
    for t in sorted((t for t in model.tables if is_asset(t)), key=lambda t: (t.schema, t.name)):
        _, execs_t = _links(model, t)
        if execs_t is None:
            continue
        f: Any = Cmp("Execution", "eq", rid)
        if role is not None and execs_t.column("Asset_Role") is not None:
            f = And((f, Cmp("Asset_Role", "eq", role)))
        steps = [Step(execs_t.schema, execs_t.name, f), Step(t.schema, t.name, None, t.name, "RID")]
        out.extend(assets_from(ports, t, steps))
    return out


def execution_dataset_rids(ports: Ports, execution_rid: str, role: str | None = "Input") -> list[RID]:
    """Datasets linked to an execution (``Dataset_Execution``), by role where the catalog records it."""
    rid = parse_rid(execution_rid, "execution_rid")
    de = ports.catalog.model().table(ML_SCHEMA, "Dataset_Execution")
    if de is None:
        return []
    where: dict[str, Any] = {"Execution": rid}
    if role is not None and de.column("Asset_Role") is not None:
        where["Asset_Role"] = [role, None] if role == "Input" else role  # reference rows have no role: inputs
    rows = ports.catalog.query(ML_SCHEMA, "Dataset_Execution", where, columns=["Dataset"])
    return list(dict.fromkeys(RID(r["Dataset"]) for r in rows))
