"""Benchmark: source detection (dulwich, deriva_ml.source) next to the git CLI, measured in one run.

Run by hand:  uv run python benchmarks/workflow_detect.py [--files 5000] [--mb 200] [--repeat 7]

Builds, in a temporary directory, a repository of N small files in nested directories and a
200 MB file, then times (median of --repeat runs, warm page cache):

* dirty check of the whole repository: ``deriva_ml.source.git.dirty_state`` vs ``git status
  --porcelain`` (clean tree, then a tree with modified, staged and untracked files);
* ``detect_source(caller_file=...)`` end to end (dirty check + blob hash + remote + pyproject);
* the git blob id of the 200 MB file: ``deriva_ml.source.git.blob_id`` vs ``git hash-object``.

The git CLI is used here as a baseline only; deriva_ml itself never runs it. Target: <= 3x git.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import structlog

from deriva_ml.source import detect_source
from deriva_ml.source.git import blob_id, dirty_state

GIT = shutil.which("git")
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@e",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@e",
}


def git(root: Path, *args: str) -> str:
    assert GIT is not None
    return subprocess.run([GIT, *args], cwd=root, check=True, capture_output=True, env=GIT_ENV).stdout.decode()


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up (imports, page cache, git's index refresh)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def build_repo(root: Path, n_files: int) -> None:
    root.mkdir()
    per_dir = 50
    for i in range(n_files):
        d = root / f"pkg{i // per_dir // 10}" / f"mod{i // per_dir}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i}.py").write_text(f"# file {i}\n" + "x = 1\n" * 20)
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "1.0.0"\n')
    (root / ".gitignore").write_text("outputs/\n*.log\n")
    (root / "train.py").write_text("print('train')\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    git(root, "remote", "add", "origin", "git@github.com:org/bench.git")
    time.sleep(1.1)  # leave the racy-git window so neither side has to re-hash everything
    git(root, "update-index", "--refresh")


def dirty_up(root: Path) -> None:
    for i in range(0, 50, 5):
        p = next(root.glob(f"pkg0/mod0/file{i}.py"))
        p.write_text(p.read_text() + "# edit\n")
    (root / "staged.py").write_text("s = 1\n")
    git(root, "add", "staged.py")
    for i in range(5):
        (root / f"untracked{i}.py").write_text("u\n")
    (root / "outputs").mkdir()
    for i in range(200):
        (root / "outputs" / f"o{i}.bin").write_bytes(b"o")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if GIT is None:
        print("git CLI not found: the baseline needs it", file=sys.stderr)
        return 1
    warnings.simplefilter("ignore")
    # the benchmark is an application: it may configure logging (the library never does)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="deriva-ml-bench-") as tmp:
        root = Path(tmp) / "repo"
        t = time.perf_counter()
        build_repo(root, args.files)
        print(f"built {args.files}-file repository in {time.perf_counter() - t:.1f} s")

        ours = median_ms(lambda: dirty_state(root), args.repeat)
        theirs = median_ms(lambda: git(root, "status", "--porcelain"), args.repeat)
        assert dirty_state(root).paths == () and git(root, "status", "--porcelain") == ""
        rows.append((f"dirty check, clean tree ({args.files} files)", ours, theirs))

        dirty_up(root)
        ours = median_ms(lambda: dirty_state(root), args.repeat)
        theirs = median_ms(lambda: git(root, "status", "--porcelain"), args.repeat)
        n_dirty = len(dirty_state(root).paths)
        n_git = len(git(root, "status", "--porcelain", "--untracked-files=all").splitlines())
        assert n_dirty == n_git, (n_dirty, n_git)
        rows.append((f"dirty check, {n_dirty} dirty paths", ours, theirs))

        ours = median_ms(lambda: detect_source(caller_file=root / "train.py", env={}), args.repeat)
        theirs = median_ms(
            lambda: (
                git(root, "status", "--porcelain"),
                git(root, "hash-object", "train.py"),
                git(root, "rev-parse", "HEAD"),
                git(root, "remote", "get-url", "origin"),
            ),
            args.repeat,
        )
        rows.append(("detect_source end to end vs 4 git calls", ours, theirs))

        big = Path(tmp) / "big.bin"
        block = os.urandom(1 << 20)
        with open(big, "wb") as f:
            for _ in range(args.mb):
                f.write(block)
        assert blob_id(big) == git(Path(tmp), "hash-object", str(big)).strip()
        ours = median_ms(lambda: blob_id(big), max(3, args.repeat // 2))
        theirs = median_ms(lambda: git(Path(tmp), "hash-object", str(big)), max(3, args.repeat // 2))
        rows.append((f"blob id of a {args.mb} MB file", ours, theirs))

    print(f"\n{'measurement':<46} {'deriva_ml':>11} {'git CLI':>11} {'ratio':>7}")
    worst = 0.0
    for name, ours, theirs in rows:
        ratio = ours / theirs
        worst = max(worst, ratio)
        print(f"{name:<46} {ours:>8.1f} ms {theirs:>8.1f} ms {ratio:>6.2f}x")
    if any("blob id" in r[0] for r in rows):
        name, ours, theirs = rows[-1]
        print(
            f"\nblob hashing throughput: deriva_ml {args.mb / ours * 1000:.0f} MB/s, "
            f"git hash-object {args.mb / theirs * 1000:.0f} MB/s"
        )
    print(f"worst ratio {worst:.2f}x (target <= 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
