"""The manifest's grouped writes: ``batch()``, ``seal_many`` and ``set_states`` commit once, all or nothing.

Real SQLite files; a second connection (another ``Manifest`` on the same file, as another process would
open it) shows what is committed; a killed child process shows what survives a crash.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path

import pytest

from deriva_ml.execution._manifest import Manifest, Seal


def _manifest(tmp_path: Path, n: int = 3) -> tuple[Manifest, list[int]]:
    m = Manifest(tmp_path / "manifest.sqlite")
    keys = [m.register(schema="s", asset_table="T", path=f"outputs/T/f{i}", filename=f"f{i}").key for i in range(n)]
    return m, keys


def _commits(m: Manifest) -> list[str]:
    seen: list[str] = []
    m._db.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def test_seal_many_writes_every_seal_in_one_commit(tmp_path):
    m, keys = _manifest(tmp_path)
    commits = _commits(m)
    m.seal_many({k: Seal(f"{i:032x}", i, 10 + i, 100 + i) for i, k in enumerate(keys)})
    assert len(commits) == 1
    other = Manifest(m.path)
    assert [e.seal for e in other.entries()] == [Seal(f"{i:032x}", i, 10 + i, 100 + i) for i in range(3)]
    m.seal_many({keys[1]: None})
    assert [e.seal is None for e in other.entries()] == [False, True, False]
    m.seal_many({})
    assert len(commits) == 2


def test_set_states_in_one_commit(tmp_path):
    m, _ = _manifest(tmp_path, 0)
    commits = _commits(m)
    m.set_states({"record": "{}", "configuration": '{"a": 1}', "workflow": "[]"})
    m.set_state("record", '{"b": 2}')
    assert len(commits) == 2
    other = Manifest(m.path)
    assert [other.get_state(k) for k in ("record", "configuration", "workflow", "absent")] == [
        '{"b": 2}',
        '{"a": 1}',
        "[]",
        None,
    ]


def test_batch_commits_once_and_only_at_its_end(tmp_path):
    m, keys = _manifest(tmp_path)
    other = Manifest(m.path)
    commits = _commits(m)
    with m.batch():
        m.seal(keys[0], Seal("0" * 32, 1, 2, 3))
        with m.batch():  # nested: joins the outer transaction
            m.set_state("record", "x")
            m.mark_stored(keys[1], url="/u", md5="1" * 32, length=4)
        m.register(schema="s", asset_table="T", path="outputs/T/new", filename="new")
        assert m.get("outputs/T/new") is not None  # the batch reads its own writes
        # nothing is visible to another connection yet
        assert other.get_state("record") is None
        assert other.get("outputs/T/new") is None
        assert all(e.seal is None for e in other.entries())
        assert commits == []
    assert len(commits) == 1
    assert other.get_state("record") == "x"
    assert other.get("outputs/T/new") is not None
    assert [e.state for e in other.entries()][:2] == ["registered", "stored"]
    assert other.entries()[0].seal == Seal("0" * 32, 1, 2, 3)


def test_an_exception_in_a_batch_rolls_all_of_it_back(tmp_path):
    m, keys = _manifest(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), m.batch():
        m.seal_many({k: Seal("0" * 32, 1, 2, 3) for k in keys})
        m.set_state("record", "x")
        raise RuntimeError("boom")
    assert m.get_state("record") is None
    assert all(e.seal is None for e in m.entries())
    m.set_state("record", "y")  # the manifest stays usable
    assert Manifest(m.path).get_state("record") == "y"


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from deriva_ml.execution._manifest import Manifest, Seal

    m = Manifest(Path(sys.argv[1]))
    keys = [e.key for e in m.entries()]
    with m.batch():
        m.seal_many({k: Seal("0" * 32, 1, 2, 3) for k in keys})
        m.set_state("record", "inside")
        if sys.argv[2] == "inside":
            os.kill(os.getpid(), signal.SIGKILL)
    if sys.argv[2] == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["inside", "after"])
def test_a_process_killed_in_a_batch_leaves_none_of_it_and_after_all_of_it(tmp_path, kill_at):
    m, _ = _manifest(tmp_path)
    m.close()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "manifest.sqlite"), kill_at], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    after = Manifest(tmp_path / "manifest.sqlite")
    sealed = [e.seal is not None for e in after.entries()]
    if kill_at == "inside":
        assert sealed == [False, False, False] and after.get_state("record") is None
    else:
        assert sealed == [True, True, True] and after.get_state("record") == "inside"


def test_a_new_manifest_is_created_in_its_own_file_and_made_durable_with_its_first_commits(tmp_path, monkeypatch):
    # created without an fsync per step, then checkpointed: the schema is in the main file itself (read here
    # with immutable=1, which ignores the WAL), the WAL is empty, and the connection is WAL + synchronous=NORMAL;
    # the first make_durable() fsyncs the log, the file and the directory, later ones the log alone
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    m = Manifest(tmp_path / "new" / "manifest.sqlite")
    assert synced == []  # nothing is registered yet: creating costs no fsync
    wal = m.path.with_name("manifest.sqlite-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with closing(sqlite3.connect(f"file:{m.path}?immutable=1", uri=True)) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"entry", "state"} <= tables
    assert m.path.read_bytes()[18:20] == b"\x02\x02"  # the file's header says WAL
    assert m._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert m._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    m.register(schema="s", asset_table="T", path="outputs/T/a", filename="a")
    assert synced == []  # committed (in the OS: a kill loses nothing), not fsynced
    assert Manifest(m.path).get("outputs/T/a") is not None
    assert m.make_durable() and synced == ["manifest.sqlite-wal", "manifest.sqlite", "new"]
    assert not m.make_durable() and len(synced) == 3  # nothing committed since
    m.register(schema="s", asset_table="T", path="outputs/T/b", filename="b")
    assert m.make_durable() and synced[3:] == ["manifest.sqlite-wal"]


def test_a_manifest_created_by_several_handles_at_once_is_one_manifest(tmp_path):
    path = tmp_path / "manifest.sqlite"
    errors: list[BaseException] = []
    handles: list[Manifest] = []

    def open_and_register(i: int) -> None:
        try:
            m = Manifest(path)
            m.register(schema="s", asset_table="T", path=f"outputs/T/{i}", filename=str(i))
            handles.append(m)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_register, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(e.path for e in Manifest(path).entries()) == [f"outputs/T/{i}" for i in range(4)]


def test_an_existing_manifest_is_reopened_without_rewriting_it(tmp_path):
    m, _ = _manifest(tmp_path)
    m.close()
    before = (tmp_path / "manifest.sqlite").stat().st_mtime_ns
    again = Manifest(tmp_path / "manifest.sqlite")
    assert len(again.entries()) == 3
    assert (tmp_path / "manifest.sqlite").stat().st_mtime_ns == before
