"""Input assets fetched into an execution (through the asset cache when asked), and the project's uv.lock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deriva_ml.context import Ports
from deriva_ml.core.errors import RIDNotFound
from deriva_ml.core.records import AssetSpec
from deriva_ml.core.rid import RID
from deriva_ml.services.schema import SchemaService


def download_assets(
    ports: Ports, schema: SchemaService, specs: Sequence[AssetSpec], dest_root: Path
) -> list[tuple[tuple[str, str], RID, Path]]:
    """Fetch input assets (cached ones through the cache) under ``dest_root/<table>``: one query per asset
    table. Returns ``((schema, table), rid, path)`` per spec, in order of their tables."""
    from deriva_ml._progress import open_bar
    from deriva_ml.cache import download_uncached

    located: dict[tuple[str, str], list[AssetSpec]] = {}
    for spec in specs:
        located.setdefault(schema.resolve_rid(spec.rid), []).append(spec)
    todo: list[tuple[tuple[str, str], AssetSpec, dict[str, Any]]] = []
    for (sname, table), group in located.items():
        rows = {r["RID"]: r for r in ports.catalog.query(sname, table, {"RID": [s.rid for s in group]})}
        for spec in group:
            row = rows.get(spec.rid)
            if row is None:
                raise RIDNotFound(spec.rid, table)
            todo.append(((sname, table), spec, row))
    out: list[tuple[tuple[str, str], RID, Path]] = []
    # bytes, rate and ETA over every asset on a terminal (None otherwise: no per-chunk work)
    bar = open_bar("download", sum(int(r.get("Length") or 0) for _k, _s, r in todo), "bytes")
    base = 0
    try:
        for (sname, table), spec, row in todo:
            dest_dir = dest_root / table
            dest_dir.mkdir(parents=True, exist_ok=True)
            progress = None if bar is None else bar.offset(base)
            if spec.cache:
                cache = ports.cache
                cached = cache.fetch(
                    spec.rid,
                    row["MD5"],
                    row["Filename"],
                    row["URL"],
                    ports.store,
                    length=row.get("Length"),
                    progress=progress,
                )
                path = cache.link_into(cached, dest_dir, row["Filename"])
            else:
                path = download_uncached(
                    row["URL"], row["MD5"], row["Filename"], ports.store, dest_dir, progress=progress
                )
            base += int(row.get("Length") or 0)
            if bar is not None:
                bar(base)
            out.append(((sname, table), spec.rid, path))
    finally:
        if bar is not None:
            bar.close()
    return out


def find_uv_lock(project_root: Path | None, cwd: Path | None = None) -> Path | None:
    """The project's uv.lock: in the workflow's repository root, else the nearest one above ``cwd``."""
    candidates = [] if project_root is None else [project_root]
    here = cwd or Path.cwd()
    candidates.extend([here, *here.parents])
    for d in candidates:
        if (d / "uv.lock").is_file():
            return d / "uv.lock"
    return None
