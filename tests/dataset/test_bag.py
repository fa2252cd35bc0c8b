"""Dataset bags on a real embedded catalog: real BDBags, checked with bdbag's own validator and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dataset_helpers import add_images, add_subjects

from deriva_ml import DatasetSpec, DatasetVersion, DerivaML
from deriva_ml.dataset import DatasetBag
from deriva_ml.dataset._bag import quick_check, validate_bag


def bdbag_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "bdbag"
    env = {**os.environ, "BDBAG_CONFIG_FILE": str(config)}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def dataset(ml: DerivaML, tmp_path: Path) -> tuple[str, list[str], list[str]]:
    subjects = add_subjects(ml, 2)
    images = add_images(ml, tmp_path, 3, size=2000)
    ds = ml.create_dataset("Training", "imgs")
    ds.add_dataset_members(subjects + images)
    return ds.dataset_rid, subjects, images


def test_materialized_bag_is_a_valid_bdbag_with_local_files(
    ml: DerivaML, dataset: tuple[str, list[str], list[str]], tmp_path: Path
) -> None:
    rid, subjects, images = dataset
    bag = ml.download_dataset_bag(DatasetSpec(rid=rid))
    assert isinstance(bag, DatasetBag)
    assert bag.dataset_rid == rid and bag.version == DatasetVersion(0, 2, 0) and bag.materialized
    members = bag.list_dataset_members()
    assert [r["RID"] for r in members["Subject"]] == sorted(subjects)
    imgs = members["Image"]
    assert [r["RID"] for r in imgs] == sorted(images)
    for img in imgs:
        local = Path(img["Filename"])
        assert local.is_file() and local.is_relative_to(bag.path)
        original = tmp_path / "src" / local.name
        assert local.read_bytes() == original.read_bytes()
        assert img["Length"] == original.stat().st_size and isinstance(img["Length"], int)
    # layout
    data = bag.path / "data"
    assert (data / "t" / "Image.csv").is_file() and (data / "t" / "Subject.csv").is_file()
    assert json.loads((data / "dataset.json").read_text())["dataset_rid"] == rid
    assert bag.model.table("t", "Image") is not None
    fetch = (bag.path / "fetch.txt").read_text().splitlines()
    assert len(fetch) == 3
    url, length, path = fetch[0].split("\t")
    if ml.host_name == "local":  # the embedded store's objects are local files
        assert url.startswith("file:///") and Path(url[len("file://") :]).is_file()
    else:
        assert url.startswith("https://") and "/hatrac/Image/" in url
    assert path.startswith("data/assets/Image/") and int(length) >= 2000
    # bdbag's own full validation, through the API and the CLI
    cfg = tmp_path / "bdbag-cli.json"
    validate_bag(bag.path, fast=False, config_file=str(cfg))
    out = bdbag_cli("--validate", "full", str(bag.path), config=cfg)
    assert out.returncode == 0, out.stderr
    # the bag is written by deriva_ml itself (no bdbag call while building: nothing written to ~/.bdbag)
    assert not (ml.cache_dir / "bdbag.json").exists()


def test_metadata_only_bag_has_no_asset_bytes(
    ml: DerivaML, dataset: tuple[str, list[str], list[str]], tmp_path: Path
) -> None:
    rid, _, images = dataset
    bag = ml.download_dataset_bag(DatasetSpec(rid=rid, materialize=False))
    assert not bag.materialized
    assert not (bag.path / "data" / "assets").exists()
    sizes = [p.stat().st_size for p in bag.path.rglob("*") if p.is_file()]
    assert sum(sizes) < 2000 * 3 + 200_000  # metadata only (CSV, JSON, manifests)
    assert all(not p.name.startswith("img") for p in bag.path.rglob("*"))
    rows = bag.list_dataset_members()["Image"]
    assert [r["RID"] for r in rows] == sorted(images)
    assert all(r["Filename"].startswith("img") for r in rows)  # no local path: nothing fetched
    assert len((bag.path / "fetch.txt").read_text().splitlines()) == 3  # holey bag: resolvable later
    assert quick_check(bag.path, materialized=False) is None
    # a holey bag is incomplete for bdbag's full validation
    out = bdbag_cli("--validate", "full", str(bag.path), config=tmp_path / "cfg.json")
    assert out.returncode != 0


def test_cached_bag_is_reused_without_store_reads(counting_ml: DerivaML, tmp_path: Path) -> None:
    ml = counting_ml
    images = add_images(ml, tmp_path, 2)
    ds = ml.create_dataset("Training", "d")
    ds.add_dataset_members(images)
    store = ml.counting_store  # type: ignore[attr-defined]
    first = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid))
    assert len(store.gets) == 2
    second = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, version="0.2.0"))
    assert second.path == first.path and len(store.gets) == 2
    # metadata-only bags are cached separately and never read the store
    ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, materialize=False))
    assert len(store.gets) == 2
    # a new version is a new bag; the old one stays
    ds.add_dataset_members(add_images(ml, tmp_path, 1, prefix="new"))
    third = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid))
    assert third.version == DatasetVersion(0, 3, 0) and third.path != first.path
    assert len(store.gets) == 5
    assert len(third.list_dataset_members()["Image"]) == 3
    assert len(DatasetBag(first.path).list_dataset_members()["Image"]) == 2


@pytest.mark.parametrize("damage", ["delete_asset", "truncate_asset", "edit_csv", "edit_fetch"])
def test_corrupted_cached_bag_is_rebuilt(counting_ml: DerivaML, tmp_path: Path, damage: str) -> None:
    ml = counting_ml
    images = add_images(ml, tmp_path, 2)
    ds = ml.create_dataset("Training", "d")
    ds.add_dataset_members(images)
    store = ml.counting_store  # type: ignore[attr-defined]
    bag = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid))
    asset = Path(bag.list_dataset_members()["Image"][0]["Filename"])
    original = asset.read_bytes()
    if damage == "delete_asset":
        asset.unlink()
    elif damage == "truncate_asset":
        asset.write_bytes(original[:10])
    elif damage == "edit_csv":
        csv_path = bag.path / "data" / "t" / "Image.csv"
        csv_path.write_text(csv_path.read_text() + "junk\n")
    else:
        (bag.path / "fetch.txt").write_text("")
    assert quick_check(bag.path, materialized=True) is not None
    rebuilt = ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid))
    assert len(store.gets) == 4
    assert quick_check(rebuilt.path, materialized=True) is None
    assert Path(rebuilt.list_dataset_members()["Image"][0]["Filename"]).read_bytes() == original


def test_nested_bag_children_and_recurse(ml: DerivaML, tmp_path: Path) -> None:
    images = add_images(ml, tmp_path, 4)
    parent = ml.create_dataset("Split", "split")
    train = ml.create_dataset("Training", "train")
    test = ml.create_dataset("Testing", "test")
    train.add_dataset_members(images[:3])
    test.add_dataset_members(images[3:])
    parent.add_dataset_members([train.dataset_rid, test.dataset_rid])
    train.add_dataset_members(add_images(ml, tmp_path, 1, prefix="late"))  # after the parent's version
    bag = ml.download_dataset_bag(DatasetSpec(rid=parent.dataset_rid))
    assert bag.list_dataset_members()["Image"] == []
    assert [r["RID"] for r in bag.list_dataset_members(recurse=True)["Image"]] == sorted(images)
    children = {c.dataset_rid: c for c in bag.list_dataset_children()}
    assert set(children) == {train.dataset_rid, test.dataset_rid}
    child = children[train.dataset_rid]
    assert child.version == DatasetVersion(0, 2, 0)  # its version at the parent's snapshot
    assert child.dataset_types == ("Training",)
    assert [r["RID"] for r in child.list_dataset_members()["Image"]] == sorted(images[:3])
    assert {r["RID"] for r in bag.get_table_as_dict("Dataset")} == {
        parent.dataset_rid,
        train.dataset_rid,
        test.dataset_rid,
    }


def test_bag_of_an_older_version(ml: DerivaML, tmp_path: Path) -> None:
    images = add_images(ml, tmp_path, 3)
    ds = ml.create_dataset("Training", "d")
    v1 = ds.add_dataset_members(images[:1])
    ds.add_dataset_members(images[1:])
    bag = ds.download_dataset_bag(version=v1, materialize=False)
    assert bag.version == v1
    assert [r["RID"] for r in bag.list_dataset_members()["Image"]] == images[:1]


def test_execution_downloads_input_dataset_and_records_version(ml: DerivaML, tmp_path: Path) -> None:
    from deriva_ml.execution import ExecutionConfiguration

    wf = ml.create_workflow("w", "Training", url="https://example.org/w.py", checksum="feed")
    # Image rows made by a real execution upload
    maker = ml.create_execution(ExecutionConfiguration(workflow=wf, description="make images"))
    with maker:
        for i in range(2):
            maker.asset_file_path("Image", f"scan{i}.png").write_bytes(os.urandom(500 + i))
    uploaded = maker.upload_execution_outputs()
    image_rids = [a.rid for a in uploaded["t/Image"]]
    ds = ml.create_dataset("Training", "scans")
    version = ds.add_dataset_members(image_rids)

    exe = ml.create_execution(
        ExecutionConfiguration(workflow=wf, description="train", datasets=[DatasetSpec(rid=ds.dataset_rid)])
    )
    links = ml.catalog.query("deriva-ml", "Dataset_Execution", {"Execution": exe.execution_rid})
    assert [(r["Dataset"], r["Asset_Role"]) for r in links] == [(ds.dataset_rid, "Input")]
    config = json.loads((exe.working_dir / "metadata" / "configuration.json").read_text())
    assert config["datasets"][0]["rid"] == ds.dataset_rid
    assert DatasetVersion.parse(config["datasets"][0]["version"]) == version
    with exe:
        bag = exe.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid))
        images = bag.list_dataset_members()["Image"]
        names = sorted(Path(img["Filename"]).name for img in images)
        assert names == ["scan0.png", "scan1.png"]
        assert all(Path(img["Filename"]).is_file() for img in images)


def test_materialization_logs_byte_progress(ml: DerivaML, tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    images = add_images(ml, tmp_path, 3, size=3000)
    ds = ml.create_dataset("Training", "d")
    ds.add_dataset_members(images)
    with capture_logs() as logs:
        ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid))
    progress = [e for e in logs if e["event"] == "bag materialize progress"]
    assert progress and progress[-1]["bytes_done"] == progress[-1]["bytes_total"] >= 9000
    assert progress[-1]["percent"] == 100
