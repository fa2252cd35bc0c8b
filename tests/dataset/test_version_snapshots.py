"""Versions read back as they were, on every backend (embedded, ERMrest fake, live lab when configured).

- The first version of a dataset predates its member associations: on ERMrest, reading an association at
  that snapshot is 409 "Table ... does not exist"; the version still lists (no members) and downloads.
- A version's snapshot is taken after its Dataset_Version row and the Dataset.Version pointer exist, so the
  catalog read at that snapshot (and the bag made from it) shows that version.
- Resolving the tables of a plain RID list costs a number of requests that does not grow with the RIDs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from dataset_helpers import add_images, add_subjects

from deriva_ml import DatasetVersion, DerivaML
from deriva_ml.core.records import DatasetSpec
from deriva_ml.dataset._members import _member_candidates, _resolve_member_tables


def test_first_version_lists_and_downloads_after_associations_were_created(ml: DerivaML, tmp_path: Path) -> None:
    ds = ml.create_dataset("Training", "first")
    subjects = add_subjects(ml, 2)
    images = add_images(ml, tmp_path, 2)
    assert ml.catalog.model().table("t", "Dataset_Image") is None  # created by the next call
    assert ds.add_dataset_members(subjects + images) == DatasetVersion(0, 2, 0)
    first = ml.list_dataset_members(ds.dataset_rid, version="0.1.0")
    assert first["Image"] == [] and first["Subject"] == [] and first["Dataset"] == []
    now = ml.list_dataset_members(ds.dataset_rid, version="0.2.0")
    assert sorted(r["RID"] for r in now["Image"]) == sorted(images)
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, version="0.1.0", materialize=False))
    assert bag.version == DatasetVersion(0, 1, 0)
    assert all(rows == [] for rows in bag.list_dataset_members().values())
    assert ds.list_dataset_children(version="0.1.0") == []


def _has_history(ml: DerivaML) -> bool:
    """True on a real ERMrest server (not the embedded catalog nor the fake built on it)."""
    import os

    return ml.host_name == os.environ.get("DERIVA_ML_TEST_HOST", "\0")


def test_a_version_snapshot_shows_that_version(ml: DerivaML) -> None:
    ds = ml.create_dataset("Training", "v")
    ds.increment_dataset_version("minor", "second")
    assert ds.increment_dataset_version("minor", "third") == DatasetVersion(0, 3, 0)
    history = {str(h.dataset_version): h for h in ml.dataset_history(ds.dataset_rid)}
    for version, h in history.items():
        assert h.snapshot
        if _has_history(ml):
            # the pointer already names this version (only a catalog that keeps updated values per
            # snapshot can tell: ERMrest does; the embedded catalog's snapshots cover inserted rows only)
            at = ml.catalog.query("deriva-ml", "Dataset", {"RID": ds.dataset_rid}, snapshot=h.snapshot)[0]
            assert at["Version"] == h.version_rid, version
        rows = ml.catalog.query("deriva-ml", "Dataset_Version", {"RID": h.version_rid}, snapshot=h.snapshot)
        assert [r["Version"] for r in rows] == [version]
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, version="0.3.0", materialize=False))
    info = json.loads((bag.path / "data" / "dataset.json").read_text())
    with (bag.path / "data" / "deriva-ml" / "Dataset.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert (
        bag.version == DatasetVersion(0, 3, 0) and row["Version"] == info["version_rid"] == history["0.3.0"].version_rid
    )


def test_plain_rid_list_is_resolved_in_requests_independent_of_its_length(ml: DerivaML, tmp_path: Path) -> None:
    counts = {}
    for n in (30, 1500):
        subjects = add_subjects(ml, n)
        images = add_images(ml, tmp_path, 5, size=10, prefix=f"r{n}-")
        before = getattr(ml.catalog, "request_count", 0)
        found = _resolve_member_tables(ml, [*subjects, *images])
        counts[n] = getattr(ml.catalog, "request_count", 0) - before
        assert sorted(found[("t", "Subject")]) == sorted(subjects)
        assert sorted(found[("t", "Image")]) == sorted(images)
    candidates = [(t.schema, t.name) for t in _member_candidates(ml)]
    assert candidates == [("deriva-ml", "Dataset"), ("deriva-ml", "File"), ("t", "Image"), ("t", "Subject")]
    if ml.host_name != "local":
        # at most one request per candidate member table, whatever n is (ERMrest's public tables are not asked)
        assert counts[30] == counts[1500] <= len(candidates)
