"""Drawing a lineage graph (pure text, and SVG through Graphviz's ``dot`` program when installed):
:func:`to_dot`, :func:`to_mermaid`, :func:`to_svg`, and :func:`render` by format name. The graph itself
is built by :func:`deriva_ml.lineage.build_graph`; these names are importable from ``deriva_ml.lineage``.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from deriva_ml.core.errors import DerivaMLException, ValidationError

if TYPE_CHECKING:
    from deriva_ml.lineage import Graph

__all__ = ["FORMATS", "LineageError", "render", "to_dot", "to_mermaid", "to_svg"]

FORMATS = ("dot", "svg", "mermaid")


_DOT_STYLE = {
    "workflow": 'shape=component, style=filled, fillcolor="#e8e0f8"',
    "execution": 'shape=box, style="rounded,filled", fillcolor="#dbeafe"',
    "dataset": 'shape=cylinder, style=filled, fillcolor="#fef3c7"',
    "asset": 'shape=note, style=filled, fillcolor="#dcfce7"',
    "group": 'shape=folder, style=filled, fillcolor="#dcfce7"',
}


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text (left to right; the start node drawn bold)."""
    out = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for n in graph.nodes:
        extra = ", penwidth=2.5" if n.id == graph.root else ""
        out.append(f"  {n.id} [label={_dot_str(n.label)}, {_DOT_STYLE[n.kind]}{extra}];")
    for e in graph.edges:
        style = {"nested": ", style=dashed", "ran": ", style=dotted", "replay": ', style=dashed, color="#b45309"'}.get(
            e.kind, ""
        )
        out.append(f"  {e.src} -> {e.dst} [label={_dot_str(e.label)}{style}];")
    out.append("}")
    return "\n".join(out) + "\n"


_MERMAID_SHAPE = {
    "workflow": ("[[", "]]"),
    "execution": ("(", ")"),
    "dataset": ("[(", ")]"),
    "asset": ("[/", "/]"),
    "group": ("[/", "/]"),
}


def _mermaid_str(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def to_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart`` (renders in GitHub Markdown)."""
    out = ["flowchart LR"]
    for n in graph.nodes:
        left, right = _MERMAID_SHAPE[n.kind]
        out.append(f"  {n.id}{left}{_mermaid_str(n.label)}{right}")
    for e in graph.edges:
        arrow = "-.->" if e.kind in ("nested", "ran", "replay") else "-->"
        out.append(f"  {e.src} {arrow}|{_mermaid_str(e.label)}| {e.dst}")
    if graph.root:
        out.append(f"  style {graph.root} stroke-width:3px")
    return "\n".join(out) + "\n"


def to_svg(dot_text: str, *, dot: str | None = None) -> bytes:
    """SVG drawn by Graphviz's ``dot`` program; :class:`LineageError` when it is not installed."""
    exe = dot or shutil.which("dot")
    if exe is None:
        raise LineageError("SVG needs Graphviz's `dot` program, which is not on PATH: use --format dot or mermaid")
    proc = subprocess.run([exe, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0:
        raise LineageError(f"dot failed ({proc.returncode}): {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout


class LineageError(DerivaMLException):
    """The lineage graph cannot be drawn as asked (unknown format, Graphviz missing...)."""


def render(graph: Graph, fmt: str) -> bytes:
    """The graph in ``fmt`` (``dot``, ``svg`` or ``mermaid``) as bytes."""
    if fmt == "dot":
        return to_dot(graph).encode("utf-8")
    if fmt == "mermaid":
        return to_mermaid(graph).encode("utf-8")
    if fmt == "svg":
        return to_svg(to_dot(graph))
    raise ValidationError(f"unknown lineage format {fmt!r}; valid: {', '.join(FORMATS)}")
