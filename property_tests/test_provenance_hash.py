"""Replaying a journal preserves every execution's provenance hash.

Random executions (random outputs in two asset tables, inputs read from earlier executions, an output
dataset, configuration choices and arguments, failures, sweeps with children) are recorded on an embedded
catalog; their hashes are computed there; the journal is then synced into a second embedded catalog and
every execution's hash, read back from the target under its new RID, must equal the hash computed before.

The independent model: the test computes, from the bytes it wrote, the (table, filename, MD5) of every
output of every execution, and knows which dataset versions each one read (older than the datasets'
current versions), and checks the record's content holds exactly those.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.provenance import canonical_record, gather_execution
from deriva_ml.services.executions import add_nested
from deriva_ml.sync import sync
from deriva_ml.testing import add_domain_schema, make_workflow, new_embedded_catalog

_FILENAME = st.text(alphabet="abcdefgh xyz_-.", min_size=1, max_size=12).filter(
    lambda s: s.strip(". ") == s and ".." not in s and s not in {".", ".."}
)
_OUTPUT = st.tuples(st.sampled_from(["Model", "Image"]), _FILENAME, st.binary(max_size=40))
_RUN = st.fixed_dictionaries(
    {
        "outputs": st.lists(_OUTPUT, max_size=4, unique_by=lambda o: (o[0], o[1])),
        "reads": st.lists(st.integers(0, 50), max_size=2),
        "choices": st.dictionaries(st.sampled_from(["model", "data", "opt"]), st.sampled_from(["a", "b"]), max_size=2),
        "args": st.lists(st.sampled_from(["seed=1", "seed=2", "lr=0.1"]), max_size=2),
        "dataset": st.booleans(),
        "read_datasets": st.lists(st.integers(0, 1), max_size=2, unique=True),
        "fail": st.booleans(),
        "children": st.integers(0, 2),
        "workflow": st.sampled_from(["train", "eval"]),
    }
)


Identity = tuple[str, str, str]


def _record(
    ml: DerivaML,
    run: dict[str, Any],
    produced: list[tuple[str, Identity]],
    n: int,
    datasets: list[tuple[str, str]],
) -> tuple[str, set[Identity]]:
    """Record one run; returns its RID and the (table, filename, MD5) of its outputs.

    A file whose row the run also read (same table, name and bytes as an input) stays an input: the link
    table has one row, and so one role, per (asset, execution).
    """
    from deriva_ml.asset.aux_classes import AssetSpec
    from deriva_ml.dataset.aux_classes import DatasetSpec

    read = dict(produced[i % len(produced)] for i in run["reads"]) if produced else {}
    reads = sorted(read)
    cfg = ExecutionConfiguration(
        workflow=make_workflow(run["workflow"]),
        description=f"run {n}",
        assets=[AssetSpec(rid=r) for r in reads],
        datasets=[
            DatasetSpec(rid=datasets[i][0], version=datasets[i][1], materialize=False) for i in run["read_datasets"]
        ],
        argv=("prog", *run["args"]),
        config_choices=run["choices"],
    )
    expected: set[tuple[str, str, str]] = set()
    exe = ml.create_execution(cfg)
    try:
        with exe:
            for table, filename, data in run["outputs"]:
                exe.asset_file_path(table, filename).write_bytes(data)
                expected.add((table, filename, hashlib.md5(data).hexdigest()))
            if run["dataset"]:
                exe.create_dataset(f"made by run {n}", ["Training"])
            if run["fail"]:
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    uploaded = exe.upload_execution_outputs()
    for path, assets in uploaded.items():
        table = path.rsplit("/", 1)[-1]
        if table in ("Model", "Image"):
            for a in assets:
                produced.append((a.rid, (table, a.filename, a.md5)))
    return exe.execution_rid, expected - set(read.values())


def _outputs(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(a["table"], a["filename"], a["md5"]) for a in doc["content"]["outputs"]["assets"]}


@pytest.mark.slow  # ~1 minute: two catalogs, up to nine executions and a sync per example
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_RUN, min_size=1, max_size=3))
def test_sync_preserves_every_execution_hash(runs: list[dict[str, Any]]) -> None:
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="dml-prov-") as d:
        new_embedded_catalog(Path(d) / "src", "src")  # copies of the once-built deriva-ml catalog
        new_embedded_catalog(Path(d) / "dst", "dst")
        src = DerivaML("local", "src", home=Path(d) / "src")
        dst = DerivaML("local", "dst", home=Path(d) / "dst")
        try:
            add_domain_schema(src)
            # two input datasets, read at an older version than their current one
            datasets = []
            for k in range(2):
                ds = src.create_dataset(["Training"], description=f"input set {k}")
                src.increment_dataset_version(ds.dataset_rid, "minor", "v2")
                datasets.append((ds.dataset_rid, "0.1.0" if k == 0 else "0.2.0"))
                src.increment_dataset_version(ds.dataset_rid, "minor", "v3")
            produced: list[tuple[str, Identity]] = []
            expected: dict[str, set[tuple[str, str, str]]] = {}
            parents: list[str] = []
            read: dict[str, set[tuple[str, str]]] = {}
            n = 0
            for run in runs:
                rid, outs = _record(src, run, produced, n, datasets)
                read[rid] = {(f"input set {i}", datasets[i][1]) for i in run["read_datasets"]}
                expected[rid] = outs
                n += 1
                for k in range(run["children"]):
                    child, child_outs = _record(
                        src, {**run, "children": 0, "args": [*run["args"], f"job={k}"]}, produced, n, datasets
                    )
                    read[child] = {(f"input set {i}", datasets[i][1]) for i in run["read_datasets"]}
                    expected[child] = child_outs
                    src.lookup_execution(rid)
                    add_nested(src.ports, rid, child, k)
                    n += 1
                if run["children"]:
                    parents.append(rid)
            before = {}
            for rid, outs in expected.items():
                doc = canonical_record(gather_execution(src.ports, src._schema, rid))
                assert _outputs(doc) == outs  # the independent model of what was written ...
                # ... and of the dataset versions read (older than the datasets' current versions)
                assert {(d["description"], d["version"]) for d in doc["content"]["inputs"]["datasets"]} == read[rid]
                before[rid] = doc["hash"]
            deep_before = {
                p: canonical_record(gather_execution(src.ports, src._schema, p, True))["hash"] for p in parents
            }
            # rows made on the target first: synced rows get other RIDs than in the source
            for k in range(3):
                dst.create_dataset([], description=f"made on the target {k}")
            report = sync(src, dst, progress=False)
            for rid, h in before.items():
                target = report.target_rid(rid)
                assert target != rid
                assert canonical_record(gather_execution(dst.ports, dst._schema, target))["hash"] == h, rid
            for p, h in deep_before.items():
                doc = canonical_record(gather_execution(dst.ports, dst._schema, report.target_rid(p), True))
                assert doc["hash"] == h
        finally:
            src.close()
            dst.close()
