"""Dataset-bag benchmark (run by hand): ``uv run python benchmarks/bags.py [--members 100000] [--files 300]``.

The "before" is the previous implementation, loaded in the same process from git
(``git show <ref>:deriva_ml/dataset/_bag.py``, default ref ``main``), so both are measured in the same run
on the same catalog, interleaved.

1. Memory: a metadata-only bag of ``--members`` Image members (embedded catalog) — tracemalloc peak of
   building it, of reading it back (``list_dataset_members()``: the rows themselves are the answer, so
   this grows with members by nature) and, for the new reader, of streaming the table
   (``iter_table``: what a reader holds beyond the rows). Also at a quarter of the members, to show
   the growth per member.
2. Materialising ``--files`` files of ``--size-kib`` KiB from the local store, against a baseline
   measured in the same run on the same files: MD5 + ``shutil.copyfile`` of each file (no fsync).
   Median of ``--repeat`` interleaved runs, whole ``download_dataset_bag(materialize=True)`` calls (catalog
   reads and CSVs included), each started after an untimed ``os.sync()``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from deriva_ml import DatasetSpec, DerivaML
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.dataset._bag import DatasetBag

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def load_old(ref: str) -> Any:
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:deriva_ml/dataset/_bag.py"], capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="oldbag-")) / "old_bag.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_bag", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_bag"] = mod
    spec.loader.exec_module(mod)
    return mod


def catalog(home: Path) -> DerivaML:
    ml = DerivaML("local", "t", home=home)
    ml.create_table("Subject", [ColumnDef("Name", "text")])
    ml.create_asset("Image")
    return ml


def add_rows(ml: DerivaML, n: int, prefix: str) -> list[str]:
    rows = [
        {
            "URL": f"/hatrac/Image/{i:032x}.{prefix}{i}.png",
            "Filename": f"{prefix}{i}.png",
            "Length": 1000 + i % 97,
            "MD5": f"{i:032x}",
        }
        for i in range(n)
    ]
    result = ml.catalog.apply(Batch([Insert("t", "Image", rows)]))
    return [r["RID"] for r in result.inserted[0]]


def add_files(ml: DerivaML, src: Path, n: int, size: int) -> list[str]:
    src.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        f = src / f"f{i}.bin"
        f.write_bytes(os.urandom(size))
        obj = ml.store.put(f, table="Image", filename=f.name)
        rows.append({"URL": obj.url, "Filename": obj.filename, "Length": obj.length, "MD5": obj.md5})
    result = ml.catalog.apply(Batch([Insert("t", "Image", rows)]))
    return [r["RID"] for r in result.inserted[0]]


def peak(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        value = fn()
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return top / MB, value


def memory(old: Any, home: Path, members: int) -> None:
    print("\n## memory (tracemalloc peak, MB), metadata-only bag, embedded catalog")
    print(
        "| members | the catalog's answer alone (one query of the member rows) | build before | build after "
        "| list_dataset_members before | after | iter_table after (streamed) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in (members // 4, members):
        print(memory_row(old, home / f"m{n}", n))


def memory_row(old: Any, home: Path, n: int) -> str:
    ml = catalog(home)
    ds = ml.create_dataset("Training", f"{n}")
    ds.add_dataset_members({"Image": add_rows(ml, n, f"m{n}_")})
    spec = DatasetSpec(rid=ds.dataset_rid, materialize=False)
    floor, answer = peak(lambda: ml.catalog.query("t", "Image"))
    assert len(answer) == n
    del answer
    ml.cache_dir = home / "cache-old"
    b_old, old_bag = peak(lambda: old.download_dataset_bag(ml, spec))
    ml.cache_dir = home / "cache-new"
    b_new, new_bag = peak(lambda: ml.download_dataset_bag(spec))
    r_old, rows = peak(lambda: old.DatasetBag(old_bag.path).list_dataset_members())
    assert len(rows["Image"]) == n
    del rows
    r_new, rows = peak(lambda: DatasetBag(new_bag.path).list_dataset_members())
    assert len(rows["Image"]) == n
    del rows
    s_new, count = peak(lambda: sum(1 for _ in DatasetBag(new_bag.path).iter_table("Image")))
    assert count == n
    ml.close()
    return f"| {n:,} | {floor:.1f} | {b_old:.1f} | {b_new:.1f} | {r_old:.1f} | {r_new:.1f} | {s_new:.2f} |"


def baseline_copy(files: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        h = hashlib.md5()
        with f.open("rb") as src:
            while buf := src.read(MB):
                h.update(buf)
        shutil.copyfile(f, dest / f.name)


def materialize(old: Any, home: Path, n: int, size_kib: int, repeat: int) -> None:
    ml = catalog(home / "mat")
    src = home / "mat" / "src"
    ds = ml.create_dataset("Training", "files")
    ds.add_dataset_members({"Image": add_files(ml, src, n, size_kib * 1024)})
    files = sorted(src.iterdir())
    spec = DatasetSpec(rid=ds.dataset_rid, materialize=True)
    times: dict[str, list[float]] = {"baseline": [], "before": [], "after": []}
    for i in range(repeat):
        for label in ("baseline", "before", "after"):
            out = home / "mat" / f"{label}-{i}"
            gc.collect()
            os.sync()  # untimed: no run pays for the dirty pages of the one before it
            t0 = time.perf_counter()
            if label == "baseline":
                baseline_copy(files, out)
            elif label == "before":
                ml.cache_dir = out
                old.download_dataset_bag(ml, spec)
            else:
                ml.cache_dir = out
                ml.download_dataset_bag(spec)
            times[label].append(time.perf_counter() - t0)
            shutil.rmtree(out, ignore_errors=True)
    base = statistics.median(times["baseline"])
    print(f"\n## materialising {n} files of {size_kib} KiB from the local store, median of {repeat}")
    print("| | s | / baseline |")
    print("|---|---|---|")
    for label in ("baseline", "before", "after"):
        m = statistics.median(times[label])
        print(f"| {label} | {m:.3f} | {m / base:.1f}x |")
    ml.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--files", type=int, default=300)
    p.add_argument("--size-kib", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--ref", default="main", help="git ref of the 'before' _bag.py")
    p.add_argument("--only", choices=["memory", "materialize"])
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    old = load_old(args.ref)
    with tempfile.TemporaryDirectory(prefix="bagbench-") as tmp:
        home = Path(tmp)
        os.environ.setdefault("BDBAG_CONFIG_FILE", str(home / "bdbag.json"))
        if args.only in (None, "materialize"):
            materialize(old, home, args.files, args.size_kib, args.repeat)
        if args.only in (None, "memory"):
            memory(old, home, args.members)


if __name__ == "__main__":
    main()
