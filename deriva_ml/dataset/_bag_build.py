"""Building a dataset bag (shell): gather facts from the catalog, plan, walk, write.

Takes the handle's :class:`~deriva_ml.context.Ports` only (never the facade). The decisions are in
``_bag_plan.py``, the paged reads in ``_bag_walk.py``, the file writing in ``_bag_writer.py``. Requests
on ERMrest: a constant (the version rows, one per nesting level, one per membership association (links)
and one per member table in use (rows, joined on the server), three for the tree's datasets, one per
feature table of a member table, and one per (table, foreign key) and level of the foreign-key walk that
finds keys not yet in the bag) plus one per further page of ``page_size`` rows of any of these reads.
Long key lists are split by the ERMrest adapter alone (its URL budget).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml._log import get_logger
from deriva_ml._progress import progress_bar
from deriva_ml._util import safe_name
from deriva_ml.cache._files import remove_tree
from deriva_ml.catalog import dump_model
from deriva_ml.context import Ports
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import NotFound, RIDNotFound, UnknownTable
from deriva_ml.core.records import DatasetSpec, DatasetVersion
from deriva_ml.core.rid import RID, parse_rid, split_snapshot
from deriva_ml.dataset._bag_plan import (
    BagError,
    BagPlan,
    TableKey,
    bag_info,
    bag_name,
    csv_relpath,
    datasets_info,
    plan_bag,
)
from deriva_ml.dataset._bag_walk import BagWalk
from deriva_ml.dataset._bag_writer import BagWriter, sync
from deriva_ml.dataset._bag_writer import materialize as materialize_files

if TYPE_CHECKING:
    from deriva_ml.dataset._bag import DatasetBag


#: Rows read (and held) at a time while building a bag: what a build holds does not grow with the members
#: beyond this (and one RID per row, see ``_bag_walk``); requests grow by one per page.
BAG_PAGE_SIZE = 5000


def bag_cache_root(ports: Ports) -> Path:
    """``<cache_dir>/bags/<host>_<catalog>``: bags of one catalog (RIDs are unique per catalog only)."""
    host = ports.host
    return Path(ports.dirs.cache_dir) / "bags" / f"{safe_name(host.host_name)}_{safe_name(host.catalog_id)}"


def absolute_url(ports: Ports, url: str) -> str:
    """An absolute URL for an asset's object-store URL, as written to ``fetch.txt``.

    The URL must pass the store's trust gate (a Hatrac path of the configured server, else
    :class:`~deriva_ml.store.names.UntrustedURL`). On a live server: ``<server_url><path>``. On the embedded
    catalog the ``/hatrac/...`` URL names an object of the local store; its file is written as a ``file://``
    URL (resolvable on this machine), falling back to ``file://<url>`` when the store cannot say where.
    """
    store = ports.store
    check = getattr(store, "check_url", None)
    if callable(check):  # refuses anything not on the configured server (UntrustedURL), before any request
        url = check(url).url
    if "://" in url:
        return url
    server = getattr(store, "server_url", None)
    if isinstance(server, str):
        return f"{server}{url}"
    if not ports.host.embedded:
        return f"https://{ports.host.host_name}{url}"
    path_of = getattr(store, "path_of", None)
    if callable(path_of):
        with contextlib.suppress(Exception):
            p = path_of(url)
            if p is not None:
                return Path(p).absolute().as_uri()
    return f"file://{url}"


def bdbag_config_file(ports: Ports) -> str:
    """``$BDBAG_CONFIG_FILE`` if set, else ``<cache_dir>/bdbag.json`` (bdbag would write ``~/.bdbag``)."""
    env = os.environ.get("BDBAG_CONFIG_FILE")
    if env:
        return env
    path = Path(ports.dirs.cache_dir) / "bdbag.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


# ------------------------------------------------------------------------------------------- catalog reads


def resolve_version(
    ports: Ports, dataset_rid: RID, version: DatasetVersion | str | None
) -> tuple[DatasetVersion, Mapping[str, Any]]:
    """The version (None = current) and its Dataset_Version row (one request; two when the dataset has none)."""
    from deriva_ml.dataset._reading import pick_version

    cat = ports.catalog
    rows = cat.query(ML_SCHEMA, "Dataset_Version", {"Dataset": dataset_rid})
    if not rows and not cat.query(ML_SCHEMA, "Dataset", {"RID": dataset_rid}, columns=["RID"]):
        raise RIDNotFound(dataset_rid, "Dataset")
    return pick_version(rows, dataset_rid, version)


def descendant_edges(ports: Ports, root: RID, snapshot: str | None) -> list[tuple[RID, RID]]:
    """Every (parent, child) Dataset_Dataset edge below ``root`` at ``snapshot`` (one request per level)."""
    edges: list[tuple[RID, RID]] = []
    frontier = [root]
    seen = {root}
    while frontier:
        nxt: list[RID] = []
        rows = ports.catalog.query(ML_SCHEMA, "Dataset_Dataset", {"Dataset": frontier}, snapshot=snapshot)
        for r in rows:
            edges.append((RID(r["Dataset"]), RID(r["Nested_Dataset"])))
            if r["Nested_Dataset"] not in seen:
                seen.add(r["Nested_Dataset"])
                nxt.append(RID(r["Nested_Dataset"]))
        frontier = nxt
    return edges


def _query(ports: Ports, snapshot: str | None, table: TableKey, where: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A read at the snapshot; a table created after the snapshot has no rows then (ERMrest: 409)."""
    try:
        return ports.catalog.query(table[0], table[1], where, snapshot=snapshot)
    except UnknownTable:
        if snapshot is None:
            raise
        return []


# ------------------------------------------------------------------------------------------- download


def download_dataset_bag(source: Any, spec: DatasetSpec, *, page_size: int = BAG_PAGE_SIZE) -> DatasetBag:
    """The bag of ``spec``'s dataset version (the current one when the spec names none).

    ``source`` is the handle's :class:`Ports` (or an object with a ``ports`` attribute, such as the
    facade). A cached bag (by catalog, RID, version and ``materialize``) is reused after
    :func:`~deriva_ml.dataset._bag.quick_check` and a check that it was made from the same Dataset_Version
    row and snapshot; otherwise the bag is (re)built in a temporary directory and renamed into place.
    Requests on a cache hit: one.
    """
    from deriva_ml.dataset._bag import DatasetBag, quick_check

    ports: Ports = source if isinstance(source, Ports) else source.ports
    log = get_logger("deriva_ml.dataset.bag")
    rid, _ = split_snapshot(parse_rid(spec.rid, "dataset_rid"))
    version, vrow = resolve_version(ports, rid, spec.version)
    root = bag_cache_root(ports)
    final = root / bag_name(rid, version, spec.materialize)
    if final.exists():
        reason = quick_check(final, spec.materialize)
        if reason is None:
            try:
                bag = DatasetBag(final)
                if (bag._info.get("version_rid"), bag._info.get("snapshot")) == (vrow.get("RID"), vrow.get("Snapshot")):
                    log.info("bag cache hit", dataset_rid=rid, version=str(version), path=str(final))
                    return bag
                reason = "made from another Dataset_Version row (catalog recreated?)"
            except (BagError, NotFound, KeyError) as exc:
                reason = str(exc)
        log.warning("cached bag is broken; rebuilding", path=str(final), reason=reason)
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".tmp-{uuid.uuid4().hex}"
    staging = work / final.name
    staging.mkdir(parents=True)
    try:
        build_bag(ports, rid, version, vrow, staging, work, materialize=spec.materialize, page_size=page_size)
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


def build_bag(
    ports: Ports,
    dataset_rid: RID,
    version: DatasetVersion,
    version_row: Mapping[str, Any],
    staging: Path,
    work: Path,
    *,
    materialize: bool,
    page_size: int = BAG_PAGE_SIZE,
) -> BagPlan:
    """Write the bag of one dataset version in ``staging`` (complete, checked and synced on return)."""
    from deriva_ml.dataset._bag import quick_check
    from deriva_ml.dataset._plans import member_associations
    from deriva_ml.dataset._reading import _version_snapshot

    model = ports.catalog.model()
    snapshot = _version_snapshot(dataset_rid, version, version_row)
    edges = descendant_edges(ports, dataset_rid, snapshot)
    datasets = [dataset_rid, *dict.fromkeys(c for _, c in edges if c != dataset_rid)]
    plan = plan_bag(
        model,
        dataset_rid=dataset_rid,
        version=version,
        version_row=version_row,
        datasets=datasets,
        edges=edges,
        associations=member_associations(model),
        materialize=materialize,
        now=ports.now(),
        host=ports.host.host_name,
        catalog_id=ports.host.catalog_id,
    )
    writer = BagWriter(staging, work)
    try:
        # on a terminal a bar counts the files written (a CSV per table, dataset.json, schema.json)
        with progress_bar(f"bag {dataset_rid}", None, "files") as bar:
            tables = BagWalk(
                ports, model, plan, writer, url_of=lambda url: absolute_url(ports, url), page_size=page_size
            ).run()
            info = bag_info(plan, _datasets(ports, plan, writer, tables), tables)
            if bar is not None:
                bar.set_total(len(tables) + 2)
                bar.advance(len(tables))
            writer.json("dataset.json", info, indent=2)
            writer.json("schema.json", dump_model(model))
            if bar is not None:
                bar.advance(2)
        writer.finish(plan.metadata, ports.now())
        if materialize:
            with progress_bar("materialize", writer.remote_files, "files") as mbar:
                materialize_files(ports, writer, mbar)
    except BaseException:
        writer.abort()
        raise
    reason = quick_check(staging, materialize)
    if reason is not None:
        raise BagError(f"new bag {staging} failed its check: {reason}")
    sync(writer)  # one group sync: the bag is durable before it is renamed into place
    get_logger("deriva_ml.dataset.bag").info(
        "bag built", tables={k: v["rows"] for k, v in tables.items()}, files=writer.remote_files
    )
    return plan


def _datasets(
    ports: Ports, plan: BagPlan, writer: BagWriter, tables: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The tree's Dataset, Dataset_Dataset_Type and Dataset_Version rows (three requests); the rows go
    to CSVs too (``dataset_history`` reads Dataset_Version.csv)."""
    model = ports.catalog.model()
    rids = list(plan.datasets)
    cat = ports.catalog
    ds_rows = cat.query(ML_SCHEMA, "Dataset", {"RID": rids}, snapshot=plan.snapshot)
    if not any(r["RID"] == plan.dataset_rid for r in ds_rows):  # a dataset made after the snapshot
        ds_rows += cat.query(ML_SCHEMA, "Dataset", {"RID": plan.dataset_rid})
    types = cat.query(ML_SCHEMA, "Dataset_Dataset_Type", {"Dataset": rids})
    versions = cat.query(ML_SCHEMA, "Dataset_Version", {"Dataset": rids}, snapshot=plan.snapshot)
    root_rows = []
    if plan.version_rid and not any(v["RID"] == plan.version_rid for v in versions):  # snapshot older than the row
        root_rows = cat.query(ML_SCHEMA, "Dataset_Version", {"RID": plan.version_rid})
    for key, rows in (
        ((ML_SCHEMA, "Dataset"), ds_rows),
        ((ML_SCHEMA, "Dataset_Version"), versions + root_rows),
    ):
        tdef = model.table(*key)
        if tdef is not None:
            rel = csv_relpath(tdef)
            writer.rows(rel, tdef.column_names, sorted(rows, key=lambda r: r["RID"]))
            tables[tdef.name] = {
                "schema": tdef.schema,
                "csv": rel,
                "asset": False,
                "rows": writer.row_count(rel),
                "role": "dataset",
            }
    # the executions that made the versions (those of feature values are in the bag already): one request
    exe_def = model.table(ML_SCHEMA, "Execution")
    if exe_def is not None:
        rel = csv_relpath(exe_def)
        made_by = {str(v["Execution"]) for v in versions + root_rows if v.get("Execution")}
        wanted = sorted(e for e in made_by if not writer.has_rid(rel, e))
        if wanted:
            writer.rows(
                rel, exe_def.column_names, _query(ports, plan.snapshot, (ML_SCHEMA, "Execution"), {"RID": wanted})
            )
            meta = tables.setdefault(
                exe_def.name, {"schema": exe_def.schema, "csv": rel, "asset": False, "rows": 0, "role": "reached"}
            )
            meta["rows"] = writer.row_count(rel)
    return datasets_info(plan, ds_rows, types, versions)


__all__ = [
    "BAG_PAGE_SIZE",
    "absolute_url",
    "bag_cache_root",
    "bdbag_config_file",
    "build_bag",
    "descendant_edges",
    "download_dataset_bag",
    "resolve_version",
]
