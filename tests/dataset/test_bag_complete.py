"""Complete, analysable bags on every backend: rows reachable by foreign key from the members (a Scan's
Donor and the Donor's Species term), the members' feature values and the executions that made them, the
reader's analysis API, a constant number of catalog requests, and no network request to read a bag.

Schema (domain ``t``): vocabularies Species and Diagnosis; Donor (Name, Species); asset Scan (Donor);
feature table ``Execution_Scan_Quality`` (Scan, Execution, Feature_Name, Diagnosis, Confidence), made by
hand in the reference's layout.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import BACKENDS, open_backend

from deriva_ml import DatasetSpec, DerivaML
from deriva_ml.catalog.schema import association_table
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import NotFound, ValidationError
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.dataset import DatasetBag
from deriva_ml.dataset._bag_analysis import select_majority_vote, select_newest


class World:
    """A catalog with the schema above, its rows, and the ExitStack that keeps its server up."""

    def __init__(self, ml: DerivaML, stack: ExitStack, tmp: Path) -> None:
        self.ml, self.stack, self.tmp = ml, stack, tmp
        ml.create_vocabulary("Species")
        ml.create_vocabulary("Diagnosis")
        for t, names in (("Species", ["Mouse", "Human", "Zebrafish"]), ("Diagnosis", ["good", "bad"])):
            for n in names:
                ml.add_term(t, n, description=n)
        ml.add_term("Feature_Name", "Quality", description="scan quality")
        ml.create_table("Donor", [ColumnDef("Name", "text")], references=["Species"])
        ml.create_asset("Scan", referenced_tables=["Donor"])
        model = ml.catalog.model()
        scan, execution = model.table("t", "Scan"), model.table(ML_SCHEMA, "Execution")
        fname, diag = model.table(ML_SCHEMA, "Feature_Name"), model.table("t", "Diagnosis")
        assert scan and execution and fname and diag
        feature = association_table(
            "t",
            [("Scan", scan), ("Execution", execution), ("Feature_Name", fname)],
            [ColumnDef("Confidence", "float8")],
            metadata_references=[("Diagnosis", diag, True)],
            name="Execution_Scan_Quality",
        )
        ml.catalog.create_tables([feature])
        wf = ml.create_workflow("labeller", "Training", url="https://example.org/l.py", checksum="feed")
        from deriva_ml.execution import ExecutionConfiguration

        self.executions = [
            ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"annotator {i}")).execution_rid
            for i in range(3)
        ]
        self.donors = self.insert(
            "Donor",
            [
                {"Name": "d0", "Species": "Mouse"},
                {"Name": "d1", "Species": "Human"},
                {"Name": "d2", "Species": "Zebrafish"},
            ],
        )

    def insert(self, table: str, rows: list[dict[str, Any]]) -> list[str]:
        result = self.ml.catalog.apply(Batch([Insert("t", table, rows)]))
        return [r["RID"] for r in result.inserted[0]]

    def scans(self, n: int, donors: list[str], prefix: str = "scan") -> list[str]:
        src = self.tmp / "src"
        src.mkdir(exist_ok=True)
        rows = []
        for i in range(n):
            f = src / f"{prefix}{i}.png"
            f.write_bytes(os.urandom(100 + i))
            obj = self.ml.store.put(f, table="Scan", filename=f.name)
            rows.append(
                {
                    "URL": obj.url,
                    "Filename": obj.filename,
                    "Length": obj.length,
                    "MD5": obj.md5,
                    "Donor": donors[i % len(donors)],
                }
            )
        return self.insert("Scan", rows)

    def label(self, scan: str, labels: list[str]) -> None:
        """One Quality value per annotator (execution), in order."""
        self.insert(
            "Execution_Scan_Quality",
            [
                {
                    "Scan": scan,
                    "Execution": self.executions[i],
                    "Feature_Name": "Quality",
                    "Diagnosis": lab,
                    "Confidence": 0.5 + i / 10,
                }
                for i, lab in enumerate(labels)
            ],
        )


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with ExitStack() as stack:
        ml, _ = open_backend(request.param, tmp_path, stack)
        w = World(ml, stack, tmp_path)
        yield w
        ml.close()


def _requests(ml: DerivaML) -> int:
    return int(getattr(ml.catalog, "request_count", 0))


def test_bag_holds_rows_reachable_from_members_and_their_features(world: World) -> None:
    ml = world.ml
    d0, d1, _ = world.donors
    scans = world.scans(3, [d0, d1])
    outside = world.scans(1, [world.donors[2]], prefix="other")  # not a member: its donor/species stay out
    world.label(scans[0], ["good", "bad", "good"])
    world.label(scans[1], ["bad"])
    world.label(outside[0], ["good"])
    ds = ml.create_dataset("Training", "scans")
    ds.add_dataset_members({"Scan": scans})
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, materialize=False))

    assert {
        "Scan",
        "Donor",
        "Species",
        "Diagnosis",
        "Feature_Name",
        "Execution",
        "Execution_Scan_Quality",
        "Dataset",
        "Dataset_Version",
    } <= set(bag.list_tables())
    assert "Workflow" not in bag.list_tables()  # deriva-ml's own tables are not walked into
    assert sorted(r["RID"] for r in bag.get_table_as_dict("Donor")) == sorted([d0, d1])
    assert sorted(r["Name"] for r in bag.get_table_as_dict("Species")) == ["Human", "Mouse"]
    assert sorted(r["Name"] for r in bag.get_table_as_dict("Diagnosis")) == ["bad", "good"]
    values = bag.get_table_as_dict("Execution_Scan_Quality")
    assert sorted(v["Scan"] for v in values) == sorted([scans[0]] * 3 + [scans[1]])  # members' values only
    assert {r["RID"] for r in bag.list_executions()} == set(world.executions)
    assert [r["RID"] for r in bag.get_table_as_dict("Scan")] == sorted(scans)
    assert len((bag.path / "fetch.txt").read_text().splitlines()) == 3

    # features
    (f,) = bag.find_features("Scan")
    assert (f.feature_name, f.target_table, f.term_columns, f.value_columns) == (
        "Quality",
        "Scan",
        ("Diagnosis",),
        ("Confidence",),
    )
    assert bag.find_features("Donor") == []
    all_values = bag.list_feature_values("Scan", "Quality")
    assert len(all_values) == 4 and all_values[0].Feature_Name == "Quality"
    assert isinstance(all_values[0].Confidence, float)
    voted = bag.list_feature_values("Scan", "Quality", selector=select_majority_vote())
    assert {(v.Scan, v.Diagnosis) for v in voted} == {(scans[0], "good"), (scans[1], "bad")}
    newest = bag.list_feature_values("Scan", "Quality", selector=select_newest)
    assert {v.Scan: v.Execution for v in newest}[scans[0]] == max(
        (v for v in all_values if v.Scan == scans[0]), key=lambda v: (v.RCT, v.RID)
    ).Execution
    with pytest.raises(NotFound, match="Quality"):
        bag.lookup_feature("Scan", "Age")

    # history and tree
    history = bag.dataset_history()
    assert [str(h.dataset_version) for h in history] == ["0.1.0", "0.2.0"]
    assert bag.list_dataset_parents() == []


def test_denormalize_and_dataframes(world: World) -> None:
    pd = pytest.importorskip("pandas")
    ml = world.ml
    d0, d1, _ = world.donors
    scans = world.scans(3, [d0, d1])
    ds = ml.create_dataset("Training", "scans")
    ds.add_dataset_members({"Scan": scans})
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, materialize=False))
    rows = bag.denormalize_as_dict(["Scan", "Donor", "Species"])
    assert [r["Scan.RID"] for r in rows] == sorted(scans)
    by_scan = {r["Scan.RID"]: r for r in rows}
    assert by_scan[scans[0]]["Donor.Name"] == "d0" and by_scan[scans[0]]["Species.Name"] == "Mouse"
    assert by_scan[scans[1]]["Donor.RID"] == d1 and by_scan[scans[1]]["Species.Name"] == "Human"
    df = bag.denormalize_as_dataframe(["Scan", "Donor"])
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    assert {"Scan.RID", "Scan.Filename", "Donor.Name", "Donor.Species"} <= set(df.columns)
    table = bag.get_table_as_dataframe("Donor")
    assert sorted(table["Name"]) == ["d0", "d1"] and list(table.columns)[:5] == ["RID", "RCT", "RMT", "RCB", "RMB"]
    with pytest.raises(ValidationError, match="cannot be joined"):
        bag.denormalize_as_dict(["Scan", "Species"])  # joined only through Donor
    with pytest.raises(NotFound, match="Workflow"):
        bag.denormalize_as_dict(["Scan", "Workflow"])


def test_restructure_assets_one_folder_per_label(world: World, tmp_path: Path) -> None:
    ml = world.ml
    d0, d1, _ = world.donors
    scans = world.scans(4, [d0, d1])
    world.label(scans[0], ["good", "bad", "good"])
    world.label(scans[1], ["bad"])
    world.label(scans[2], ["good"])  # scans[3] has no label
    train = ml.create_dataset("Training", "train")
    test = ml.create_dataset("Testing", "test")
    split = ml.create_dataset("Split", "split")
    train.add_dataset_members({"Scan": scans[:3]})
    test.add_dataset_members({"Scan": scans[3:]})
    split.add_dataset_members([train.dataset_rid, test.dataset_rid])
    bag = ml.download_dataset_bag(DatasetSpec(rid=split.dataset_rid))
    files = {r["RID"]: Path(r["Filename"]) for r in bag.get_table_as_dict("Scan")}

    out = bag.restructure_assets(tmp_path / "by_quality", "Scan", ["Quality"], selector=select_majority_vote())
    layout = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() or p.is_symlink()}
    assert layout == {"good/scan0.png", "bad/scan1.png", "good/scan2.png", "Unknown/scan3.png"}
    link = out / "good" / "scan0.png"
    assert link.is_symlink() and link.resolve() == files[scans[0]].resolve()

    out = bag.restructure_assets(tmp_path / "split", "Scan", ["Donor.Name"], by_dataset_type=True, use_symlinks=False)
    layout = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert layout == {"Training/d0/scan0.png", "Training/d1/scan1.png", "Training/d0/scan2.png", "Testing/d1/scan3.png"}
    assert not (out / "Testing" / "d1" / "scan3.png").is_symlink()
    assert (out / "Testing" / "d1" / "scan3.png").read_bytes() == files[scans[3]].read_bytes()

    out = bag.restructure_assets(tmp_path / "skip", "Scan", ["Quality"], missing="skip")
    assert len([p for p in out.rglob("*") if p.is_symlink()]) == 3
    with pytest.raises(ValidationError, match="no 'Quality'"):
        bag.restructure_assets(tmp_path / "err", "Scan", ["Quality"], missing="error")
    with pytest.raises(ValidationError, match="not a column of Scan"):
        bag.restructure_assets(tmp_path / "bad", "Scan", ["Colour"])
    # the child dataset's view holds only its own members
    (child,) = [c for c in bag.list_dataset_children() if c.dataset_rid == test.dataset_rid]
    assert [p.name for p in child.restructure_assets(tmp_path / "child", "Scan").rglob("*.png")] == ["scan3.png"]
    assert [p.dataset_rid for p in child.list_dataset_parents()] == [split.dataset_rid]


def test_building_costs_a_constant_number_of_requests(world: World) -> None:
    """3 or 30 members, with donors, species, features: the same number of catalog requests."""
    ml = world.ml
    costs = {}
    for n in (3, 30):
        scans = world.scans(n, world.donors[:2], prefix=f"n{n}_")
        for s in scans:
            world.label(s, ["good", "bad"])
        ds = ml.create_dataset("Training", f"{n}")
        ds.add_dataset_members({"Scan": scans})
        before = _requests(ml)
        bag = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, materialize=False))
        costs[n] = _requests(ml) - before
        assert len(bag.get_table_as_dict("Execution_Scan_Quality")) == 2 * n
    assert costs[3] == costs[30]
    if ml.host_name != "local":
        print(f"bag build requests: {costs}")
        assert 0 < costs[3] <= 25


def test_reading_a_bag_makes_no_network_request(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Build through the backend, stop it (the fake server is shut down), then read everything with
    sockets refused."""
    ml = world.ml
    scans = world.scans(2, world.donors[:1])
    world.label(scans[0], ["good"])
    ds = ml.create_dataset("Training", "d")
    ds.add_dataset_members({"Scan": scans})
    path = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid)).path
    ml.close()
    world.stack.close()  # stops the fake ERMrest server

    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError(f"network access while reading a bag: {a}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    bag = DatasetBag(path)
    for t in bag.list_tables():
        bag.get_table_as_dict(t)
    assert len(bag.list_dataset_members()["Scan"]) == 2
    assert bag.list_feature_values("Scan", "Quality")[0].Diagnosis == "good"
    assert len(bag.denormalize_as_dict(["Scan", "Donor", "Species"])) == 2
    assert bag.dataset_history() and bag.list_executions()
    out = bag.restructure_assets(path.parent / "out-no-net", "Scan", ["Quality"])
    assert sorted(p.name for p in out.rglob("*.png")) == ["scan0.png", "scan1.png"]


def test_bag_holds_the_executions_that_made_its_versions(world: World) -> None:
    from deriva_ml.execution import ExecutionConfiguration

    ml = world.ml
    scans = world.scans(2, world.donors[:1])
    wf = ml.create_workflow("curator", "Training", url="https://example.org/c.py", checksum="cafe")
    exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description="curate"))
    with exe:
        ds = exe.create_dataset(dataset_types=["Training"], description="curated")
        ds.add_dataset_members({"Scan": scans})
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, materialize=False))
    assert [h.execution_rid for h in bag.dataset_history()] == [exe.execution_rid, exe.execution_rid]
    assert [r["RID"] for r in bag.list_executions()] == [exe.execution_rid]
    assert bag.list_feature_values("Scan", "Quality") == []  # the feature exists; no values yet
