"""Mutation check: each listed mutation of the status machinery must be killed by the test suite.

Run by hand (``uv run python benchmarks/mutation_check.py [name ...]``). For each mutation the tracked and
untracked (not ignored) files of this checkout are copied to a temporary directory, one textual change is
applied there (it must match exactly once), a regeneration step runs when the mutation needs one (the
generated ``docs/status.md``), and the tests named for it run against the copy (``PYTHONPATH`` puts the
copy first). A mutation is *killed* when those tests fail. Exit status 0 only if every mutation is killed.

Not listed: ``start, stop = start or at, None`` on entering Running is an equivalent mutant (a retry passes
through Failed -> Pending, which already cleared both times), so no test can kill it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    regenerate_docs: bool = False
    why: str = ""
    extra: tuple[tuple[str, str, str], ...] = field(default=())


MUTATIONS = (
    Mutation(
        "edge-aborted-pending",
        "deriva_ml/core/status.py",
        '    (Status.failed, Status.aborted, "a failed run is given up for good"),\n',
        '    (Status.failed, Status.aborted, "a failed run is given up for good"),\n'
        '    (Status.aborted, Status.pending, "an aborted run may be resumed"),\n',
        ("property_tests/test_lifecycle_model.py", "tests/core"),
        regenerate_docs=True,
        why="an extra edge in the table (docs regenerated, so the docs test alone cannot catch it)",
    ),
    Mutation(
        "codec-drops-history",
        "deriva_ml/core/convert.py",
        "        c.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, c))\n",
        "        drop = {'history': override(omit=True)} if cls is ExecutionRecord else {}\n"
        "        c.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, c, **drop))  # type: ignore[arg-type]\n",
        ("property_tests/test_records.py",),
        why="configuration/record JSON loses the status history",
    ),
    Mutation(
        "output-rows-first-asset-type-only",
        "deriva_ml/core/plans.py",
        'type_rows = [{table: ref(o.key), "Asset_Type": t} for o in outs for t in dict.fromkeys(o.asset_types)]',
        'type_rows = [{table: ref(o.key), "Asset_Type": t} for o in outs for t in dict.fromkeys(o.asset_types[:1])]',
        ("property_tests/test_plans_and_replay.py",),
        why="only the first asset type of an output reaches <Asset>_Asset_Type",
    ),
    Mutation(
        "retry-keeps-old-times",
        "deriva_ml/core/records.py",
        "    elif to is Status.pending and record.status is Status.failed:\n        start, stop = None, None\n",
        "    elif to is Status.pending and record.status is Status.failed:\n        pass\n",
        ("tests/execution/test_status_cas.py",),
        why="Failed -> Pending keeps the failed attempt's start/stop (and Duration)",
    ),
    Mutation(
        "abort-stale-bypasses-transition",
        "deriva_ml/execution/_lifecycle.py",
        'planned.append((transition(record, Status.aborted, f"Aborted: {reason}", now), reason, manifest))',
        'planned.append((attrs.evolve(record, status=Status.aborted, status_detail=f"Aborted: {reason}"), '
        "reason, manifest))",
        ("tests/execution/test_status_cas.py", "property_tests/test_lifecycle_model.py"),
        why="abort_stale_executions builds the Aborted record without transition() (no history, no Duration)",
    ),
    Mutation(
        "plain-status-update",
        "deriva_ml/core/plans.py",
        "    return Batch([SetStatus([status_write(r) for r in records], skip_lost=skip_lost)])",
        "    return Batch([Update(ML_SCHEMA, 'Execution', [{'RID': r.rid, **status_write(r).values()} for r in "
        "records])])",
        ("tests/execution/test_status_cas.py",),
        why="status written as a plain Update (no compare-and-set)",
    ),
)


def _files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def applies(m: Mutation, root: Path = ROOT) -> int:
    """How many times the mutation's text occurs in ``root``'s copy of its file (it applies when exactly once)."""
    return (root / m.path).read_text().count(m.old)


def run(m: Mutation) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix=f"mut-{m.name}-") as d:
        tmp = Path(d)
        for f in _files():
            dest = tmp / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest)
        target = tmp / m.path
        text = target.read_text()
        if applies(m, tmp) != 1:
            return False, f"DOES NOT APPLY: {m.old!r} found {text.count(m.old)} times in {m.path}"
        target.write_text(text.replace(m.old, m.new))
        env = {**os.environ, "PYTHONPATH": str(tmp), "HYPOTHESIS_PROFILE": "default"}
        if m.regenerate_docs:
            doc = subprocess.run(
                [sys.executable, "-m", "deriva_ml.core.status"], cwd=tmp, env=env, capture_output=True, text=True
            )
            (tmp / "docs" / "status.md").write_text(doc.stdout)
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", "-m", "not slow", "-W", "ignore"]
        proc = subprocess.run([*cmd, *m.tests], cwd=tmp, env=env, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        return proc.returncode != 0, " | ".join(failed or lines[-3:])


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not argv or m.name in argv]
    survivors = []
    for m in chosen:
        t0 = time.monotonic()
        killed, tail = run(m)
        verdict = "KILLED " if killed else "SURVIVED"
        print(f"{verdict} {m.name:36s} {time.monotonic() - t0:6.1f}s  ({m.why})", flush=True)
        print(f"         {tail[:300]}", flush=True)  # which test killed it (or the survivor's last lines)
        if not killed:
            survivors.append(m.name)
    print(f"{len(chosen) - len(survivors)}/{len(chosen)} mutations killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
