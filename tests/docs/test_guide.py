"""Every page of the user guide (``docs/guide/*.md``) runs as written.

The ```` ```python ```` blocks of a page are joined, in order, into one script that runs in a fresh git
repository (as a user's script would: workflows are detected from it) with its own ``DERIVA_ML_HOME``, on the
embedded catalog. Blocks fenced ```` ```python no-run ```` are shown but not run (e.g. live-server examples).
Examples check themselves with ``assert``; a page that fails shows its output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide"
_BLOCK = re.compile(r"^```python[ \t]*(?P<info>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    """The runnable python blocks of a Markdown page, in order."""
    return [m["code"] for m in _BLOCK.finditer(text) if "no-run" not in m["info"]]


def test_block_extraction_skips_no_run_blocks() -> None:
    page = "intro\n```python\nx = 1\n```\n```python no-run\nraise SystemExit(1)\n```\n```bash\nls\n```\n```python\nassert x == 1\n```\n"
    assert python_blocks(page) == ["x = 1\n", "assert x == 1\n"]


PAGES = sorted(GUIDE.glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_guide_page_runs(page: Path, tmp_path: Path) -> None:
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip(f"{page.name} has no runnable python block")
    repo = tmp_path / "project"
    repo.mkdir()
    script = repo / f"guide_{page.stem.replace('-', '_')}.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DERIVA_ML_")},
        "DERIVA_ML_HOME": str(tmp_path / "home"),
        "DERIVA_ML_PROGRESS": "0",
        "GIT_AUTHOR_NAME": "guide",
        "GIT_AUTHOR_EMAIL": "guide@example.org",
        "GIT_COMMITTER_NAME": "guide",
        "GIT_COMMITTER_EMAIL": "guide@example.org",
    }
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-q", "-m", "guide example"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, script.name], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{page.name} failed:\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    )


_LINK = re.compile(r"\]\((?P<target>[^)#\s]+\.md)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_guide_links_resolve(page: Path) -> None:
    missing = [
        m["target"]
        for m in _LINK.finditer(page.read_text(encoding="utf-8"))
        if "://" not in m["target"] and not (page.parent / m["target"]).is_file()
    ]
    assert not missing, f"{page.name} links to missing pages: {missing}"
