"""An execution's manifest writes are grouped (issue 13: 50 executions/s on the embedded catalog).

The commits are counted from the manifest's own write-ahead log: every committed transaction ends with one
commit frame (a frame whose "database size after commit" field is set), and a new manifest starts with an
empty log (``Manifest._create`` checkpoints it), so the commit frames in ``manifest.sqlite-wal`` are the
transactions since the execution was created (at ``synchronous=NORMAL`` a commit is a write, not an
fsync: the log is fsynced before each catalog write, see the last test). Read before the
manifest is closed (the last connection checkpoints and removes the log).
"""

from __future__ import annotations

import json
import os
import struct
import threading
from pathlib import Path

import pytest

from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.execution import ExecutionConfiguration, _environment, _inputs, _lease
from deriva_ml.execution._lease import lease_text, owner_identity
from deriva_ml.testing import make_workflow

from .conftest import BACKENDS, open_backend

_HEADER = 32
_FRAME_HEADER = 24


def wal_commits(db: Path) -> int:
    """Committed transactions in the write-ahead log of the SQLite file ``db`` (valid frames only)."""
    wal = db.with_name(db.name + "-wal")
    if not wal.exists():
        return 0
    data = wal.read_bytes()
    if len(data) < _HEADER:
        return 0
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    commits = 0
    for offset in range(_HEADER, len(data) - _FRAME_HEADER + 1, _FRAME_HEADER + page_size):
        frame = data[offset : offset + _FRAME_HEADER]
        if frame[8:16] != salts:
            break  # a frame left from before the log was restarted
        if struct.unpack(">I", frame[4:8])[0]:
            commits += 1
    return commits


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no uv.lock here: two metadata files (configuration, environment), both new
    with open_backend(request.param, tmp_path / "home") as open_ml:
        yield request.param, open_ml


def _run(ml, n_outputs: int, tag: str) -> int:
    wf = make_workflow(f"grouped {tag}")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description=tag)) as exe:
        for i in range(n_outputs):
            exe.asset_file_path("Execution_Asset", f"{tag}{i}.txt").write_text(f"{tag} {i}\n")
    uploaded = exe.upload_execution_outputs()
    assert len(uploaded[f"{ML_SCHEMA}/Execution_Asset"]) == n_outputs
    return wal_commits(exe._manifest.path)


def test_manifest_commits_are_one_per_registration_plus_a_constant(backend):
    # creation (record, configuration, workflow, identity, lease) 1, metadata files registered and sealed 1,
    # stored 1, cataloged 1, Pending 1, Running (record and lease) 1, the outputs' seals 1, Completed 1,
    # stored 1, cataloged 1: 10, plus one per registration (committed before asset_file_path returns).
    # A store without deferred durability (Hatrac) records each file as it lands: one commit per file
    # stored instead of one per group. Before the grouping: 5 commits at creation, 2 per metadata file,
    # 2 per status change holding the lease, 1 per seal: 20 instead of 12 for 2 outputs on the embedded catalog.
    kind, open_ml = backend
    ml = open_ml()
    for n, tag in ((2, "a"), (7, "b")):
        per_file = 0 if kind == "embedded" else (2 - 1) + (n - 1)  # 2 metadata files, n outputs
        assert _run(ml, n, tag) == n + 10 + per_file


def _thread_names(ml, n_outputs: int, tag: str) -> set[str]:
    names: set[str] = set()
    wf = make_workflow(f"threads {tag}")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description=tag)) as exe:
        for i in range(n_outputs):
            exe.asset_file_path("Execution_Asset", f"{tag}{i}.txt").write_text(f"{tag} {i}\n")
    exe.upload_execution_outputs(progress=lambda done, total: names.add(threading.current_thread().name))
    return names


@pytest.mark.parametrize("kind", ["embedded", "ermrest+hatrac"])
def test_small_outputs_to_the_local_store_are_copied_without_a_thread_pool(kind, tmp_path):
    # the progress callback runs in the thread that puts the file: the caller's for a few small files on
    # the local store (no pool started), the pool's for a remote store with several files
    with open_backend(kind, tmp_path / "home") as open_ml:
        ml = open_ml()
        assert ml.upload_workers > 1
        names = _thread_names(ml, 40, "t")  # however many small files (the pool is for big copies)
    if kind == "embedded":
        assert names == {threading.current_thread().name}
    else:
        assert names and all(n.startswith("deriva-ml-upload") for n in names)


def test_environment_redaction_is_reused_while_the_environment_and_rules_are_the_same(monkeypatch):
    from datetime import UTC, datetime

    from deriva_ml.core.redact import add_redaction_pattern, clear_redaction_patterns

    at = datetime(2026, 1, 1, tzinfo=UTC)
    env = {"HOME": "/h", "API_TOKEN": "s3cr3t-value", "PLAIN": "visible abc123"}
    _environment._redacted_environment.cache_clear()
    first = _environment.environment_snapshot(at, env=env, argv=[])
    again = _environment.environment_snapshot(at, env=dict(env), argv=[])
    info = _environment._redacted_environment.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    assert first["environment"] == again["environment"]
    assert "s3cr3t-value" not in json.dumps(first) and first["environment"]["PLAIN"] == "visible abc123"
    # a changed variable or a new redaction rule is redacted afresh
    changed = _environment.environment_snapshot(at, env={**env, "PLAIN": "other"}, argv=[])
    assert changed["environment"]["PLAIN"] == "other"
    try:
        add_redaction_pattern(r"abc(123)")
        ruled = _environment.environment_snapshot(at, env=env, argv=[])
        assert "123" not in ruled["environment"]["PLAIN"]
    finally:
        clear_redaction_patterns()
    assert _environment.environment_snapshot(at, env=env, argv=[])["environment"]["PLAIN"] == "visible abc123"


def test_the_lease_names_this_process_and_a_forked_child_names_itself():
    assert json.loads(lease_text()) == owner_identity()
    assert lease_text() is lease_text()  # read from /proc once
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, lease_text().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = json.loads(os.read(read, 4096))
    os.close(read)
    assert child["pid"] == pid != os.getpid()
    assert _lease.LEASE == "owner"


def _intents(db: Path) -> frozenset:
    """What a run asked for, as committed in the manifest ``db`` (read by a connection of its own): each
    output's registration (path, table, types, metadata) and seal. Not progress (stored, cataloged)."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as raw:
        return frozenset(
            raw.execute("SELECT path, asset_table, asset_types, metadata, sealed_md5, sealed_length FROM entry")
        )


class _ApplyOrder:
    """A catalog port that, at each ``apply``, notes the manifest intents committed but not yet fsynced."""

    def __init__(self, inner, synced: dict[str, frozenset]) -> None:
        self.inner, self.synced, self.lagging, self.applies = inner, synced, [], 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def apply(self, batch, *args, **kwargs):
        self.applies += 1
        for wal, at_sync in self.synced.items():
            now = _intents(Path(wal[: -len("-wal")]))
            if now != at_sync:
                self.lagging.append((wal, sorted(now - at_sync), [type(e).__name__ for e in batch.effects]))
        return self.inner.apply(batch, *args, **kwargs)


def test_manifest_intents_are_fsynced_before_each_catalog_write_not_per_registration(backend, monkeypatch):
    # Commits are at synchronous=NORMAL (in the OS on return: a kill loses nothing). Before every catalog write
    # the write-ahead log is fsynced (make_durable) if an intent (a registration, a seal...) was committed
    # since the last fsync, so after a power loss the catalog never says a run started or ended, or points at
    # a file, while what the run registered is lost; progress (stored, cataloged, status copies) is not waited
    # for. Registrations alone cost no fsync; an execution costs two fsyncs of the log, not one per commit.
    _kind, open_ml = backend
    ml = open_ml()
    synced: dict[str, frozenset] = {}  # manifest WAL path -> intents committed when it was last fsynced
    syncs: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith("manifest.sqlite-wal"):
            synced[target] = _intents(Path(target[: -len("-wal")]))
            syncs.append(target)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    recorder = _ApplyOrder(ml.catalog, synced)
    ml.catalog = recorder
    wf = make_workflow("durable order")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="order")) as exe:
        db = exe._manifest._db
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        wal = str(exe._manifest.path) + "-wal"
        before = len(syncs)
        for i in range(12):
            exe.asset_file_path("Execution_Asset", f"o{i}.txt").write_text(f"o {i}\n")
        assert len(syncs) == before  # twelve registrations committed, none of them fsynced
        assert len(_intents(exe._manifest.path) - synced[wal]) == 12
    exe.upload_execution_outputs()
    assert recorder.applies >= 4  # metadata rows, Pending, Running, Completed, output rows
    assert recorder.lagging == [], recorder.lagging
    # the metadata files' registrations (before their rows) and the outputs' (before Completed)
    assert syncs.count(wal) == 2
    assert synced[wal] == _intents(exe._manifest.path)


def test_the_snapshot_text_is_the_indented_json_dump_and_its_unchanged_parts_are_rendered_once():
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    snap = _environment.environment_snapshot(at, env={"HOME": "/h", "X": 'q"uote\\ \u00e9\n'}, argv=["a", "b"])
    snap["odd"] = {"nested": [1, 2.5, None, True, {"k": "line\nbreak"}], "empty": {}, "none": []}
    expected = json.dumps(snap, indent=2, ensure_ascii=False) + "\n"
    _environment._indented.cache_clear()
    assert _environment.render_snapshot(snap) == expected
    misses = _environment._indented.cache_info().misses
    later = dict(snap, captured_at=datetime(2026, 1, 2, tzinfo=UTC).isoformat())
    assert _environment.render_snapshot(later) == json.dumps(later, indent=2, ensure_ascii=False) + "\n"
    assert _environment._indented.cache_info().misses == misses + 1  # only the new time was rendered again
    assert _environment.render_snapshot({}) == "{}\n"


@pytest.mark.parametrize("kind", ["embedded", "ermrest+hatrac"])
def test_the_scrubbed_lock_file_is_one_shared_copy_linked_into_each_execution(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the nearest uv.lock above the working directory is this one
    lock = '[[package]]\nname = "x"\nsource = { registry = "https://alice:s3cretpw9@index.example.org/simple" }\n'
    (tmp_path / "uv.lock").write_text(lock * 200)
    with open_backend(kind, tmp_path / "home") as open_ml:
        ml = open_ml()
        wf = make_workflow("shared lock")
        exes = []
        for tag in ("a", "b"):
            with ml.create_execution(ExecutionConfiguration(workflow=wf, description=tag)) as exe:
                exe.asset_file_path("Execution_Asset", f"{tag}.txt").write_text(tag)
            exe.upload_execution_outputs()
            exes.append(exe)
        copies = [e.working_dir / "metadata" / "uv.lock" for e in exes]
        texts = [c.read_text() for c in copies]
        assert texts[0] == texts[1] and "s3cretpw9" not in texts[0] and "index.example.org" in texts[0]
        assert copies[0].stat().st_ino == copies[1].stat().st_ino  # one file, linked: written once
        (shared,) = (ml.working_dir / "metadata-shared").iterdir()
        assert shared.stat().st_ino == copies[0].stat().st_ino and shared.stat().st_mode & 0o222 == 0  # read-only
        # each execution's entry is sealed with those bytes: the upload trusted it (not Partial_Output)
        for e in exes:
            (entry,) = [x for x in e._manifest.entries() if x.filename == "uv.lock"]
            assert entry.seal is not None and entry.seal.length == len(texts[0].encode())
            assert entry.state == "cataloged" and "Partial_Output" not in entry.asset_types
        # a shared copy that is not what its name says (same size, other bytes) is replaced, not linked
        os.chmod(shared, 0o644)
        shared.write_text("X" * len(texts[0]))
        _inputs._VERIFIED_SHARED.clear()  # as a new process would find it
        with ml.create_execution(ExecutionConfiguration(workflow=wf, description="c")):
            pass
        (shared,) = (ml.working_dir / "metadata-shared").iterdir()
        third = ml.working_dir / "executions"
        (third,) = [
            p for p in third.glob("*/metadata/uv.lock") if p.parent.parent.name not in {e.execution_rid for e in exes}
        ]
        assert third.read_text() == texts[0] == shared.read_text() and third.stat().st_ino == shared.stat().st_ino
