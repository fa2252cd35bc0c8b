"""An execution's inputs (dataset bags, assets, their Input links) and its metadata files (configuration.json,
uv.lock, the environment snapshot, the user's extra files), written and uploaded at initialization."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from deriva_ml.core.codec import configuration_to_json
from deriva_ml.core.definitions import ML_SCHEMA, ExecMetadataType, MLAsset
from deriva_ml.core.records import (
    DatasetSpec,
    ExecutionConfiguration,
)
from deriva_ml.core.redact import is_config_text, redact_jsonable, redact_text
from deriva_ml.core.rid import RID
from deriva_ml.core.status import Status
from deriva_ml.execution._manifest import CATALOGED, ManifestEntry, Seal
from deriva_ml.execution._upload import (
    PARTIAL_OUTPUT as PARTIAL_OUTPUT,
)
from deriva_ml.execution._upload import (
    _seal_of,
    metadata_catalog_hint,
    upload,
)
from deriva_ml.services.assets import download_assets, find_uv_lock
from deriva_ml.store._files import atomic_file, md5_file
from deriva_ml.store.port import UploadOptions

if TYPE_CHECKING:
    from deriva_ml.execution._execution import Execution


def redacted_configuration_json(configuration: ExecutionConfiguration) -> str:
    """``configuration.json`` text with every secret redacted (what the library writes and uploads)."""
    return json.dumps(redact_jsonable(json.loads(configuration_to_json(configuration))), indent=2, ensure_ascii=False)


def download_inputs(exe: Execution) -> tuple[DatasetSpec, ...]:
    services = exe._services
    resolved: list[DatasetSpec] = []
    for spec in exe.configuration.datasets:
        bag = services.download_bag(spec)
        exe.datasets.append(bag)
        resolved.append(attrs.evolve(spec, version=bag.version))
        exe.update_status(Status.initializing, f"Dataset {spec.rid} {bag.version} ready")
    by_table: dict[tuple[str, str], list[RID]] = {}
    if exe.configuration.assets:
        fetched = download_assets(
            services.ports, services.schema, exe.configuration.assets, exe.working_dir / "inputs" / "assets"
        )
        for (schema, table), rid, path in fetched:
            by_table.setdefault((schema, table), []).append(rid)
            exe.asset_paths.setdefault(table, []).append(path)
    if not exe.dry_run:
        from deriva_ml.core.plans import plan_input_links

        batch = plan_input_links(exe.execution_rid, [s.rid for s in resolved], by_table, services.schema.layout)
        if batch:
            services.ports.catalog.apply(batch)
    return tuple(resolved)


def _write(dest: Path, data: bytes, md5: str | None = None) -> Seal:
    """Write ``data`` to ``dest``; its seal from the bytes written (the file is not read back; ``md5``: theirs,
    when known already)."""
    dest.write_bytes(data)
    return _sealed(dest, len(data), md5 or hashlib.md5(data, usedforsecurity=False).hexdigest())


def _sealed(dest: Path, length: int, md5: str) -> Seal:
    """The seal of ``dest``, just made with ``length`` bytes whose MD5 is ``md5``."""
    st = dest.stat()
    return Seal(md5=md5, length=length, mtime_ns=st.st_mtime_ns, ino=st.st_ino)


#: Shared copies checked to hold the bytes their name promises: (path, inode, size, mtime).
_VERIFIED_SHARED: set[tuple[str, int, int, int]] = set()


def _holds(shared: Path, length: int, md5: str) -> bool:
    """``shared`` exists and holds ``length`` bytes whose MD5 is ``md5`` (hashed once per process while it
    is the same file: path, inode, size and modification time)."""
    try:
        st = shared.stat()
    except FileNotFoundError:
        return False
    identity = (str(shared), st.st_ino, st.st_size, st.st_mtime_ns)
    if identity in _VERIFIED_SHARED:
        return True
    if st.st_size != length or md5_file(shared)[0] != md5:
        return False
    _VERIFIED_SHARED.add(identity)
    return True


def _write_shared(dest: Path, data: bytes, md5: str, shared_dir: Path) -> Seal:
    """``dest`` holding ``data`` (whose MD5 is ``md5``) as a hard link to one read-only copy in ``shared_dir``
    (``<md5>.<name>``, written once): the same large file (a scrubbed ``uv.lock``) in every execution of a
    project costs no write and no writeback. A shared copy that is not what its name says (checked once per
    process) is replaced; the file is written on its own when linking is not possible (another file system,
    a file system without links). The copies are links to one file: edit none of them (each was uploaded
    when its execution initialized; the store keeps its own copy)."""
    shared = shared_dir / f"{md5}.{dest.name}"
    try:
        if not _holds(shared, len(data), md5):
            with atomic_file(shared) as f:
                f.write(data)
            shared.chmod(0o444)
        os.link(shared, dest)
    except OSError:
        return _write(dest, data, md5)
    return _sealed(dest, len(data), md5)


def write_metadata_files(exe: Execution, extra: Sequence[tuple[Path, str]]) -> None:
    """configuration.json, uv.lock (scrubbed), the environment snapshot and the user's extra files, each
    written once, registered and sealed (one manifest commit for all), then uploaded at once."""
    meta_dir = exe.working_dir / "metadata"
    meta_dir.mkdir(parents=True, exist_ok=True)
    files: list[tuple[Path, str, Seal]] = []
    cfg = meta_dir / "configuration.json"
    text = redacted_configuration_json(exe.configuration) + "\n"
    files.append((cfg, ExecMetadataType.deriva_config.value, _write(cfg, text.encode())))
    from deriva_ml.execution._environment import environment_snapshot, redacted_lock_bytes, render_snapshot

    lock = find_uv_lock(exe._services.ports.dirs.project_root)
    if lock is not None:
        dest = meta_dir / "uv.lock"
        # private index URLs may carry credentials (https://user:token@index/simple)
        data, md5 = redacted_lock_bytes(Path(lock))
        shared_dir = exe._services.ports.dirs.working_dir / "metadata-shared"
        files.append((dest, ExecMetadataType.execution_config.value, _write_shared(dest, data, md5, shared_dir)))
    now = exe._services.ports.now()
    stamp = now.strftime("%Y%m%d_%H%M%S")
    snap = meta_dir / f"environment_snapshot_{stamp}.txt"
    text = render_snapshot(environment_snapshot(now, argv=exe.configuration.argv or None))
    files.append((snap, ExecMetadataType.runtime_env.value, _write(snap, text.encode())))
    for path, asset_type in extra:
        dest = meta_dir / path.name
        if is_config_text(path.name):
            # configuration text (YAML, JSON, TOML, INI, .env ...) is redacted like Hydra's files
            text = path.read_text(encoding="utf-8", errors="replace")
            files.append((dest, asset_type, _write(dest, redact_text(text).encode("utf-8"))))
            continue
        if path.resolve() != dest.resolve():
            shutil.copyfile(path, dest)  # anything else (binary, data) is the user's: copied verbatim
        files.append((dest, asset_type, _seal_of(dest)))
    table = MLAsset.execution_metadata.value
    known = exe._services.stored_objects
    sealed: list[tuple[ManifestEntry, str, int, str]] = []
    with exe._manifest.batch():  # every file registered and sealed (written completely by us): one commit
        for path, asset_type, seal in files:
            entry = exe._register(table, ML_SCHEMA, path, path.name, (asset_type,), {})
            exe._manifest.seal(entry.key, seal)
            sealed.append((entry, seal.md5, seal.length, asset_type))
    if exe.dry_run:
        return
    # metadata files are uploaded at once, so they exist even if the run crashes
    hint = metadata_catalog_hint(exe, table, sealed)
    exe._catalog_hint = hint
    try:
        upload(exe, UploadOptions(), only={e.key for e, *_ in sealed}, progress=None)
    finally:
        exe._catalog_hint = None
    keys = {e.key for e, *_ in sealed}
    for e in exe._manifest.entries(CATALOGED):
        if e.key in keys and e.url and e.md5 and e.asset_rid:
            known[(table, e.md5, e.filename)] = (e.url, e.length or 0, RID(e.asset_rid))
