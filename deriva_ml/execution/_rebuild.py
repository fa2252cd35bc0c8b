"""A new manifest for an execution's working directory, rebuilt from the catalog and the directory."""

from __future__ import annotations

from pathlib import Path

from deriva_ml.core.definitions import AssetRole, ExecMetadataType, MLAsset
from deriva_ml.core.errors import DerivaMLException
from deriva_ml.core.rid import RID
from deriva_ml.execution._manifest import Manifest
from deriva_ml.services import Services

_METADATA_TYPES = (
    ("configuration.json", ExecMetadataType.deriva_config.value),
    ("uv.lock", ExecMetadataType.execution_config.value),
    ("environment_snapshot_", ExecMetadataType.runtime_env.value),
    ("hydra-", ExecMetadataType.hydra_config.value),
)


def rebuild_manifest(services: Services, execution_rid: RID, work: Path, stamp: str) -> Manifest:
    """A new manifest for ``work`` rebuilt from the catalog and the directory (the old file set aside).

    Outputs the catalog links to the execution become cataloged entries (nothing is uploaded twice);
    regular files under ``outputs/<table>/`` and ``metadata/`` that are not cataloged become registered,
    unsealed entries (uploaded marked ``Partial_Output`` unless declared complete). Symlinks are not
    re-registered: what was staged cannot be known from the directory alone.
    """
    path = work / "manifest.sqlite"
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{path}{suffix}")
        if old.exists():
            old.rename(Path(f"{path}.corrupt-{stamp}{suffix}"))
    manifest = Manifest(path)
    catalog, schema = services.ports.catalog, services.schema
    cataloged: set[str] = set()
    for table_name in schema.list_asset_tables():
        table = schema.asset_table(table_name)
        links = catalog.query(table.schema, f"{table.name}_Execution", {"Execution": execution_rid})
        rids = [r[table.name] for r in links if r.get("Asset_Role") in (None, AssetRole.output.value)]
        if not rids:
            continue
        wanted = sorted(set(rids))  # one request each for the rows and their types: the adapter splits long lists
        types_of: dict[str, list[str]] = {}
        for t in catalog.query(table.schema, f"{table.name}_Asset_Type", {table.name: wanted}):
            types_of.setdefault(t[table.name], []).append(t["Asset_Type"])
        for row in catalog.query(table.schema, table.name, {"RID": wanted}):
            sub = "metadata" if table.name == MLAsset.execution_metadata.value else f"outputs/{table.name}"
            rel = f"{sub}/{row['Filename']}"
            e = manifest.register(
                schema=table.schema,
                asset_table=table.name,
                path=rel,
                filename=row["Filename"],
                asset_types=types_of.get(row["RID"], []),
            )
            manifest.mark_stored(e.key, url=row["URL"], md5=row["MD5"], length=int(row["Length"] or 0))
            manifest.mark_cataloged({e.key: row["RID"]})
            cataloged.add(rel)
    for sub, table_name in [("metadata", MLAsset.execution_metadata.value)] + [
        (f"outputs/{d.name}", d.name) for d in sorted((work / "outputs").glob("*")) if d.is_dir()
    ]:
        folder = work / sub
        if not folder.is_dir():
            continue
        try:
            table = schema.asset_table(table_name)
        except DerivaMLException:
            continue
        for f in sorted(folder.iterdir()):
            rel = f"{sub}/{f.name}"
            if rel in cataloged or f.is_symlink() or not f.is_file():
                continue
            types: tuple[str, ...] = ()
            if sub == "metadata":
                types = tuple(t for prefix, t in _METADATA_TYPES if f.name.startswith(prefix))[:1]
            else:
                types = schema.default_asset_types(table.name)
            manifest.register(schema=table.schema, asset_table=table.name, path=rel, filename=f.name, asset_types=types)
    return manifest
