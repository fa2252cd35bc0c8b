"""An execution's outputs before upload: registering a file (``asset_file_path``: a new file or an existing
one staged by symlink or copy), its metadata, discarding it, and sealing it (length, MD5, mtime, inode).

Functions of the :class:`~deriva_ml.execution._execution.Execution` they serve (its manifest, working
directory and services); the Execution keeps thin methods that call them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml.core.errors import DerivaMLException, ExecutionError, InvalidFileName, UnknownColumn, UploadFailed
from deriva_ml.core.redact import redact_description
from deriva_ml.execution._manifest import CATALOGED, REGISTERED, ManifestEntry, ManifestError, Seal
from deriva_ml.execution._paths import AssetFilePath, check_plain_name
from deriva_ml.execution._upload import _matches, _seal_of, verified_path

if TYPE_CHECKING:
    from deriva_ml.execution._execution import Execution

#: Columns an asset row gets from the upload itself (not settable as metadata).
_ASSET_BUILTIN = frozenset({"URL", "Filename", "Length", "MD5", "Description"})
_SYSTEM = frozenset({"RID", "RCT", "RMT", "RCB", "RMB"})


def manifest_key(exe: Execution, path: Path) -> str:
    return os.path.relpath(path, exe.working_dir)


def register(
    exe: Execution,
    table: str,
    schema: str,
    path: Path,
    filename: str,
    asset_types: Sequence[str],
    metadata: Mapping[str, Any],
    description: str | None = None,
    staged: tuple[str, int, int] | None = None,
) -> ManifestEntry:
    return exe._manifest.register(
        schema=schema,
        asset_table=table,
        path=manifest_key(exe, path),
        filename=filename,
        asset_types=asset_types,
        metadata=metadata,
        description=description,
        staged=staged,
    )


def _outputs_dir(exe: Execution, table: str) -> Path:
    d = exe.working_dir / "outputs" / table
    if not d.is_dir():  # a stat per registration; mkdir only the first time (or after the user removed it)
        d.mkdir(parents=True, exist_ok=True)
    return d


def asset_file_path(
    exe: Execution,
    asset_name: str,
    file_name: str | os.PathLike[str],
    asset_types: Sequence[str] | str | None,
    copy_file: bool,
    rename_file: str | None,
    metadata: Mapping[str, Any],
    description: str | None,
) -> AssetFilePath:
    """See :meth:`Execution.asset_file_path`."""
    schema = exe._services.schema
    if rename_file is not None:  # checked first: its error names rename_file, whatever file_name is
        from deriva_ml.store.names import validate_filename

        validate_filename(rename_file, what="rename_file")
    table = schema.asset_table(asset_name)
    validate_metadata(table, metadata)
    if isinstance(asset_types, str):
        asset_types = [asset_types]
    types = tuple(asset_types) if asset_types is not None else schema.default_asset_types(table.name)
    schema.validate_terms("Asset_Type", types)
    source = Path(file_name)
    existing = os.path.exists(source) and (source.is_absolute() or os.sep in str(file_name) or source.is_file())
    staged: tuple[str, int, int] | None = None
    if existing and source.is_file():
        name = check_plain_name(rename_file or source.name)
        dest = _outputs_dir(exe, table.name) / name
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        if copy_file:
            shutil.copy2(source, dest)
        else:
            # staged on purpose: what exactly was staged is recorded (a later swap is refused)
            real = source.resolve()
            st = real.stat()
            dest.symlink_to(real)
            staged = (str(real), st.st_dev, st.st_ino)
    else:
        if existing:
            raise InvalidFileName(f"file_name={str(file_name)!r} exists but is not a regular file")
        if os.sep in str(file_name) or (os.altsep and os.altsep in str(file_name)):
            raise InvalidFileName(
                f"file_name={str(file_name)!r} does not exist; to create a new file give a plain name "
                f"(no directories), or stage an existing file by its path"
            )
        name = check_plain_name(rename_file or str(file_name))
        dest = _outputs_dir(exe, table.name) / name
    register(exe, table.name, table.schema, dest, name, types, metadata, redact_description(description), staged)
    out = AssetFilePath(dest)
    out._execution = exe
    out.asset_name = table.name
    out.file_name = name
    out.asset_types = types
    exe._log.debug("registered output", table=table.name, file=name)
    return out


def validate_metadata(table: Any, meta: Mapping[str, Any]) -> None:
    allowed = [c.name for c in table.columns if c.name not in _ASSET_BUILTIN and c.name not in _SYSTEM]
    for col in meta:
        if col not in allowed:
            raise UnknownColumn(table.name, col, allowed)


def set_metadata(exe: Execution, path: AssetFilePath, column: str, value: Any) -> None:
    table = exe._services.schema.asset_table(path.asset_name)
    validate_metadata(table, {column: value})
    exe._manifest.set_metadata(manifest_key(exe, path), column, value)


def discard_output(exe: Execution, path: str | os.PathLike[str]) -> None:
    """See :meth:`Execution.discard_output`."""
    p = Path(path)
    key = manifest_key(exe, p) if p.is_absolute() else os.path.normpath(str(p))
    entry = exe._manifest.get(key)
    if entry is None:
        known = [e.path for e in exe._manifest.entries() if e.state != CATALOGED]
        raise ExecutionError(f"{str(path)!r} is not a registered output of {exe.execution_rid}; pending: {known[:20]}")
    if entry.state == CATALOGED:
        raise ExecutionError(f"{str(path)!r} is already cataloged as {entry.asset_rid}; it cannot be discarded")
    exe._manifest.discard(entry.key)
    exe._log.info("output discarded", file=entry.path)


def seal_outputs(exe: Execution) -> int:
    """Seal every registered output that exists and is not sealed as it is now; the seals are committed
    together (one transaction). Returns the number of outputs sealed."""
    seals: dict[int, Seal] = {}
    real: dict[str, str] = {}
    for e in exe._manifest.entries(REGISTERED):
        try:
            path = verified_path(exe, e, real)
        except (UploadFailed, ManifestError):
            continue
        if path is None:
            continue
        if e.seal is not None and _matches(e.seal, path):
            continue
        try:
            seals[e.key] = _seal_of(path)
        except DerivaMLException as exc:  # unreadable now: stays unsealed
            exe._log.warning("output not sealed", file=e.path, error=str(exc))
    try:
        exe._manifest.seal_many(seals)
    except ManifestError as exc:  # the manifest cannot be written: every output stays unsealed
        exe._log.warning("outputs not sealed", count=len(seals), error=str(exc))
        return 0
    return len(seals)


def seal_entry(exe: Execution, e: ManifestEntry, path: Path | None = None) -> Seal:
    path = path or verified_path(exe, e)
    if path is None:
        raise UploadFailed(f"{e.path}: cannot seal a file that does not exist")
    seal = _seal_of(path)
    exe._manifest.seal(e.key, seal)
    return seal
