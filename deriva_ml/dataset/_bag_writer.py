"""Writing a bag directory: streamed CSVs, ``fetch.txt``, the BagIt manifests, and materialisation.

Nothing here decides what goes into a bag (that is ``_bag_plan.py``); this module writes what it is
given, hashing every file while writing it, so no file is read back to be checksummed:

* :class:`BagWriter` appends rows to one CSV per table (a table may receive rows from several places:
  members, foreign-key targets, features; each RID is written once), appends asset files to ``fetch.txt``
  as they are met, and at :meth:`BagWriter.finish` writes ``bagit.txt``, ``bag-info.txt``,
  ``manifest-{md5,sha256}.txt`` and ``tagmanifest-{md5,sha256}.txt`` in the layout bdbag writes (BagIt
  0.97; ``bdbag --validate full`` accepts the result). Memory does not grow with the number of rows
  beyond one RID per written row (to write each once; 8 bytes each, :class:`~._rid_set.RidSet`) — rows
  are written as they arrive.
* :func:`materialize` copies every ``fetch.txt`` file into the bag, MD5-verified while copying (from the
  asset cache or the local store's file when there is one, else through ``store.get``), without an fsync
  per file: one group sync (``syncfs`` on Linux) makes all of them durable before the bag is declared
  complete (renamed into place by the caller).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from deriva_ml._log import get_logger
from deriva_ml._progress import ProgressBar
from deriva_ml.context import Ports
from deriva_ml.dataset._bag_plan import BagError, FetchEntry, csv_value
from deriva_ml.dataset._rid_set import RidSet
from deriva_ml.store._files import PendingSync, read_chunks, write_hashed

_TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-md5.txt", "manifest-sha256.txt", "fetch.txt")
_REMOTE = "remote-files.tsv"  # the writer's own list of fetch entries (store URL, md5, ...): in the work dir
SOFTWARE_AGENT = "deriva-ml (BagIt 0.97, written by deriva_ml.dataset._bag_writer)"
BDBAG_PROFILE = "https://raw.githubusercontent.com/fair-research/bdbag/master/profiles/bdbag-profile.json"


class _HashingFile(io.RawIOBase):
    """A binary file that hashes (MD5, SHA-256) and counts what is written to it."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._f.write(data)
        self.md5.update(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


class _Sink:
    """One CSV of the bag, written as rows arrive (each RID once when the table has RIDs)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.raw = _HashingFile(path.open("wb"))
        self.text = io.TextIOWrapper(io.BufferedWriter(self.raw, 1 << 16), encoding="utf-8", newline="")
        self.writer = csv.writer(self.text)
        self.columns = tuple(columns)
        self.writer.writerow(self.columns)
        self.seen = RidSet()
        self.rows = 0

    def add(self, rows: Iterable[Mapping[str, Any]], *, keyed: bool) -> list[Mapping[str, Any]]:
        new: list[Mapping[str, Any]] = []
        cols = self.columns
        for r in rows:
            if keyed:
                rid = r.get("RID")
                if rid is not None and not self.seen.add(str(rid)):
                    continue
            self.writer.writerow([csv_value(r.get(c)) for c in cols])
            new.append(r)
        self.rows += len(new)
        return new

    def close(self) -> tuple[str, str, int]:
        self.text.flush()
        self.text.close()
        return self.raw.md5.hexdigest(), self.raw.sha256.hexdigest(), self.raw.size


class BagWriter:
    """Writes one bag directory (see the module doc). ``work`` holds the writer's scratch files."""

    def __init__(self, bag_dir: Path, work: Path) -> None:
        self.dir = bag_dir
        self.work = work
        self.pending = PendingSync()
        self._sinks: dict[str, _Sink] = {}
        self._payload: list[tuple[str, str, str, int]] = []  # (path, md5, sha256, size): a few per table
        self._fetch_raw = _HashingFile((bag_dir / "fetch.txt").open("wb"))
        self._remote = (work / _REMOTE).open("w", encoding="utf-8")
        self.remote_files = 0
        self.remote_bytes = 0
        self._finished = False

    # payload -----------------------------------------------------------------------------------
    def rows(
        self, rel: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, keyed: bool = True
    ) -> list[Mapping[str, Any]]:
        """Append ``rows`` to ``data/<rel>`` (created with ``columns`` on first use); returns the rows
        not written before (by RID, when ``keyed``)."""
        sink = self._sinks.get(rel)
        if sink is None:
            sink = self._sinks[rel] = _Sink(self.dir / "data" / rel, columns)
        return sink.add(rows, keyed=keyed)

    def has_rid(self, rel: str, rid: str) -> bool:
        sink = self._sinks.get(rel)
        return sink is not None and rid in sink.seen

    def row_count(self, rel: str) -> int:
        sink = self._sinks.get(rel)
        return 0 if sink is None else sink.rows

    def json(self, rel: str, value: Any, *, indent: int | None = 1) -> None:
        data = (json.dumps(value, indent=indent, sort_keys=True) + "\n").encode("utf-8")
        path = self.dir / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._payload.append(
            (
                "data/" + rel,
                hashlib.md5(data, usedforsecurity=False).hexdigest(),
                hashlib.sha256(data).hexdigest(),
                len(data),
            )
        )

    def remote(self, entry: FetchEntry, absolute_url: str) -> None:
        """Add one asset file to ``fetch.txt`` (and to the list :func:`materialize` reads)."""
        if "\t" in absolute_url or "\n" in absolute_url or "\n" in entry.path or "\t" in entry.path:
            raise BagError(f"asset {entry.rid}: URL or path contains a tab or newline: {absolute_url!r}")
        self._fetch_raw.write(f"{absolute_url}\t{entry.length}\t{entry.path}\n".encode())
        self._remote.write(f"{entry.url}\t{entry.md5}\t{entry.length}\t{entry.rid}\t{entry.path}\n")
        self.remote_files += 1
        self.remote_bytes += entry.length

    # finish ------------------------------------------------------------------------------------
    def finish(self, metadata: Mapping[str, str], now: datetime) -> None:
        """Close every file and write the BagIt tag files (manifests cover CSVs, JSON and fetch.txt files)."""
        for rel, sink in sorted(self._sinks.items()):
            md5, sha, size = sink.close()
            self._payload.append(("data/" + rel, md5, sha, size))
        self._fetch_raw.close()
        self._remote.close()
        with (self.dir / "manifest-md5.txt").open("w", encoding="utf-8") as f:
            for path, md5, _, _ in self._payload:
                f.write(f"{md5}  {path}\n")
            for entry in iter_remote(self.work):
                f.write(f"{entry.md5}  {entry.path}\n")
        with (self.dir / "manifest-sha256.txt").open("w", encoding="utf-8") as f:
            for path, _, sha, _ in self._payload:
                f.write(f"{sha}  {path}\n")
        total = sum(p[3] for p in self._payload) + self.remote_bytes
        count = len(self._payload) + self.remote_files
        (self.dir / "bagit.txt").write_text("BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n", "utf-8")
        info = {
            **metadata,
            "Bag-Software-Agent": SOFTWARE_AGENT,
            "BagIt-Profile-Identifier": BDBAG_PROFILE,
            "Bagging-Date": now.strftime("%Y-%m-%d"),
            "Bagging-Time": now.strftime("%H:%M:%S %Z").strip(),
            "Payload-Oxum": f"{total}.{count}",
        }
        (self.dir / "bag-info.txt").write_text("".join(f"{k}: {v}\n" for k, v in sorted(info.items())), "utf-8")
        for alg in ("md5", "sha256"):
            lines = []
            for name in _TAG_FILES:
                h = hashlib.new(alg)
                with (self.dir / name).open("rb") as f:
                    for buf in read_chunks(f):
                        h.update(buf)
                lines.append(f"{h.hexdigest()} {name}\n")
            (self.dir / f"tagmanifest-{alg}.txt").write_text("".join(lines), "utf-8")
        self.pending.add(files=[p for p in self.dir.rglob("*") if p.is_file()], dirs=[self.dir])
        self._finished = True

    def abort(self) -> None:
        """Close what is open (the caller removes the directory)."""
        for sink in self._sinks.values():
            with contextlib.suppress(Exception):
                sink.close()
        for f in (self._fetch_raw, self._remote):
            with contextlib.suppress(Exception):
                f.close()


def iter_remote(work: Path) -> Iterator[FetchEntry]:
    """The fetch entries a :class:`BagWriter` recorded, streamed from its scratch file."""
    from deriva_ml.core.rid import RID

    path = work / _REMOTE
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            url, md5, length, rid, rel = line.rstrip("\n").split("\t")
            yield FetchEntry(url=url, md5=md5, length=int(length), rid=RID(rid), path=rel)


def materialize(ports: Ports, writer: BagWriter, bar: ProgressBar | None) -> None:
    """Copy every fetch.txt file into the bag, MD5-verified while copying; then one group sync.

    A file the asset cache holds (same RID and MD5) is copied from there; on a store whose objects are
    local files (the embedded store) from that file; otherwise ``store.get`` downloads it (verified the
    same way). The fsyncs of all files (and of the CSVs and tag files) are one ``syncfs`` (else one
    fsync per file, together, at the end) — never one per file on the way.
    """
    log = get_logger("deriva_ml.dataset.bag")
    total = writer.remote_bytes
    done = 0
    next_mark = 0.0
    cache = None
    with contextlib.suppress(Exception):
        cache = ports.cache
    # the embedded store's objects are files (LocalObjectStore.path_of); Hatrac's are not
    path_of = getattr(ports.store, "path_of", None)
    made: set[Path] = set()
    for e in iter_remote(writer.work):
        dest = writer.dir / e.path
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        src: Path | None = None
        if cache is not None:
            with contextlib.suppress(Exception):
                src = cache.lookup(e.rid, e.md5)
        if src is None and callable(path_of):
            with contextlib.suppress(Exception):
                p = path_of(e.url)
                src = Path(p) if p is not None and Path(p).is_file() else None
        if src is not None:
            with src.open("rb") as f:
                write_hashed(
                    read_chunks(f),
                    dest,
                    what=e.url,
                    expected_md5=[e.md5],
                    expected_length=e.length,
                    pending=writer.pending,
                )
        else:
            ports.store.get(e.url, dest, md5=e.md5)
            size = dest.stat().st_size
            if size != e.length:
                raise BagError(f"{e.url}: got {size} bytes, the catalog says {e.length}")
        done += e.length
        if bar is not None:
            bar.advance()
        frac = 1.0 if total == 0 else done / total
        if frac >= next_mark:
            log.info("bag materialize progress", bytes_done=done, bytes_total=total, percent=round(frac * 100))
            next_mark = frac + 0.1
    writer.pending.add(dirs=made)
    if writer.remote_files:
        log.info("bag materialized", files=writer.remote_files, bytes=total)


def sync(writer: BagWriter) -> int:
    """Make everything the writer (and :func:`materialize`) wrote durable, together."""
    return writer.pending.flush(writer.dir)


__all__ = ["BagWriter", "iter_remote", "materialize", "sync"]
