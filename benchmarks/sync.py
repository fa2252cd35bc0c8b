"""Sync throughput next to a plain journal replay in the same run (run by hand).

    uv run python benchmarks/sync.py [--entries 10000]

Builds an embedded source catalog whose journal holds ``--entries`` entries (the domain schema, then
single-row inserts into ``Subject``; every fifth entry renames a row inserted by an earlier entry, so RIDs
must be translated across entries), then, each into a fresh embedded catalog:

- baseline: ``replay_entry`` of every journal entry, one target batch per entry, RID map in memory;
- sync: ``deriva_ml.sync.sync`` (progress and RID map persisted, crash-safe);
- re-sync: ``sync`` again with nothing new.

Target: sync within 3x of the baseline at 10,000 entries. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from deriva_ml import DerivaML
from deriva_ml.catalog.journal import read_journal, replay_entry
from deriva_ml.core.effects import Batch, Insert, Update
from deriva_ml.core.rid import RID
from deriva_ml.sync import sync
from deriva_ml.testing import add_domain_schema


def build(home: Path, entries: int) -> DerivaML:
    ml = DerivaML("local", "source", home=home)
    add_domain_schema(ml)
    dom = ml.domain_schema or ""
    rids: list[str] = []
    n = sum(1 for _ in read_journal(ml.catalog))
    i = 0
    while n < entries:
        if i % 5 == 4 and rids:
            ml.catalog.apply(Batch([Update(dom, "Subject", [{"RID": rids[i // 2], "Name": f"renamed {i}"}])]))
        else:
            got = ml.catalog.apply(Batch([Insert(dom, "Subject", [{"Name": f"subject {i}"}], labels=["s"])]))
            rids.append(got.rids["s"])
        i += 1
        n += 1
    return ml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deriva-ml-bench-sync-") as tmp:
        root = Path(tmp)
        source = build(root / "source", args.entries)
        journal = sum(1 for _ in read_journal(source.catalog))

        fresh = DerivaML("local", "baseline", home=root / "baseline")
        t0 = time.perf_counter()
        rid_map: dict[str, RID] = {}
        for entry in read_journal(source.catalog):
            replay_entry(entry, fresh.catalog, rid_map)
        baseline = time.perf_counter() - t0

        target = DerivaML("local", "target", home=root / "target")
        t0 = time.perf_counter()
        report = sync(source, target)
        synced = time.perf_counter() - t0

        t0 = time.perf_counter()
        again = sync(source, target)
        resync = time.perf_counter() - t0

        dom = source.domain_schema or ""
        assert len(target.catalog.query(dom, "Subject")) == len(fresh.catalog.query(dom, "Subject"))
        print(
            json.dumps(
                {
                    "entries": journal,
                    "baseline_replay_s": round(baseline, 3),
                    "sync_s": round(synced, 3),
                    "ratio": round(synced / baseline, 3),
                    "target_batches": report.batches_applied,
                    "resync_s": round(resync, 4),
                    "resync_entries_read": again.entries_read,
                }
            )
        )


if __name__ == "__main__":
    main()
