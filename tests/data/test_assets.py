"""Assets: list/find/lookup as records with types and provenance, executions of an asset, download through the
cache, an execution's assets and input datasets, File rows — on every backend, with constant request counts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from data_support import remote
from live_support import http_log, unique_token

from deriva_ml.asset.aux_classes import AssetSpec
from deriva_ml.core.errors import UnknownTable, UnknownTerm, ValidationError
from deriva_ml.data import Asset, FileSpec
from deriva_ml.dataset.aux_classes import DatasetSpec
from deriva_ml.execution import ExecutionConfiguration


def _workflow(ml: Any) -> Any:
    return ml.create_workflow(
        name="assets test",
        workflow_type="Training",
        url="https://github.com/org/repo/blob/abc123/assets.py",
        checksum="a" * 40,
    )


@pytest.fixture
def produced(ml: Any) -> dict[str, Any]:
    """Execution A writes n images (one typed Mask); execution B reads the first one and a dataset."""
    ml.create_asset("Image")
    ml.add_term("Asset_Type", "Mask", "a mask")
    wf = _workflow(ml)
    token = unique_token()
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="A")) as a:
        for i in range(3):
            p = a.asset_file_path("Image", f"img{i}.png", asset_types=["Mask"] if i == 2 else None)
            p.write_bytes(f"{token}-{i}".encode() * (i + 1))
    uploaded = a.upload_execution_outputs()
    images = sorted(uploaded[f"{ml.domain_schema}/Image"], key=lambda u: u.filename)
    ds = ml.create_dataset("Complete", "inputs")
    cfg = ExecutionConfiguration(
        workflow=wf, description="B", assets=[AssetSpec(images[0].rid)], datasets=[DatasetSpec(ds.dataset_rid)]
    )
    with ml.create_execution(cfg) as b:
        pass
    b.upload_execution_outputs()
    return {"a": a, "b": b, "images": images, "dataset": ds, "token": token}


def test_list_and_lookup_assets_carry_types_and_provenance(ml: Any, produced: dict[str, Any]) -> None:
    a, b, images = produced["a"], produced["b"], produced["images"]
    assets = ml.list_assets("Image")
    assert [x.filename for x in assets] == ["img0.png", "img1.png", "img2.png"]
    assert all(isinstance(x, Asset) and x.produced_by == a.execution_rid for x in assets)
    assert assets[2].types == ("Mask",) and assets[0].types == ("Image",)  # given types replace the default
    assert assets[0].read_by == (b.execution_rid,) and assets[1].read_by == ()
    one = ml.lookup_asset(images[0].rid)
    assert one == assets[0]
    assert one.md5 == hashlib.md5(f"{produced['token']}-0".encode()).hexdigest() and one.length == 14
    with pytest.raises(ValidationError, match="not an asset table"):
        ml.lookup_asset(produced["dataset"].dataset_rid)
    with pytest.raises(UnknownTable):
        ml.list_assets("Subject")


def test_find_assets_by_type_md5_filename(ml: Any, produced: dict[str, Any]) -> None:
    images = produced["images"]
    assert [x.filename for x in ml.find_assets("Image", asset_type="Mask")] == ["img2.png"]
    first = ml.lookup_asset(images[0].rid)
    assert [x.rid for x in ml.find_assets(md5=first.md5)] == [first.rid]
    assert [x.rid for x in ml.find_assets("Image", filename="img1.png")] == [images[1].rid]
    assert ml.find_assets("Image", asset_type="Mask", filename="img0.png") == []
    # every asset table: the execution's metadata files are assets too
    assert any(x.table == "Execution_Metadata" for x in ml.find_assets(asset_type="Deriva_Config"))
    with pytest.raises(UnknownTerm, match="Nope"):
        ml.find_assets(asset_type="Nope")


def test_asset_executions_and_execution_assets(ml: Any, produced: dict[str, Any]) -> None:
    a, b, images, ds = produced["a"], produced["b"], produced["images"], produced["dataset"]
    assert [e.rid for e in ml.list_asset_executions(images[0].rid, "Output")] == [a.execution_rid]
    assert [e.rid for e in ml.list_asset_executions(images[0].rid, "Input")] == [b.execution_rid]
    assert sorted(e.rid for e in ml.list_asset_executions(images[0].rid)) == sorted([a.execution_rid, b.execution_rid])
    out = [x for x in a.list_assets("Output") if x.table == "Image"]
    assert [x.rid for x in out] == [u.rid for u in images]
    assert [x.rid for x in b.list_assets("Input")] == [images[0].rid]
    assert [x.rid for x in a.list_assets("Input")] == []
    assert [d.dataset_rid for d in b.list_input_datasets()] == [ds.dataset_rid]
    assert a.list_input_datasets() == []
    with pytest.raises(UnknownTerm):
        a.list_assets("Sideways")


def test_listing_costs_do_not_grow_with_assets(ml: Any, produced: dict[str, Any]) -> None:
    """list_assets and find_assets: 3 requests for 3 assets and for 23 (rows, types, executions)."""
    with http_log() as log:
        ml.list_assets("Image")
        small = log.count(service="ermrest")
    wf = _workflow(ml)
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="more")) as c:
        for i in range(20):
            c.asset_file_path("Image", f"more{i}.png").write_bytes(f"{produced['token']}-more-{i}".encode())
    c.upload_execution_outputs()
    with http_log() as log:
        assert len(ml.list_assets("Image")) == 23
        big = log.count(service="ermrest")
        assert len(ml.find_assets("Image", asset_type=["Image", "Mask"])) == 23
        found = log.count(service="ermrest") - big
    assert small == big and found == (3 if remote(ml) else 0)
    assert big == (3 if remote(ml) else 0)


def test_download_asset_verifies_and_caches(ml: Any, produced: dict[str, Any], tmp_path: Path) -> None:
    img = produced["images"][1]
    p = ml.download_asset(img.rid, tmp_path / "d1")
    assert p == tmp_path / "d1" / "img1.png" and p.read_bytes() == f"{produced['token']}-1".encode() * 2
    assert ml.cache_stats().entries >= 1
    q = ml.download_asset(img.rid, tmp_path / "d2", cache=False)
    assert q.read_bytes() == p.read_bytes() and not q.is_symlink()
    with pytest.raises(ValidationError, match="not an asset table"):
        ml.download_asset(produced["dataset"].dataset_rid, tmp_path / "d3")


def test_add_files_and_list_files(ml: Any, tmp_path: Path) -> None:
    ml.add_term("Asset_Type", "CSV", "a table file")
    files = []
    for i in range(3):
        f = tmp_path / f"f{i}.csv"
        f.write_bytes(os.urandom(10 + i))
        files.append(f)
    remote_spec = FileSpec("https://example.org/data/x.bin", "0" * 32, 5, "remote", ("CSV",))
    ds = ml.add_files([*files, remote_spec], file_types=["CSV"], description="my files")
    assert ds.dataset_types == ("File",)
    members = ml.list_dataset_members(ds.dataset_rid)["File"]
    assert len(members) == 4
    listed = ml.list_files()
    assert len(listed) == 4 and all(set(x.types) == {"CSV", "File"} for x in listed)
    assert {x.filename for x in listed} == {"f0.csv", "f1.csv", "f2.csv", "x.bin"}
    assert ml.list_files(["CSV"]) == listed
    # the same files again: no new rows, a second dataset of the same files
    ds2 = ml.add_files(files, dataset_types=["File", "Training"])
    assert len(ml.list_files()) == 4 and set(ds2.dataset_types) == {"File", "Training"}
    with pytest.raises(ValidationError, match="needs its MD5 and length"):
        ml.add_files(["https://example.org/y.bin"])
    with pytest.raises(UnknownTerm):
        ml.add_files(files, file_types=["Nope"])
