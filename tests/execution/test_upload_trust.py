"""Uploads trust nothing on disk (12.3), torn files are never cataloged as complete (12.6), a registered
output never written can be discarded (12.7), a corrupt manifest is named and rebuilt (12.8), hostile
nested JSON is a ConfigurationError (12.10). Both backends."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from deriva_ml.core.errors import ConfigurationError, UploadFailed
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.execution._execution import PARTIAL_OUTPUT
from deriva_ml.execution._manifest import Manifest, ManifestError

SECRET = b"root:x:0:0:SECRET-PASSWD-LINE\n"


def _objects(ml) -> list[bytes]:
    """Every object the store holds (embedded: files under the catalog dir; HTTP: the Hatrac server's)."""
    servers = getattr(ml, "servers", None)
    if servers is not None:
        return [v.data for versions in servers[1].objects.values() for v in versions]
    return [p.read_bytes() for p in Path(ml.home).rglob("*") if p.is_file() and "objects" in p.parts]


def _model_rows(ml, exe):
    links = ml.catalog.query(ml.domain_schema, "Model_Execution", {"Execution": exe.execution_rid})
    return ml.catalog.query(ml.domain_schema, "Model", {"RID": [r["Model"] for r in links]}) if links else []


def _types(ml, rid) -> set[str]:
    return {r["Asset_Type"] for r in ml.catalog.query(ml.domain_schema, "Model_Asset_Type", {"Model": rid})}


@pytest.fixture
def outside(tmp_path) -> Path:
    p = tmp_path / "etc-passwd"
    p.write_bytes(SECRET)
    return p


# ------------------------------------------------------------------------------------------ 12.3


def test_output_swapped_for_symlink_is_refused(ml, workflow, outside):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        good = exe.asset_file_path("Model", "good.bin")
        good.write_bytes(b"good")
        bad = exe.asset_file_path("Model", "swapped.bin")
        bad.write_bytes(b"real output")
    bad.unlink()
    bad.symlink_to(outside)  # swapped after the run (and after its seal)
    with pytest.raises(UploadFailed, match="symlink.*refused"):
        exe.upload_execution_outputs()
    assert [r["Filename"] for r in _model_rows(ml, exe)] == ["good.bin"]
    assert not any(SECRET in o for o in _objects(ml))


def test_symlink_written_at_a_registered_path_is_refused(ml, workflow, outside):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        p = exe.asset_file_path("Model", "link.bin")
        p.symlink_to(outside)
    with pytest.raises(UploadFailed, match="symlink"):
        exe.upload_execution_outputs()
    exe.discard_output(p)  # the way out
    exe.upload_execution_outputs()
    assert not any(SECRET in o for o in _objects(ml))


def test_outputs_directory_swapped_for_symlink_is_refused(ml, workflow, tmp_path, outside):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        p = exe.asset_file_path("Model", "etc-passwd")
        p.write_bytes(b"mine")
    d = p.parent
    for f in d.iterdir():
        f.unlink()
    d.rmdir()
    d.symlink_to(outside.parent)
    with pytest.raises(UploadFailed, match="outside the working directory|symlink"):
        exe.upload_execution_outputs()
    assert not any(SECRET in o for o in _objects(ml))


@pytest.mark.parametrize("tampered", ["/ABS", "../../../../ABS", "outputs/Model/../../../../ABS"])
def test_tampered_manifest_cannot_publish_a_file(ml, workflow, outside, tampered):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        exe.asset_file_path("Model", "x.bin").write_bytes(b"x")
    target = str(outside) if tampered == "/ABS" else tampered.replace("ABS", str(outside).lstrip("/"))
    db = sqlite3.connect(exe.working_dir / "manifest.sqlite")
    with db:
        db.execute("UPDATE entry SET path=?, sealed_md5=NULL WHERE filename='x.bin'", (target,))
    db.close()
    restored = ml.restore_execution(exe.execution_rid)
    with pytest.raises(UploadFailed, match="outside the working directory"):
        restored.upload_execution_outputs()
    assert not any(SECRET in o for o in _objects(ml))
    assert _model_rows(ml, exe) == []


def test_staged_existing_file_is_uploaded_but_a_swapped_source_is_refused(ml, workflow, tmp_path, outside):
    src = tmp_path / "data" / "staged.bin"
    src.parent.mkdir()
    src.write_bytes(b"staged on purpose")
    src2 = tmp_path / "data" / "later.bin"
    src2.write_bytes(b"staged too")
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        exe.asset_file_path("Model", str(src))
        p2 = exe.asset_file_path("Model", str(src2))
    entry = exe._manifest.get(exe._manifest_key(p2))
    assert entry.staged_source == str(src2.resolve()) and entry.staged_ino == src2.stat().st_ino
    src2.unlink()
    src2.symlink_to(outside)  # the staged source swapped after registration
    with pytest.raises(UploadFailed, match="replaced since it was registered"):
        exe.upload_execution_outputs()
    assert [r["Filename"] for r in _model_rows(ml, exe)] == ["staged.bin"]
    assert not any(SECRET in o for o in _objects(ml))


# ------------------------------------------------------------------------------------------ 12.6


def test_failed_run_outputs_are_marked_partial_and_sealed_ones_are_not(ml, workflow):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as ok:
        ok.asset_file_path("Model", "complete.bin").write_bytes(b"complete")
    ok.upload_execution_outputs()
    (row,) = _model_rows(ml, ok)
    assert PARTIAL_OUTPUT not in _types(ml, row["RID"])
    failed = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with pytest.raises(OSError), failed:
        failed.asset_file_path("Model", "torn.bin").write_bytes(b"half of it")
        raise OSError(28, "No space left on device")
    failed.upload_execution_outputs()
    (row,) = _model_rows(ml, failed)
    assert PARTIAL_OUTPUT in _types(ml, row["RID"])


def test_unsealed_outputs_of_a_restored_run_skip_mark_or_complete(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    exe.execution_start()
    exe.asset_file_path("Model", "a.bin").write_bytes(b"a")  # the process "dies" here: no seal
    restored = ml.restore_execution(exe.execution_rid)
    restored.upload_execution_outputs(unsealed="skip")
    assert _model_rows(ml, exe) == []
    restored.upload_execution_outputs(unsealed="complete")
    (row,) = _model_rows(ml, exe)
    assert PARTIAL_OUTPUT not in _types(ml, row["RID"])


def test_sealed_output_changed_after_the_seal_is_not_complete_in_a_restored_run(ml, workflow):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        p = exe.asset_file_path("Model", "w.bin")
        p.write_bytes(b"the real weights")
    assert exe._manifest.get(exe._manifest_key(p)).seal is not None
    p.write_bytes(b"torn")  # rewritten later by a process that then died
    restored = ml.restore_execution(exe.execution_rid)
    restored.upload_execution_outputs()
    (row,) = _model_rows(ml, exe)
    assert PARTIAL_OUTPUT in _types(ml, row["RID"])


# ------------------------------------------------------------------------------------------ 12.7


def test_never_written_output_can_be_discarded(ml, workflow):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        exe.asset_file_path("Model", "written.bin").write_bytes(b"x")
        never = exe.asset_file_path("Model", "never.bin")
    with pytest.raises(UploadFailed, match=r"discard_output"):
        exe.upload_execution_outputs()
    restored = ml.restore_execution(exe.execution_rid)  # a later process: still blocked until discarded
    with pytest.raises(UploadFailed, match="never.bin"):
        restored.upload_execution_outputs()
    restored.discard_output(never)
    done = restored.upload_execution_outputs()
    assert [a.filename for a in done[f"{ml.domain_schema}/Model"]] == ["written.bin"]


# ------------------------------------------------------------------------------------------ 12.8


def test_corrupt_manifest_is_named_and_rebuilt_on_restore(ml, workflow):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        exe.asset_file_path("Model", "first.bin").write_bytes(b"first")
    exe.upload_execution_outputs()
    exe.asset_file_path("Model", "second.bin").write_bytes(b"second")
    exe._manifest.close()
    path = exe.working_dir / "manifest.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(ManifestError, match=str(path).replace("\\", "\\\\")):
        Manifest(path)
    restored = ml.restore_execution(exe.execution_rid)
    assert list(exe.working_dir.glob("manifest.sqlite.corrupt-*"))
    restored.upload_execution_outputs()
    names = sorted(r["Filename"] for r in _model_rows(ml, exe))
    assert names == ["first.bin", "second.bin"]  # nothing duplicated, the rest uploaded
    metadata = ml.catalog.query("deriva-ml", "Execution_Metadata_Execution", {"Execution": exe.execution_rid})
    assert len(metadata) == len({m["Execution_Metadata"] for m in metadata})
    meta_rows = ml.catalog.query("deriva-ml", "Execution_Metadata")
    assert len(meta_rows) == len({r["URL"] for r in meta_rows})


# ----------------------------------------------------------------------------------------- 12.10


def test_hostile_nested_configuration_is_a_configuration_error(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    exe._manifest.set_state("configuration", '{"description": ' + "[" * 200_000 + "]" * 200_000 + "}")
    exe._manifest.close()
    with pytest.raises(ConfigurationError, match="nested too deeply"):
        ml.restore_execution(exe.execution_rid)


def test_files_are_hashed_without_following_a_late_symlink(tmp_path, outside):
    from deriva_ml.execution._upload import _md5_nofollow

    link = tmp_path / "late"
    link.symlink_to(outside)
    with pytest.raises(UploadFailed, match="cannot read"):
        _md5_nofollow(link)
    assert os.path.exists(link)
