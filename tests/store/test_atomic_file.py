"""``atomic_file``: every byte written even when ``write(2)`` is short, the directory made on demand, nothing
left behind on failure, and temp names that never collide within a process or with a forked child."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deriva_ml.store._files import _TEMP_NAMES, atomic_file


def test_short_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    calls: list[int] = []

    def short_write(fd: int, data) -> int:  # the kernel may write less than asked (a signal, a pipe, NFS)
        calls.append(len(data))
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(os, "write", short_write)
    payload = bytes(range(256)) * 4
    with atomic_file(tmp_path / "new" / "deep" / "f.bin") as f:  # directories made on demand
        assert f.write(payload) == len(payload)
    monkeypatch.undo()
    assert (tmp_path / "new" / "deep" / "f.bin").read_bytes() == payload
    assert len(calls) == -(-len(payload) // 3)


def test_a_failing_body_leaves_the_destination_and_no_temp_file(tmp_path: Path) -> None:
    dest = tmp_path / "f.txt"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(dest) as f:
        f.write(b"new")
        raise RuntimeError("boom")
    assert dest.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_temp_names_are_unique_and_a_forked_child_draws_its_own() -> None:
    names = {_TEMP_NAMES.next("x.") for _ in range(1000)}
    assert len(names) == 1000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, _TEMP_NAMES.next("x.").encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode()
    os.close(read)
    assert child not in names and f".{pid}." in child
