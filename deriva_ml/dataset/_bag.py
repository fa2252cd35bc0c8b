"""Dataset bags: a dataset version as a BDBag on disk, built once and cached.

Layout of a bag (``docs/datasets.md``)::

    Dataset_<RID>_<version>[_metadata]/
      bagit.txt  bag-info.txt  manifest-{md5,sha256}.txt  tagmanifest-*.txt  fetch.txt
      data/
        dataset.json            the dataset, its version and snapshot, nested datasets, membership
        schema.json             the catalog model (TableDefs, the catalog codec's JSON)
        <schema>/<table>.csv    member rows of each table (every dataset of the tree), all columns
        deriva-ml/Dataset.csv   the dataset and its nested datasets
        assets/<Table>/<RID>/<Filename>   asset bytes (materialized bags only)

``fetch.txt`` lists every asset file (``url  length  data/assets/...``); a metadata-only bag keeps it
unresolved (a "holey" bag), a materialized bag has every file fetched, MD5-verified and then the whole
bag validated (``bdbag --validate full`` passes).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml._log import get_logger
from deriva_ml._progress import ProgressBar, progress_bar
from deriva_ml._util import safe_name
from deriva_ml.cache._files import remove_tree
from deriva_ml.catalog import dump_model, load_model
from deriva_ml.catalog.schema import is_asset
from deriva_ml.core.codec import parse_json
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import DerivaMLException, NotFound, ValidationError
from deriva_ml.core.records import DatasetSpec, DatasetVersion
from deriva_ml.core.rid import RID, split_snapshot
from deriva_ml.core.schema_defs import CatalogModel, TableDef

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML
    from deriva_ml.dataset._datasets import MemberTree

BAG_FORMAT = 1
_INT_TYPES = frozenset({"int2", "int4", "int8", "serial2", "serial4", "serial8"})
_FLOAT_TYPES = frozenset({"float4", "float8"})
_JSON_TYPES = frozenset({"json", "jsonb", "text[]"})


class BagError(DerivaMLException):
    """A dataset bag could not be built, or a bag directory is not one of ours."""


# ------------------------------------------------------------------------------------------- paths


def bag_name(dataset_rid: str, version: DatasetVersion, materialize: bool) -> str:
    """``Dataset_<RID>_<version>`` (``_metadata`` appended for a bag without asset bytes)."""
    return f"Dataset_{dataset_rid}_{version}" + ("" if materialize else "_metadata")


def bag_cache_root(ml: DerivaML) -> Path:
    """``<cache_dir>/bags/<host>_<catalog>``: bags of one catalog (RIDs are unique per catalog only)."""
    return Path(ml.cache_dir) / "bags" / f"{safe_name(ml.host_name)}_{safe_name(ml.catalog_id)}"


def asset_relpath(table: str, rid: str, filename: str | None) -> str:
    """Where an asset file goes, relative to the bag's ``data/``: ``assets/<Table>/<RID>/<Filename>``.

    The RID level keeps two assets with the same file name apart.
    """
    name = Path(str(filename or "")).name or "file"
    if name in (".", ".."):
        name = "file"
    return f"assets/{table}/{rid}/{name}"


def absolute_url(ml: DerivaML, url: str) -> str:
    """An absolute URL for an asset's object-store URL, as written to ``fetch.txt``.

    The URL must pass the store's trust gate (a Hatrac path of the configured server, else
    :class:`~deriva_ml.store.names.UntrustedURL`). On a live server: ``<server_url><path>``. On the embedded catalog the
    ``/hatrac/...`` URL names an object of the local store; its file is written as a ``file://`` URL
    (resolvable on this machine), falling back to ``file://<url>`` when the store cannot say where.
    """
    check = getattr(ml.store, "check_url", None)
    if callable(check):  # refuses anything not on the configured server (UntrustedURL), before any request
        url = check(url).url
    if "://" in url:
        return url
    server = getattr(ml.store, "server_url", None)
    if isinstance(server, str):
        return f"{server}{url}"
    if ml.host_name != "local":
        return f"https://{ml.host_name}{url}"
    path_of = getattr(ml.store, "path_of", None)
    if callable(path_of):
        with contextlib.suppress(Exception):
            p = path_of(url)
            if p is not None:
                return Path(p).absolute().as_uri()
    return f"file://{url}"


def bdbag_config_file(ml: DerivaML) -> str:
    """``$BDBAG_CONFIG_FILE`` if set, else ``<cache_dir>/bdbag.json`` (bdbag would write ``~/.bdbag``)."""
    env = os.environ.get("BDBAG_CONFIG_FILE")
    if env:
        return env
    path = Path(ml.cache_dir) / "bdbag.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


# ------------------------------------------------------------------------------------------- values


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _decode(value: str, col_type: str | None) -> Any:
    if value == "":
        return None
    if col_type in _INT_TYPES:
        try:
            return int(value)
        except ValueError:
            return value
    if col_type in _FLOAT_TYPES:
        try:
            return float(value)
        except ValueError:
            return value
    if col_type == "boolean":
        return value.lower() in ("true", "t", "1")
    if col_type in _JSON_TYPES:
        try:
            return parse_json(value, "a bag's JSON column")
        except ValueError:
            return value
    return value


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([_csv_value(r.get(c)) for c in columns])


# ------------------------------------------------------------------------------------------- the bag


class DatasetBag:
    """A downloaded dataset version: read its members, nested datasets and tables from disk.

    ``path`` is the bag directory; ``dataset_rid`` selects a dataset of the bag's tree (default: the
    dataset the bag was made for — nested datasets are views of the same directory).
    """

    def __init__(self, path: str | os.PathLike[str], dataset_rid: str | None = None) -> None:
        self.path = Path(path)
        try:
            info = parse_json((self.path / "data" / "dataset.json").read_text("utf-8"), "data/dataset.json")
            if not isinstance(info, dict):
                raise ValueError("data/dataset.json is not an object")
            self._info: dict[str, Any] = info
        except (OSError, ValueError) as exc:
            raise BagError(f"{self.path} is not a dataset bag (no readable data/dataset.json): {exc}") from exc
        root = self._info["dataset_rid"]
        self.dataset_rid = RID(dataset_rid or root)
        if self.dataset_rid not in self._info["datasets"]:
            raise NotFound(f"dataset {self.dataset_rid} is not in the bag of {root} ({self.path})")
        self._model: CatalogModel | None = None
        self._tables: dict[str, list[dict[str, Any]]] = {}

    # metadata ----------------------------------------------------------------------------------
    @property
    def _entry(self) -> dict[str, Any]:
        return self._info["datasets"][self.dataset_rid]  # type: ignore[no-any-return]

    @property
    def version(self) -> DatasetVersion:
        """The version of this dataset the bag holds (for a nested dataset: its version at the snapshot)."""
        v = self._entry.get("version") or self._info["version"]
        return DatasetVersion.parse(v)

    @property
    def description(self) -> str:
        return str(self._entry.get("description") or "")

    @property
    def dataset_types(self) -> tuple[str, ...]:
        return tuple(self._entry.get("dataset_types") or ())

    @property
    def snapshot(self) -> str | None:
        """The catalog snapshot the bag's rows were read at."""
        return self._info.get("snapshot")

    @property
    def materialized(self) -> bool:
        return bool(self._info.get("materialized"))

    @property
    def model(self) -> CatalogModel:
        """The catalog model saved in ``data/schema.json``."""
        if self._model is None:
            schema = self.path / "data" / "schema.json"
            try:
                data = parse_json(schema.read_text("utf-8"), str(schema))
            except (OSError, ValueError) as exc:
                raise BagError(f"{schema}: unreadable: {exc}") from exc
            self._model = load_model(data)
        return self._model

    def __repr__(self) -> str:
        return f"DatasetBag(rid={self.dataset_rid!r}, version={str(self.version)!r}, path={str(self.path)!r})"

    # tables ------------------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        """Names of the tables the bag holds rows of."""
        return sorted(self._info["tables"])

    def _table_def(self, name: str) -> TableDef | None:
        meta = self._info["tables"].get(name)
        if meta is None:
            return None
        return self.model.table(meta["schema"], name)

    def get_table_as_dict(self, table: str) -> list[dict[str, Any]]:
        """Every row the bag holds of ``table`` (values typed by the saved schema; asset ``Filename`` as
        the local path when the file is in the bag)."""
        if table not in self._tables:
            meta = self._info["tables"].get(table)
            if meta is None:
                raise NotFound(f"table {table!r} is not in this bag; tables: {', '.join(self.list_tables())}")
            tdef = self._table_def(table)
            types = {c.name: c.type for c in tdef.columns} if tdef else {}
            rows: list[dict[str, Any]] = []
            with (self.path / "data" / meta["csv"]).open(newline="", encoding="utf-8") as f:
                for raw in csv.DictReader(f):
                    rows.append({k: _decode(v, types.get(k)) for k, v in raw.items()})
            if meta.get("asset"):
                for r in rows:
                    local = self.path / "data" / asset_relpath(table, r["RID"], r.get("Filename"))
                    if local.is_file():
                        r["Filename"] = str(local)
            self._tables[table] = rows
        return [dict(r) for r in self._tables[table]]

    def asset_path(self, table: str, rid: str) -> Path | None:
        """The local file of asset ``rid`` of ``table`` (None when not materialized)."""
        for r in self.get_table_as_dict(table):
            if r["RID"] == rid:
                p = Path(r["Filename"]) if r.get("Filename") else None
                return p if p is not None and p.is_absolute() and p.is_file() else None
        return None

    # members -----------------------------------------------------------------------------------
    def _descendants(self) -> list[str]:
        out: list[str] = []
        frontier = [self.dataset_rid]
        seen = {self.dataset_rid}
        while frontier:
            nxt = []
            for d in frontier:
                for c in self._info["datasets"].get(d, {}).get("children", []):
                    if c not in seen:
                        seen.add(c)
                        nxt.append(c)
                        out.append(c)
            frontier = nxt
        return out

    def list_dataset_members(self, recurse: bool = False, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Member rows by table name (every membership table of the catalog, possibly empty).

        Asset rows carry ``Filename`` = the local path of the file in a materialized bag.
        """
        sources = [self.dataset_rid, *(self._descendants() if recurse else [])]
        wanted: dict[str, dict[str, None]] = {t: {} for t in self._info["member_tables"]}
        for d in sources:
            for table, rids in self._info["members"].get(d, {}).items():
                wanted.setdefault(table, {}).update(dict.fromkeys(rids))
        out: dict[str, list[dict[str, Any]]] = {}
        for table, rids in wanted.items():
            if not rids:
                out[table] = []
                continue
            rows = [r for r in self.get_table_as_dict(table) if r["RID"] in rids]
            rows.sort(key=lambda r: r["RID"])
            out[table] = rows[:limit] if limit is not None else rows
        return out

    def list_dataset_children(self, recurse: bool = False) -> list[DatasetBag]:
        """Nested datasets as bags (views of this bag's directory)."""
        rids = self._descendants() if recurse else list(self._entry.get("children", []))
        return [DatasetBag(self.path, r) for r in rids]


# ------------------------------------------------------------------------------------------- checks


def _read_manifest(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                digest, _, name = line.partition(" ")
                out[name.strip()] = digest
    return out


def _read_fetch(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                out[parts[2]] = int(parts[1]) if parts[1].isdigit() else -1
    return out


def quick_check(path: Path, materialized: bool) -> str | None:
    """Why a cached bag is broken, or None: a stat-only check (plus the small tag files' MD5s).

    Checks the tag manifest, that every payload file of the manifest is present (fetch.txt files too
    when ``materialized``) with the size fetch.txt gives, and that the sizes add up to Payload-Oxum.
    An edit that keeps a file's size passes — ``validate_bag(fast=False)`` is the thorough check.
    """
    try:
        for name in ("bagit.txt", "bag-info.txt", "data/dataset.json"):
            if not (path / name).is_file():
                return f"{name} is missing"
        for name, digest in _read_manifest(path / "tagmanifest-md5.txt").items():
            f = path / name
            if not f.is_file():
                return f"tag file {name} is missing"
            if hashlib.md5(f.read_bytes(), usedforsecurity=False).hexdigest() != digest:
                return f"tag file {name} changed"
        oxum = None
        for line in (path / "bag-info.txt").read_text("utf-8").splitlines():
            if line.startswith("Payload-Oxum:"):
                oxum = line.split(":", 1)[1].strip()
        if oxum is None:
            return "bag-info.txt has no Payload-Oxum"
        want_bytes, want_count = (int(x) for x in oxum.split("."))
        fetch = _read_fetch(path / "fetch.txt")
        total = count = 0
        for name in _read_manifest(path / "manifest-md5.txt"):
            f = path / name
            if name in fetch and not materialized:
                total += fetch[name]
                count += 1
                continue
            if not f.is_file():
                return f"{name} is missing"
            size = f.stat().st_size
            if name in fetch and fetch[name] != size:
                return f"{name} has {size} bytes, fetch.txt says {fetch[name]}"
            total += size
            count += 1
        if (total, count) != (want_bytes, want_count):
            return f"payload is {total} bytes in {count} files, Payload-Oxum says {oxum}"
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"
    return None


# ------------------------------------------------------------------------------------------- build


def download_dataset_bag(ml: DerivaML, spec: DatasetSpec) -> DatasetBag:
    """The bag of ``spec``'s dataset version (the current one when the spec names none).

    A cached bag (by catalog, RID, version and ``materialize``) is reused after :func:`quick_check`
    and a check that it was made from the same Dataset_Version row and snapshot; otherwise the bag is
    (re)built in a temporary directory and moved into place. Requests on a cache hit: one.
    """
    from deriva_ml.dataset._datasets import member_tree, resolve_version

    log = get_logger("deriva_ml.dataset.bag")
    rid, _ = split_snapshot(spec.rid)
    version, vrow = resolve_version(ml, rid, spec.version)
    root = bag_cache_root(ml)
    final = root / bag_name(rid, version, spec.materialize)
    if final.exists():
        reason = quick_check(final, spec.materialize)
        if reason is None:
            try:
                bag = DatasetBag(final)
                same = (bag._info.get("version_rid"), bag._info.get("snapshot")) == (
                    vrow.get("RID"),
                    vrow.get("Snapshot"),
                )
                if same:
                    log.info("bag cache hit", dataset_rid=rid, version=str(version), path=str(final))
                    return bag
                reason = "made from another Dataset_Version row (catalog recreated?)"
            except (BagError, NotFound, KeyError) as exc:
                reason = str(exc)
        log.warning("cached bag is broken; rebuilding", path=str(final), reason=reason)
    tree = member_tree(ml, rid, version, resolved=(version, vrow))
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".tmp-{uuid.uuid4().hex}"
    staging = work / final.name
    staging.mkdir(parents=True)
    try:
        _build(ml, tree, staging, work, materialize=spec.materialize, version_row=vrow)
        if final.exists() and quick_check(final, spec.materialize) is None:
            log.info("another process built the same bag first; using it", path=str(final))
        else:
            if final.exists():
                remove_tree(final)  # the broken bag we found at the start
            try:
                os.rename(staging, final)
            except OSError:
                # lost a race with another process: theirs is used when it is sound
                if not final.exists() or quick_check(final, spec.materialize) is not None:
                    raise
    finally:
        remove_tree(work)
    log.info("bag ready", dataset_rid=rid, version=str(version), materialized=spec.materialize, path=str(final))
    return DatasetBag(final)


def _build(
    ml: DerivaML,
    tree: MemberTree,
    staging: Path,
    work: Path,
    *,
    materialize: bool,
    version_row: Mapping[str, Any],
) -> None:
    """Write the bag in ``staging``; on a terminal a bar counts the files written (see ``docs/progress.md``)."""
    with progress_bar(f"bag {tree.dataset_rid}", None, "files") as bar:
        _build_files(ml, tree, staging, work, materialize=materialize, version_row=version_row, bar=bar)


def _build_files(
    ml: DerivaML,
    tree: MemberTree,
    staging: Path,
    work: Path,
    *,
    materialize: bool,
    version_row: Mapping[str, Any],
    bar: ProgressBar | None,
) -> None:
    from bdbag import bdbag_api

    from deriva_ml.dataset._datasets import _fetch_rows, _member_rows

    log = get_logger("deriva_ml.dataset.bag", dataset_rid=tree.dataset_rid, version=str(tree.version))
    model = ml.catalog.model()
    snapshot = tree.snapshot

    # rows ---------------------------------------------------------------------------------------
    by_table: dict[tuple[str, str], list[RID]] = {}
    members: dict[str, dict[str, list[str]]] = {d: {} for d in tree.datasets}
    member_tables: list[str] = []
    for key, links in sorted(tree.links.items()):
        a = tree.associations[key]
        member_tables.append(a.member_name)
        for d, m in links:
            if d in members:
                members[d].setdefault(a.member_name, []).append(m)
                by_table.setdefault(key, []).append(m)
    tables_meta: dict[str, dict[str, Any]] = {}
    remote: list[dict[str, Any]] = []
    sources: dict[str, tuple[str, str | None, RID]] = {}  # bag path -> (store url, md5, rid)
    dataset_key = (ML_SCHEMA, "Dataset")
    dataset_rows: list[dict[str, Any]] = []
    keys = sorted(set(by_table) | {dataset_key})
    if bar is not None:
        bar.set_total(len(keys) + 2)  # a CSV per table, dataset.json, schema.json
    for key in keys:
        tdef = model.table(*key)
        if tdef is None:
            continue
        if key == dataset_key:
            rows = dataset_rows = _fetch_rows(ml, tdef, list(tree.datasets), None)
        else:
            # the member rows in one request per table (however many members), read the way the links were
            rows = _member_rows(ml, tree.associations[key], tree.datasets, snapshot)
        rel = f"{tdef.schema}/{tdef.name}.csv"
        _write_csv(staging / rel, tdef.column_names, rows)
        if bar is not None:
            bar.advance()
        tables_meta[tdef.name] = {"schema": tdef.schema, "csv": rel, "asset": is_asset(tdef), "rows": len(rows)}
        if is_asset(tdef):
            for r in rows:
                if not r.get("URL") or not r.get("MD5") or r.get("Length") is None:
                    log.warning("asset row without URL/MD5/Length is not fetched", table=tdef.name, rid=r["RID"])
                    continue
                path = asset_relpath(tdef.name, r["RID"], r.get("Filename"))
                remote.append(
                    {"url": absolute_url(ml, r["URL"]), "length": int(r["Length"]), "filename": path, "md5": r["MD5"]}
                )
                sources["data/" + path] = (r["URL"], r["MD5"], RID(r["RID"]))

    # datasets -----------------------------------------------------------------------------------
    datasets_info = _datasets_info(ml, tree, snapshot, dataset_rows)
    info = {
        "format": BAG_FORMAT,
        "dataset_rid": tree.dataset_rid,
        "version": str(tree.version),
        "version_rid": version_row.get("RID"),
        "snapshot": snapshot,
        "materialized": materialize,
        "catalog": {"host": ml.host_name, "catalog_id": ml.catalog_id},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "datasets": datasets_info,
        "members": members,
        "member_tables": sorted(set(member_tables)),
        "tables": tables_meta,
    }
    (staging / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (staging / "schema.json").write_text(
        json.dumps(dump_model(model), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    if bar is not None:
        bar.advance(2)
        bar.close()  # materialisation has its own bar

    # bag ----------------------------------------------------------------------------------------
    cfg = bdbag_config_file(ml)
    rfm = None
    if remote:
        rfm = work / "remote-files.json"
        rfm.write_text("".join(json.dumps(e) + "\n" for e in remote), encoding="utf-8")
    metadata = {
        "External-Description": f"deriva-ml dataset {tree.dataset_rid} version {tree.version}",
        "External-Identifier": f"{ml.host_name}/{ml.catalog_id}/{tree.dataset_rid}@{tree.version}",
        "Dataset-RID": str(tree.dataset_rid),
        "Dataset-Version": str(tree.version),
        "Catalog-Snapshot": str(snapshot or ""),
    }
    bdbag_api.make_bag(
        str(staging),
        algs=["md5", "sha256"],
        metadata=metadata,
        remote_file_manifest=str(rfm) if rfm else None,
        config_file=cfg,
    )
    if materialize:
        _materialize(ml, staging, remote, sources)
        bdbag_api.validate_bag(str(staging), fast=False, config_file=cfg)
    else:
        reason = quick_check(staging, False)
        if reason is not None:
            raise BagError(f"new bag {staging} failed its check: {reason}")
    log.info("bag built", tables={k: v["rows"] for k, v in tables_meta.items()}, files=len(remote))


def _datasets_info(
    ml: DerivaML, tree: MemberTree, snapshot: str | None, dataset_rows: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Description, types, version at the snapshot and children of every dataset of the tree."""
    from deriva_ml.dataset._plans import current_version_row

    rids = list(tree.datasets)
    info: dict[str, dict[str, Any]] = {
        r: {"description": "", "dataset_types": [], "version": None, "children": []} for r in rids
    }
    for p, c in tree.edges:
        if p in info and c not in info[p]["children"]:
            info[p]["children"].append(c)
    versions: dict[str, list[dict[str, Any]]] = {r: [] for r in rids}
    for row in dataset_rows:
        if row["RID"] in info:
            info[row["RID"]]["description"] = row.get("Description") or ""
    for t in ml.catalog.query(ML_SCHEMA, "Dataset_Dataset_Type", {"Dataset": rids}):
        info[t["Dataset"]]["dataset_types"].append(t["Dataset_Type"])
    nested = [d for d in rids if d != tree.dataset_rid]
    if nested:
        for v in ml.catalog.query(ML_SCHEMA, "Dataset_Version", {"Dataset": nested}, snapshot=snapshot):
            versions[v["Dataset"]].append(v)
    for d in rids:
        info[d]["dataset_types"].sort()
        if d == tree.dataset_rid:
            info[d]["version"] = str(tree.version)
            continue
        vrow = current_version_row(versions[d])
        info[d]["version"] = str(DatasetVersion.parse(vrow["Version"])) if vrow else None
    return info


def _materialize(
    ml: DerivaML, staging: Path, remote: Sequence[Mapping[str, Any]], sources: Mapping[str, tuple[str, str | None, RID]]
) -> None:
    """Fetch every fetch.txt file into the bag through the object store (MD5-verified).

    A file the asset cache already holds (same RID and MD5) is copied from there instead.
    """
    with progress_bar("materialize", len(remote), "files") as bar:
        _fetch_files(ml, staging, remote, sources, bar)


def _fetch_files(
    ml: DerivaML,
    staging: Path,
    remote: Sequence[Mapping[str, Any]],
    sources: Mapping[str, tuple[str, str | None, RID]],
    bar: ProgressBar | None,
) -> None:
    log = get_logger("deriva_ml.dataset.bag")
    total = sum(int(e["length"]) for e in remote)
    done = 0
    next_mark = 0.0
    cache = None
    with contextlib.suppress(Exception):
        cache = ml.cache
    for e in remote:
        rel = "data/" + e["filename"]
        url, md5, rid = sources[rel]
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        cached = None
        if cache is not None and md5:
            with contextlib.suppress(Exception):
                cached = cache.lookup(rid, md5)
        if cached is not None:
            shutil.copyfile(cached, dest)
        else:
            ml.store.get(url, dest, md5=md5)
        size = dest.stat().st_size
        if size != int(e["length"]):
            raise BagError(f"{url}: got {size} bytes, the catalog says {e['length']}")
        done += size
        if bar is not None:
            bar.advance()
        frac = 1.0 if total == 0 else done / total
        if frac >= next_mark:
            log.info("bag materialize progress", bytes_done=done, bytes_total=total, percent=round(frac * 100))
            next_mark = frac + 0.1
    if remote:
        log.info("bag materialized", files=len(remote), bytes=total)


def validate_bag(path: str | os.PathLike[str], *, fast: bool = False, config_file: str | None = None) -> None:
    """bdbag validation of a bag directory (raises bdbag's BagValidationError when invalid)."""
    from bdbag import bdbag_api

    if config_file is None:
        config_file = os.environ.get("BDBAG_CONFIG_FILE")
        if not config_file:
            raise ValidationError("pass config_file= or set BDBAG_CONFIG_FILE (bdbag would write ~/.bdbag)")
    bdbag_api.validate_bag(str(path), fast=fast, config_file=config_file)


__all__ = [
    "BagError",
    "DatasetBag",
    "absolute_url",
    "asset_relpath",
    "bag_cache_root",
    "bag_name",
    "bdbag_config_file",
    "download_dataset_bag",
    "quick_check",
    "validate_bag",
]
