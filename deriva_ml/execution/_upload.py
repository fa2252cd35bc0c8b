"""Uploading an execution's outputs: verify each file, put it in the object store on a bounded thread
pool, record what landed in the manifest (durable first), then catalog the rows in one planned batch.

Functions of the :class:`~deriva_ml.execution._execution.Execution` they serve (its manifest, working
directory and services); the Execution keeps thin methods that call them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import stat as stat_mod
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import attrs

from deriva_ml._progress import ProgressBar, progress_bar
from deriva_ml.core.definitions import ML_SCHEMA, ExecMetadataType
from deriva_ml.core.errors import DerivaMLException, UploadFailed
from deriva_ml.core.plans import StoredOutput, plan_output_rows
from deriva_ml.core.rid import RID
from deriva_ml.core.status import Status
from deriva_ml.execution._manifest import CATALOGED, REGISTERED, STORED, ManifestEntry, Seal
from deriva_ml.execution._paths import UploadedAsset
from deriva_ml.execution._upload_progress import ProgressLog
from deriva_ml.store._files import md5_stream
from deriva_ml.store.port import DeferredDurability, ObjectStore, StoredObject, UploadOptions

if TYPE_CHECKING:
    from deriva_ml.execution._execution import Execution

ProgressCallback = Callable[[int, int], None]
UnsealedPolicy = Literal["mark", "skip", "complete"]
#: Asset_Type term given to an output uploaded without a seal (possibly torn: see docs/security.md).
PARTIAL_OUTPUT = "Partial_Output"
_PARTIAL_DESCRIPTION = "An output uploaded without a seal: the run did not end normally, so the file may be incomplete"

_T = TypeVar("_T")
_R = TypeVar("_R")

#: In-flight uploads per worker thread: enough to keep every worker busy, while memory stays bounded by
#: the window (not by the number of outputs) however many files an execution wrote.
_WINDOW_PER_WORKER = 2

#: Outputs made durable (one store sync) and recorded in the manifest (one transaction) together, when
#: the store defers its fsyncs: a crash loses at most this many records, whose bytes are then re-put.
_SYNC_GROUP = 256

#: Up to this many bytes in all, outputs going to a store that defers its fsyncs (the local store) are copied
#: in the calling thread, however many files: small copies are system calls on metadata (create, rename),
#: which threads only contend for (1,000 files of 1 KiB: ~20% faster inline, benchmarks/README.md). Larger
#: uploads use the pool, whose copies of big files overlap.
_INLINE_BYTES = 64 * 1024 * 1024


def _bounded(
    pool: ThreadPoolExecutor, fn: Callable[[_T], _R], items: Iterable[_T], *, window: int
) -> Iterator[Future[_R]]:
    """Submit ``fn(item)`` for each item with at most ``window`` futures in flight; yield each one done."""
    it = iter(items)
    in_flight: set[Future[_R]] = set()
    for item in it:
        in_flight.add(pool.submit(fn, item))
        if len(in_flight) >= window:
            break
    while in_flight:
        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
        for item in itertools.islice(it, len(done)):
            in_flight.add(pool.submit(fn, item))
        yield from done


def _run_now(fn: Callable[[_T], _R], item: _T) -> Future[_R]:
    """``fn(item)`` run in this thread, as a done future (its exception, if any, raised by ``result()``)."""
    fut: Future[_R] = Future()
    try:
        fut.set_result(fn(item))
    except BaseException as exc:
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: not an upload failure
        fut.set_exception(exc)
    return fut


def _forward_progress(report: Callable[[int, int], None], key: int, done: int, _total: int) -> None:
    report(key, done)


def _md5_nofollow(path: Path) -> tuple[str, int]:
    """``(md5, length)`` of a regular file, never following a symlink put there since it was checked."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise UploadFailed(f"cannot read {str(path)!r}: {exc}") from exc
    with os.fdopen(fd, "rb") as f:
        return md5_stream(f)


def _seal_of(path: Path) -> Seal:
    md5, length = _md5_nofollow(path)
    st = os.stat(path)
    return Seal(md5=md5, length=length, mtime_ns=st.st_mtime_ns, ino=st.st_ino)


def _matches(seal: Seal, path: Path) -> bool:
    """The file is still what was sealed (same inode, length and modification time)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_ino, st.st_size, st.st_mtime_ns) == (seal.ino, seal.length, seal.mtime_ns)


@attrs.frozen
class CatalogHint:
    """What ``_metadata_catalog_hint`` learned for ``_catalog_outputs``: rows known to exist by URL,
    URLs already probed (absent then), whether to insert with on-conflict-skip instead of probing, and
    whether any known row was remembered from an earlier execution (not read now)."""

    existing: Mapping[tuple[str, str, str], RID]
    probed: frozenset[str]
    skip_conflicts: bool
    remembered: bool


def _plain_object_url(table: str, md5: str, filename: str) -> str | None:
    """The object URL the store gives these bytes under this name (its first choice), None if not valid."""
    from deriva_ml.store.names import object_url

    try:
        return object_url(table, md5, filename)
    except DerivaMLException:
        return None


def verified_path(exe: Execution, e: ManifestEntry, real: dict[str, str] | None = None) -> Path | None:
    """The file to upload for ``e`` after checking it is what was registered (None: it does not exist).

    A manifest path must stay inside the working directory; the file there must be a regular file,
    or, for a file staged on purpose, a symlink to exactly the recorded source, which must still be
    the same file (device and inode). Anything else raises UploadFailed. ``real``: resolved directories
    shared by the checks of one pass over the manifest (outputs of one table share their directory).
    """
    rel = Path(e.path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UploadFailed(
            f"manifest entry {e.path!r} is outside the working directory {str(exe.working_dir)!r}; refused "
            f"(call exe.discard_output({e.path!r}) to drop it)"
        )
    path = exe.working_dir / rel
    real = {} if real is None else real
    root = _realpath(real, str(exe.working_dir))
    parent = _realpath(real, str(path.parent))
    if os.path.commonpath([root, parent]) != root:
        raise UploadFailed(f"{str(path)!r} resolves outside the working directory {root!r}; refused")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UploadFailed(f"cannot read {str(path)!r}: {exc}") from exc
    if stat_mod.S_ISREG(st.st_mode):
        return path
    if stat_mod.S_ISLNK(st.st_mode) and e.staged_source is not None:
        target = os.readlink(path)
        if target != e.staged_source:
            raise UploadFailed(
                f"{str(path)!r} was staged from {e.staged_source!r} but now points to {target!r}; refused"
            )
        try:
            sst = os.lstat(e.staged_source)
        except FileNotFoundError:
            return None
        if not stat_mod.S_ISREG(sst.st_mode) or (sst.st_dev, sst.st_ino) != (e.staged_dev, e.staged_ino):
            raise UploadFailed(
                f"{str(path)!r}: the staged file {e.staged_source!r} was replaced since it was registered; "
                f"refused (register it again with asset_file_path to stage the new file)"
            )
        return Path(e.staged_source)
    kind = "a symlink" if stat_mod.S_ISLNK(st.st_mode) else "not a regular file"
    raise UploadFailed(
        f"{str(path)!r} is {kind} that was not staged with asset_file_path; refused (outputs are uploaded "
        f"only as written in the working directory; call exe.discard_output({e.path!r}) to drop it)"
    )


def _realpath(known: dict[str, str], path: str) -> str:
    found = known.get(path)
    if found is None:
        found = known[path] = os.path.realpath(path)
    return found


def metadata_catalog_hint(
    exe: Execution, table: str, sealed: Sequence[tuple[ManifestEntry, str, int, str]]
) -> CatalogHint:
    """What the metadata upload needs to know about the catalog, with at most one request.

    A file this handle cataloged before (uv.lock of every run) is neither sent nor probed again: its URL
    and row are remembered (a stale row is caught at the insert, then everything is probed afresh). A
    file that may be in the catalog already (not remembered, and not fresh bytes like configuration.json
    or the environment snapshot) is looked up by URL before any PUT: one query for all of them, and a
    cataloged one is not sent. Fresh files are inserted with on-conflict-skip instead of probed.
    """
    known = exe._services.stored_objects
    fresh = {ExecMetadataType.deriva_config.value, ExecMetadataType.runtime_env.value}
    existing: dict[tuple[str, str, str], RID] = {}
    remembered = False
    if any((table, md5, e.filename) not in known and t not in fresh for e, md5, _, t in sealed):
        candidates: dict[str, tuple[ManifestEntry, str, int]] = {}
        for e, md5, length, _t in sealed:
            memo = known.get((table, md5, e.filename))
            url = memo[0] if memo else _plain_object_url(table, md5, e.filename)
            if url is not None:
                candidates[url] = (e, md5, length)
        rows = exe._services.ports.catalog.query(
            ML_SCHEMA, table, {"URL": sorted(candidates)}, columns=["RID", "URL", "MD5"]
        )
        stored: list[tuple[int, str, str, int]] = []
        for row in rows:
            e, md5, length = candidates[row["URL"]]
            if row.get("MD5") == md5:  # the URL promises these bytes; the row agrees
                stored.append((e.key, row["URL"], md5, length))
                existing[(ML_SCHEMA, table, row["URL"])] = RID(row["RID"])
        exe._manifest.mark_stored_many(stored)  # one commit
        return CatalogHint(existing=existing, probed=frozenset(candidates), skip_conflicts=False, remembered=False)
    stored = []
    for e, md5, length, _t in sealed:
        memo = known.get((table, md5, e.filename))
        if memo is not None:  # the same bytes under the same name: already stored and cataloged
            stored.append((e.key, memo[0], md5, length))
            existing[(ML_SCHEMA, table, memo[0])] = memo[2]
            remembered = True
    exe._manifest.mark_stored_many(stored)  # one commit
    return CatalogHint(existing=existing, probed=frozenset(), skip_conflicts=True, remembered=remembered)


def upload(
    exe: Execution,
    options: UploadOptions,
    *,
    only: set[int] | None,
    progress: ProgressCallback | None,
    unsealed: UnsealedPolicy = "mark",
    bar: bool = False,
) -> None:
    """Upload the registered outputs (``only`` those keys); ``bar``: show a terminal progress bar."""
    with progress_bar("upload", None, "bytes", enabled=bar) as pbar:
        upload_with(exe, options, only=only, progress=progress, unsealed=unsealed, pbar=pbar)


def upload_with(
    exe: Execution,
    options: UploadOptions,
    *,
    only: set[int] | None,
    progress: ProgressCallback | None,
    unsealed: UnsealedPolicy,
    pbar: ProgressBar | None,
) -> None:
    ports, schema = exe._services.ports, exe._services.schema
    log = exe._log
    pending = [e for e in exe._manifest.entries(REGISTERED) if only is None or e.key in only]
    missing: list[str] = []
    refused: list[str] = []
    skipped: list[str] = []
    sizes: dict[int, int] = {}
    sources: dict[int, tuple[Path, str | None]] = {}
    live_done = exe._live and exe.status is Status.completed
    partial_keys: list[ManifestEntry] = []
    seals: dict[int, Seal] = {}
    real: dict[str, str] = {}
    for e in pending:
        try:
            src = verified_path(exe, e, real)
        except UploadFailed as exc:
            refused.append(str(exc))
            log.error("output refused", file=e.path, error=str(exc))
            continue
        if src is None:
            missing.append(e.path)
            continue
        md5: str | None = None
        if e.seal is not None and _matches(e.seal, src):
            md5 = e.seal.md5
        elif live_done or unsealed == "complete":
            # the process that ran the execution to its normal end (or the user, explicitly) vouches for it
            seals[e.key] = _seal_of(src)
            md5 = seals[e.key].md5
        elif unsealed == "skip":
            skipped.append(e.path)
            continue
        else:
            partial_keys.append(e)
        sources[e.key] = (src, md5)
        sizes[e.key] = src.stat().st_size
    exe._manifest.seal_many(seals)  # one commit, before any of them is put in the store
    if partial_keys:
        schema.add_term("Asset_Type", PARTIAL_OUTPUT, _PARTIAL_DESCRIPTION, exists_ok=True)
        for e in partial_keys:
            if PARTIAL_OUTPUT not in e.asset_types:
                exe._manifest.set_asset_types(e.key, (*e.asset_types, PARTIAL_OUTPUT))
        log.warning(
            "uploading unsealed outputs marked Partial_Output",
            count=len(partial_keys),
            files=[e.path for e in partial_keys[:20]],
        )
    total = sum(sizes.values())
    if pbar is not None:
        pbar.set_total(total)
    reporter = progress or ProgressLog(log, total, pbar)
    moved: dict[int, int] = {}
    lock = threading.Lock()

    def report(key: int, n: int) -> None:
        with lock:
            moved[key] = n
            reporter(sum(moved.values()), total)

    def put(e: ManifestEntry) -> tuple[ManifestEntry, StoredObject]:
        path, md5 = sources[e.key]
        try:
            if md5 is None:
                md5, _length = _md5_nofollow(path)
            stored = store.put(
                path,
                table=e.asset_table,
                filename=e.filename,
                md5=md5,
                options=options,
                progress=functools.partial(_forward_progress, report, e.key),
            )
        except DerivaMLException:
            raise
        except OSError as exc:  # a full disk, an I/O error: name the file, keep the cause
            raise UploadFailed(f"{str(path)!r} ({e.asset_table}/{e.filename}): {exc}") from exc
        report(e.key, stored.length)
        return e, stored

    # a local store defers its fsyncs: one sync makes a whole group durable before the manifest records it
    deferred = ports.store.deferred() if isinstance(ports.store, DeferredDurability) else None
    store: ObjectStore = deferred if deferred is not None else ports.store
    landed: list[tuple[ManifestEntry, StoredObject]] = []

    def record_landed() -> None:
        batch, landed[:] = list(landed), []  # taken once: a failure here is not retried by the finally
        if not batch:
            return
        if deferred is not None:
            deferred.sync()  # every object durable before anything (manifest, then catalog) points at it
        exe._manifest.mark_stored_many([(e.key, s.url, s.md5, s.length) for e, s in batch])
        for e, s in batch:
            log.info("stored", file=e.filename, table=e.asset_table, bytes=s.length, url=s.url)

    failures: list[str] = []
    first_error: BaseException | None = None
    todo = [e for e in pending if e.key in sources]
    workers = max(1, min(ports.upload_workers, len(todo)))
    group = 1 if deferred is None else _SYNC_GROUP
    inline = workers == 1 or (deferred is not None and total <= _INLINE_BYTES)
    with contextlib.ExitStack() as stack:
        if inline:  # nothing to parallelise: no thread pool (threads started per call cost more than the copies)
            results: Iterator[Future[tuple[ManifestEntry, StoredObject]]] = map(_run_now, itertools.repeat(put), todo)
        else:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deriva-ml-upload"))
            results = _bounded(pool, put, todo, window=workers * _WINDOW_PER_WORKER)
        try:
            for fut in results:
                try:
                    landed.append(fut.result())
                except DerivaMLException as exc:
                    failures.append(str(exc))
                    first_error = first_error or exc
                    log.error("upload failed", error=str(exc))
                    continue
                # recorded as files land (in groups when a sync is deferred), so a crash re-sends few bytes
                if len(landed) >= group:
                    record_landed()
        finally:
            record_landed()
    stored_entries = [e for e in exe._manifest.entries(STORED) if only is None or e.key in only]
    if stored_entries:
        catalog_outputs(exe, stored_entries)
    # features (branch features): staged feature values, after the asset rows they may reference
    from deriva_ml.execution._feature_manifest import write_pending_features

    write_pending_features(exe._services.ports.catalog, exe._manifest, exe.execution_rid, log, only=only)
    if skipped:
        log.warning("unsealed outputs left local (unsealed='skip')", count=len(skipped), files=skipped[:20])
    if failures:
        raise UploadFailed(
            f"{len(failures)} output file(s) failed to upload (the others are recorded; call "
            f"upload_execution_outputs() again to retry): " + "; ".join(failures[:5])
        ) from first_error
    if refused:
        raise UploadFailed(
            f"{len(refused)} registered output(s) refused, the rest were uploaded: " + "; ".join(refused[:5])
        )
    if missing:
        raise UploadFailed(
            f"{len(missing)} registered output file(s) do not exist, the rest were uploaded: "
            + ", ".join(missing[:20])
            + ". Write them and upload again, or drop each registration with exe.discard_output(path)"
        )


def catalog_outputs(exe: Execution, entries: Sequence[ManifestEntry]) -> None:
    ports = exe._services.ports
    hint, exe._catalog_hint = exe._catalog_hint, None  # metadata files: see _metadata_catalog_hint
    existing: dict[tuple[str, str, str], RID] = dict(hint.existing) if hint else {}
    by_table: dict[tuple[str, str], list[str]] = {}
    for e in entries:
        by_table.setdefault((e.schema, e.asset_table), []).append(e.url or "")
    for (schema, table), urls in by_table.items():
        ask = sorted({u for u in urls if (schema, table, u) not in existing and not (hint and u in hint.probed)})
        if hint and hint.skip_conflicts:
            ask = []
        for row in ports.catalog.query(schema, table, {"URL": ask}, columns=["RID", "URL"]) if ask else []:
            existing[(schema, table, row["URL"])] = RID(row["RID"])
    outputs = [
        StoredOutput(
            key=e.key,
            schema=e.schema,
            table=e.asset_table,
            url=e.url or "",
            filename=e.filename,
            length=e.length or 0,
            md5=e.md5 or "",
            description=e.description,
            asset_types=e.asset_types,
            metadata=e.metadata,
        )
        for e in entries
    ]
    batch, ident = plan_output_rows(
        exe.execution_rid, outputs, existing, skip_conflicts=bool(hint and hint.skip_conflicts)
    )
    exe._manifest.make_durable()  # the registrations and seals on disk before the rows point at their files
    try:
        result = ports.catalog.apply(batch)
    except DerivaMLException as exc:
        if not (hint and hint.remembered):
            raise
        # a remembered metadata row is gone or changed: forget what this handle remembers, ask the catalog
        exe._log.warning("remembered metadata rows are stale; probing the catalog", error=str(exc))
        exe._services.stored_objects.clear()
        catalog_outputs(exe, entries)
        return
    rids = {key: result.rids.get(v, v) for key, v in ident.items()}
    exe._manifest.mark_cataloged({k: str(v) for k, v in rids.items()})
    exe._log.info("cataloged outputs", count=len(entries), tables=sorted(t for _, t in by_table))


def uploaded_assets(exe: Execution) -> dict[str, list[UploadedAsset]]:
    """Every cataloged output of ``exe`` by ``schema/table`` (what ``upload_execution_outputs`` returns)."""
    result: dict[str, list[UploadedAsset]] = {}
    for e in exe._manifest.entries(CATALOGED):
        result.setdefault(f"{e.schema}/{e.asset_table}", []).append(
            UploadedAsset(
                table=e.asset_table,
                rid=RID(e.asset_rid or ""),
                url=e.url or "",
                filename=e.filename,
                md5=e.md5 or "",
                length=e.length or 0,
                asset_types=e.asset_types,
                path=str(exe.working_dir / e.path),
            )
        )
    return result
