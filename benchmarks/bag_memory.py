"""Bag build memory (run by hand): ``uv run python benchmarks/bag_memory.py [--members 10000 100000] [--base REV]``.

For each member count, one embedded catalog is made (by this tree's library): ``n`` Image members of one
dataset, each referencing one of 10 Subjects, plus a 100-member dataset for warming up. Each library --
``before`` (git revision ``--base``, default ``main``: ``git archive`` of its ``deriva_ml/`` into a
temporary directory, put first on ``PYTHONPATH``) and ``after`` (this tree) -- then runs in a child process
of its own on a copy of that catalog: a warm-up bag of the small dataset (imports), a timed build of the
metadata-only bag of the ``n`` members, and a build under ``tracemalloc`` (its peak). The clock is fixed,
so both libraries must write the same bytes: the SHA-256 over every file of the bag (names and contents)
is printed and compared. Printed: a table of peak MB, seconds and the digest per library and member
count, and the ratio of the peaks between the member counts (1.0 = memory does not grow with members).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from execution import extract  # benchmarks/execution.py: main's deriva_ml/ via git archive

ROOT = Path(__file__).resolve().parents[1]

#: ``python -P -c SETUP <home> <n>``: makes the catalog (this tree's library); prints the dataset RIDs.
SETUP = r"""
import json, sys
from pathlib import Path
from deriva_ml import DerivaML
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.testing import new_embedded_catalog

home, n = Path(sys.argv[1]), int(sys.argv[2])
new_embedded_catalog(home, "t")
ml = DerivaML("local", "t", home=home)
ml.create_table("Subject", [ColumnDef("Name", "text")])
ml.create_asset("Image", referenced_tables=["Subject"])
subjects = [r["RID"] for r in ml.catalog.apply(Batch([Insert("t", "Subject", [{"Name": f"s{i}"} for i in range(10)])])).inserted[0]]
out = {}
for name, count in (("warm", 100), ("big", n)):
    rows = [
        {"URL": f"/hatrac/Image/{i:032x}.{name}{i}.png", "Filename": f"{name}{i}.png", "Length": 1000 + i % 97,
         "MD5": f"{i:032x}", "Subject": subjects[i % 10]}
        for i in range(count)
    ]
    images = [r["RID"] for r in ml.catalog.apply(Batch([Insert("t", "Image", rows)])).inserted[0]]
    ds = ml.create_dataset("Training", name)
    ds.add_dataset_members({"Image": images})
    out[name] = ds.dataset_rid
ml.close()
print(json.dumps(out))
"""

#: ``python -P -c CHILD <home> <warm RID> <big RID>``: one JSON line (peak MB, seconds, digest, library path).
CHILD = r"""
import gc, hashlib, json, shutil, sys, time, tracemalloc
from datetime import datetime, timezone
from pathlib import Path
import attrs
import deriva_ml
from deriva_ml import DatasetSpec, DerivaML
from deriva_ml.dataset._bag_build import download_dataset_bag

home, warm, big = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
ml = DerivaML("local", "t", home=home)
fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
ports = attrs.evolve(ml.ports, clock=lambda: fixed)

def build(rid):
    return download_dataset_bag(ports, DatasetSpec(rid=rid, materialize=False))

shutil.rmtree(build(warm).path)  # imports and the model, outside the measures
gc.collect()
t0 = time.perf_counter()
bag = build(big)
seconds = time.perf_counter() - t0
h = hashlib.sha256()
for p in sorted(bag.path.rglob("*")):
    if p.is_file():
        h.update(str(p.relative_to(bag.path)).encode() + b"\0" + p.read_bytes())
shutil.rmtree(bag.path)
gc.collect()
tracemalloc.start()
build(big)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
ml.close()
print("# " + str(Path(deriva_ml.__file__).resolve()))
print(json.dumps({"peak_mb": peak / 2**20, "seconds": seconds, "digest": h.hexdigest()}))
"""


def run(code: str, src: Path, *args: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(src), "DERIVA_ML_PROGRESS": "0"}
    out = subprocess.run(
        [sys.executable, "-P", "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"benchmark child ({src}) failed:\n{out.stderr[-3000:]}")
    return out.stdout.splitlines()


def measure(src: Path, home: Path, rids: dict[str, str]) -> dict:
    lines = run(CHILD, src, str(home), rids["warm"], rids["big"])
    loaded = next(line[2:] for line in lines if line.startswith("# "))
    if not Path(loaded).is_relative_to(src):  # the library measured must be the one asked for
        raise SystemExit(f"benchmark child ran {loaded}, not the library under {src}")
    return json.loads(next(line for line in lines if line.startswith("{")))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--members", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--base", default="main", help="git revision of the 'before' library")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bagmem-") as tmp:
        root = Path(tmp)
        sources = {f"before ({args.base})": extract(args.base, root / "before"), "after (this tree)": ROOT}
        results: dict[str, dict[int, dict]] = {name: {} for name in sources}
        for n in args.members:
            made = root / f"catalog-{n}"
            (line,) = [x for x in run(SETUP, ROOT, str(made), str(n)) if x.startswith("{")]
            rids = json.loads(line)
            for name, src in sources.items():
                home = root / f"home-{n}-{name[:5]}"
                shutil.copytree(made, home)  # the same rows (and RIDs, timestamps) for both libraries
                results[name][n] = measure(src, home, rids)
                shutil.rmtree(home)
    print("bag build (metadata only, embedded catalog), tracemalloc peak; same run, same catalog copies")
    print("| library | members | peak MB | seconds (untraced) | bag SHA-256 |")
    print("|---|---|---|---|---|")
    for name, by_n in results.items():
        for n, r in by_n.items():
            print(f"| {name} | {n:,} | {r['peak_mb']:.1f} | {r['seconds']:.2f} | {r['digest'][:16]} |")
    lo, hi = min(args.members), max(args.members)
    for name, by_n in results.items():
        print(f"{name}: peak at {hi:,} / peak at {lo:,} = {by_n[hi]['peak_mb'] / by_n[lo]['peak_mb']:.2f}")
    same = all(len({results[name][n]["digest"] for name in results}) == 1 for n in args.members)
    print("bags byte-for-byte identical before/after: " + ("yes" if same else "NO"))


if __name__ == "__main__":
    main()
