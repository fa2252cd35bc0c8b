"""``deriva-ml export RID --format ro-crate|prov-json [-o PATH] [--recurse]``: an execution's provenance in a
standard form (deriva_ml.provenance.export_rocrate / export_prov; needs the ``export`` extra).

``ro-crate`` writes a Workflow Run RO-Crate directory (or a ``.zip``), default ``<RID>-ro-crate``; when the
workflow's code is found in the git repository of the current directory (its recorded checksum is a git
blob id), the code is included as the crate's main workflow file. ``prov-json`` prints PROV-JSON, or writes
it to ``-o PATH``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any


def register(sub: Any, target: Any) -> None:
    e = sub.add_parser("export", help="export an execution's provenance as a Workflow Run RO-Crate or PROV-JSON")
    target(e)
    e.add_argument("rid", help="the execution's RID")
    e.add_argument("--format", required=True, choices=["ro-crate", "prov-json"], help="the export format")
    e.add_argument("-o", "--output", default=None, help="where to write (ro-crate: a directory or .zip)")
    e.add_argument("--recurse", action="store_true", help="include nested children (a sweep parent's jobs)")


def workflow_source(checksum: str | None, url: str | None, start: Path, dest: Path) -> Path | None:
    """The workflow's code from the git repository around ``start``, when it holds the blob ``checksum``."""
    if not checksum or len(checksum) != 40:
        return None
    try:
        from dulwich.repo import Repo

        with Repo.discover(str(start)) as repo:
            sha: Any = checksum.encode()  # a hex object id
            if sha not in repo.object_store:
                return None
            blob = repo.object_store[sha]
            if blob.type_name != b"blob":
                return None
            path = dest / (Path(url or "workflow").name or "workflow")
            path.write_bytes(blob.as_raw_string())
            return path
    except Exception:  # no repository here, or an unreadable one: the crate references the URL instead
        return None


def run(args: argparse.Namespace, open_ml: Any) -> int:
    from deriva_ml._ml import LOCAL_HOST
    from deriva_ml.cli._diff import document
    from deriva_ml.core.rid import parse_rid

    parse_rid(args.rid, "RID")
    ml = open_ml(args.host, args.catalog, args.home)
    try:
        doc = document(ml, args.rid, args.recurse)
    finally:
        ml.close()
    if args.format == "prov-json":
        from deriva_ml.provenance.export_prov import export_prov

        text = export_prov(doc, args.output)
        if args.output is None:
            print(text)
        else:
            print(f"wrote {args.output}")
        return 0
    from deriva_ml.provenance.export_rocrate import export_rocrate

    base_url = None if args.host == LOCAL_HOST else f"https://{args.host}"
    dest = Path(args.output or f"{args.rid}-ro-crate")
    with tempfile.TemporaryDirectory(prefix="deriva-ml-export-") as tmp:
        files: dict[str, str | Path] = {}
        for c in _contents(doc["content"]):
            wf = c.get("workflow") or {}
            src = workflow_source(wf.get("checksum"), wf.get("url"), Path.cwd(), Path(tmp))
            if src is not None:
                files[str(wf["checksum"])] = src
        out = export_rocrate(doc, dest, base_url=base_url, workflow_files=files)
    print(f"wrote {out}")
    return 0


def _contents(content: dict[str, Any]) -> list[dict[str, Any]]:
    out = [content]
    for child in content.get("children") or []:
        out.extend(_contents(child["content"]))
    return out
