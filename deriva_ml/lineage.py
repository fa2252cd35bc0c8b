"""``deriva-ml lineage RID``: the provenance graph around an execution, dataset or asset.

workflow -> execution -> outputs -> executions that read them -> ... (and upstream: the inputs and the
executions that wrote them), datasets with the versions read or written, nesting. Bounded by ``depth``:
the number of execution-to-execution hops from the start (through a shared asset or dataset, or a nesting
link).

Three parts, as everywhere in deriva_ml:

* :func:`gather_lineage` (shell): reads the catalog level by level. A level costs a constant number of
  queries whatever the number of executions, assets and datasets on it: one per ML table it looks at and
  two per asset table that has an execution link table (``docs/reproducibility.md`` lists them);
* :func:`build_graph` (pure): the gathered facts -> nodes and edges (outputs of one table beyond
  ``group_over`` per execution are drawn as one node; the library's own metadata files are left out);
* :func:`to_dot`, :func:`to_mermaid` (pure) and :func:`to_svg` (runs Graphviz ``dot`` when installed), in
  :mod:`deriva_ml._lineage_render` (importable from here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from deriva_ml._lineage_render import FORMATS, LineageError, render, to_dot, to_mermaid, to_svg
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.fields import as_tuple as _tuple

NodeKind = Literal["workflow", "execution", "dataset", "asset", "group"]


# --------------------------------------------------------------------------------------------- facts


@attrs.frozen
class AssetLink:
    table: str
    asset: str
    execution: str
    role: str  # "Input" or "Output"


@attrs.frozen
class DatasetLink:
    dataset: str
    execution: str
    role: str
    version: str | None = None


@attrs.frozen
class LineageFacts:
    """Catalog facts gathered around ``root`` (plain values: rows reduced to what the graph needs).

    ``executions``: RID -> {"Workflow", "Description", "Status", "RCT"}; ``workflows``: RID -> {"Name", "URL"};
    ``assets``: RID -> (table, filename); ``datasets``: RID -> description; ``versions``: dataset RID ->
    [(version, RCT, execution that made it)]; ``nesting``: (parent, child) pairs."""

    root: str
    root_kind: str
    executions: Mapping[str, Mapping[str, Any]]
    workflows: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    asset_links: tuple[AssetLink, ...] = attrs.field(default=(), converter=_tuple)
    assets: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    dataset_links: tuple[DatasetLink, ...] = attrs.field(default=(), converter=_tuple)
    datasets: Mapping[str, str] = attrs.field(factory=dict)
    versions: Mapping[str, Sequence[tuple[str, str, str | None]]] = attrs.field(factory=dict)
    nesting: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_tuple)


@attrs.frozen
class Node:
    id: str
    kind: NodeKind
    label: str
    rid: str | None = None


@attrs.frozen
class Edge:
    src: str
    dst: str
    label: str
    kind: str = "data"  # "data", "ran", "nested", "replay"


@attrs.frozen
class Graph:
    root: str
    nodes: tuple[Node, ...] = attrs.field(converter=_tuple)
    edges: tuple[Edge, ...] = attrs.field(converter=_tuple)

    def node(self, rid: str) -> Node | None:
        return next((n for n in self.nodes if n.rid == rid), None)


# ------------------------------------------------------------------------------------------ builder


def node_id(kind: str, key: str) -> str:
    """An identifier valid in DOT and Mermaid without quoting: ``kind_`` + the key's letters and digits."""
    return f"{kind}_" + re.sub(r"[^A-Za-z0-9]", "_", key)


def _version_key(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("+")[0].split("."))
    except ValueError:
        return (0,)


def version_at(versions: Sequence[tuple[str, str, str | None]], when: str | None) -> str | None:
    """The highest version that existed at ``when`` (an RCT), else the highest overall; None without any."""
    if not versions:
        return None
    before = [v for v, rct, _ in versions if when and rct and str(rct) <= str(when)]
    pool = before or [v for v, _, _ in versions]
    return max(pool, key=_version_key)


def _short(text: str, n: int = 40) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def build_graph(facts: LineageFacts, *, group_over: int = 4, include_metadata: bool = False) -> Graph:
    """Nodes and edges from gathered facts (pure).

    Every gathered execution is a node, with its workflow (``ran`` edge). Assets: ``read`` edges into the
    executions that read them, ``wrote`` edges from those that wrote them; more than ``group_over``
    outputs of one table from one execution become one ``group`` node (``Image x 40``). Datasets: edges
    labelled with the version read (the highest that existed when the execution was created) or written.
    Nesting: ``nested`` edges from parent to child. The library's metadata files (configuration.json,
    uv.lock, environment snapshots, Hydra files) are left out unless ``include_metadata``."""
    from deriva_ml.replay.facts import AssetFact
    from deriva_ml.replay.link import replayed_rid
    from deriva_ml.replay.report import is_library_metadata

    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str, str], Edge] = {}

    def add_node(n: Node) -> str:
        nodes.setdefault(n.id, n)
        return n.id

    def add_edge(e: Edge) -> None:
        edges.setdefault((e.src, e.dst, e.label), e)

    for rid in sorted(facts.executions):
        row = facts.executions[rid]
        status = row.get("Status") or ""
        desc = _short(row.get("Description") or "")
        label = f"Execution {rid}\n{desc}\n({status})" if desc else f"Execution {rid}\n({status})"
        eid = add_node(Node(node_id("exe", rid), "execution", label, rid))
        wf = row.get("Workflow")
        if wf:
            w = facts.workflows.get(wf, {})
            wid = add_node(Node(node_id("wf", wf), "workflow", f"Workflow {wf}\n{_short(w.get('Name') or '')}", wf))
            add_edge(Edge(wid, eid, "ran", "ran"))

    # assets, grouped per (execution, table, role) when there are many
    per: dict[tuple[str, str, str], list[str]] = {}
    for link in facts.asset_links:
        if link.execution not in facts.executions or link.asset not in facts.assets:
            continue
        table, filename = facts.assets[link.asset]
        original = replayed_rid(filename) if table == "Execution_Metadata" else None
        if original is not None and original in facts.executions:  # a replay's link file (deriva-ml replay)
            add_edge(Edge(node_id("exe", original), node_id("exe", link.execution), "replayed by", "replay"))
        if not include_metadata and is_library_metadata(AssetFact(table, link.asset, filename, None)):
            continue
        per.setdefault((link.execution, table, link.role), []).append(link.asset)
    for (exe, table, role), rids in sorted(per.items()):
        rids = sorted(set(rids))
        eid = node_id("exe", exe)
        if len(rids) > group_over:
            gid = add_node(
                Node(
                    node_id("grp", f"{exe}_{table}_{role}"),
                    "group",
                    f"{len(rids)} x {table}\n({role.lower()}s of {exe})",
                )
            )
            add_edge(Edge(eid, gid, "wrote") if role == "Output" else Edge(gid, eid, "read"))
            continue
        for a in rids:
            aid = add_node(Node(node_id("asset", a), "asset", f"{table} {a}\n{_short(facts.assets[a][1])}", a))
            add_edge(Edge(eid, aid, "wrote") if role == "Output" else Edge(aid, eid, "read"))

    wrote: dict[tuple[str, str], set[str]] = {}  # (execution, dataset) -> versions it made (one edge each pair)
    for dl in facts.dataset_links:
        if dl.execution not in facts.executions:
            continue
        d = dl.dataset
        did = add_node(
            Node(node_id("ds", d), "dataset", f"Dataset {d}\n{_short(facts.datasets.get(d, ''))}".rstrip(), d)
        )
        versions = facts.versions.get(d, ())
        if dl.role == "Output":
            made = {v for v, _r, e in versions if e == dl.execution}
            wrote.setdefault((dl.execution, d), set()).update(made | ({dl.version} if dl.version else set()))
        else:
            version = dl.version or version_at(versions, facts.executions[dl.execution].get("RCT"))
            add_edge(Edge(did, node_id("exe", dl.execution), f"read {version}" if version else "read"))
    for d, versions in facts.versions.items():  # versions made by a gathered execution (e.g. add members)
        for v, _rct, e in versions:
            if e and e in facts.executions and node_id("ds", d) in nodes:
                wrote.setdefault((e, d), set()).add(v)
    for (e, d), made in sorted(wrote.items()):
        label = "wrote " + ", ".join(sorted(made, key=_version_key)) if made else "wrote"
        add_edge(Edge(node_id("exe", e), node_id("ds", d), label))

    for parent, child in facts.nesting:
        if parent in facts.executions and child in facts.executions:
            add_edge(Edge(node_id("exe", parent), node_id("exe", child), "nested", "nested"))

    root_id = next((n.id for n in nodes.values() if n.rid == facts.root), "")
    return Graph(
        root_id,
        sorted(nodes.values(), key=lambda n: (n.kind, n.id)),
        sorted(edges.values(), key=lambda e: (e.src, e.dst, e.label)),
    )


# --------------------------------------------------------------------------------------------- shell


def gather_lineage(catalog: Any, rid: str, *, depth: int = 2) -> LineageFacts:
    """Facts around ``rid`` (an execution, a dataset or an asset), ``depth`` execution hops each way.

    Per level: the Execution rows, their Workflow rows, Dataset_Execution and Dataset_Version by
    execution, Execution_Execution both ways, and per asset table with a link table its links by
    execution, its rows, and its links by asset (the other executions that touched them); then
    Dataset_Execution and Dataset_Version by dataset, and the Dataset rows. A constant number of queries
    per level; the adapter splits long RID lists."""
    from deriva_ml.catalog.schema import is_asset
    from deriva_ml.core.definitions import ML_SCHEMA
    from deriva_ml.core.rid import parse_rid
    from deriva_ml.replay.link import link_filename, replayed_rid

    if depth < 0:
        raise ValidationError(f"depth={depth} must be 0 or more")
    rid = parse_rid(rid, "RID")
    schema, table = catalog.resolve_rid(rid)
    model = catalog.model()
    asset_tables = [
        (t.schema, t.name)
        for t in sorted((t for t in model.tables if is_asset(t)), key=lambda t: (t.schema, t.name))
        if model.table(t.schema, f"{t.name}_Execution") is not None
    ]

    executions: dict[str, dict[str, Any]] = {}
    workflows: dict[str, dict[str, Any]] = {}
    asset_links: dict[tuple[str, str, str, str], AssetLink] = {}
    assets: dict[str, tuple[str, str]] = {}
    dataset_links: dict[tuple[str, str, str], DatasetLink] = {}
    datasets: dict[str, str] = {}
    versions: dict[str, dict[str, tuple[str, str, str | None]]] = {}
    nesting: set[tuple[str, str]] = set()

    def role(r: Mapping[str, Any]) -> str:
        return str(r.get("Asset_Role") or "Input")

    # the start: executions of the given RID
    if (schema, table) == (ML_SCHEMA, "Execution"):
        frontier = {str(rid)}
        root_kind = "execution"
    elif (schema, table) == (ML_SCHEMA, "Dataset"):
        root_kind = "dataset"
        links = catalog.query(ML_SCHEMA, "Dataset_Execution", {"Dataset": rid})
        made = catalog.query(ML_SCHEMA, "Dataset_Version", {"Dataset": rid})
        frontier = {str(r["Execution"]) for r in links} | {str(r["Execution"]) for r in made if r.get("Execution")}
    elif (schema, table) in asset_tables:
        root_kind = "asset"
        links = catalog.query(schema, f"{table}_Execution", {table: rid})
        frontier = {str(r["Execution"]) for r in links}
    else:
        raise ValidationError(
            f"{rid} is a row of {schema}:{table}; lineage starts at an Execution, a Dataset or an asset"
        )

    seen: set[str] = set()
    for level in range(depth + 1):
        frontier -= seen
        if not frontier:
            break
        seen |= frontier
        f = sorted(frontier)
        for r in catalog.query(ML_SCHEMA, "Execution", {"RID": f}):
            executions[str(r["RID"])] = {k: r.get(k) for k in ("Workflow", "Description", "Status", "RCT")}
        new_wf = sorted(
            {str(executions[x]["Workflow"]) for x in f if x in executions and executions[x].get("Workflow")}
            - set(workflows)
        )
        if new_wf:
            for r in catalog.query(ML_SCHEMA, "Workflow", {"RID": new_wf}):
                workflows[str(r["RID"])] = {"Name": r.get("Name"), "URL": r.get("URL")}
        for r in catalog.query(ML_SCHEMA, "Execution_Execution", {"Execution": f}):
            nesting.add((str(r["Execution"]), str(r["Nested_Execution"])))
        for r in catalog.query(ML_SCHEMA, "Execution_Execution", {"Nested_Execution": f}):
            nesting.add((str(r["Execution"]), str(r["Nested_Execution"])))
        ds_here: set[str] = set()
        for r in catalog.query(ML_SCHEMA, "Dataset_Execution", {"Execution": f}):
            dataset_links[(str(r["Dataset"]), str(r["Execution"]), role(r))] = DatasetLink(
                str(r["Dataset"]), str(r["Execution"]), role(r)
            )
            ds_here.add(str(r["Dataset"]))
        for r in catalog.query(ML_SCHEMA, "Dataset_Version", {"Execution": f}):
            ds_here.add(str(r["Dataset"]))
        nxt: set[str] = set()
        for s, t in asset_tables:
            links = catalog.query(s, f"{t}_Execution", {"Execution": f})
            arids = sorted({str(r[t]) for r in links if r.get(t)} - set(assets))
            for r in links:
                if r.get(t):
                    asset_links[(t, str(r[t]), str(r["Execution"]), role(r))] = AssetLink(
                        t, str(r[t]), str(r["Execution"]), role(r)
                    )
            if not arids:
                continue
            for r in catalog.query(s, t, {"RID": arids}, columns=["RID", "Filename"]):
                assets[str(r["RID"])] = (t, str(r.get("Filename") or ""))
                original = replayed_rid(assets[str(r["RID"])][1]) if t == "Execution_Metadata" else None
                if original is not None and level < depth:  # this execution replays another one
                    nxt.add(original)
            if level < depth:  # the other executions that read or wrote these assets
                for r in catalog.query(s, f"{t}_Execution", {t: arids}):
                    if not _is_metadata_link(t, assets.get(str(r[t]))):
                        nxt.add(str(r["Execution"]))
        if level < depth and (ML_SCHEMA, "Execution_Metadata") in asset_tables:  # replays of these executions
            names = [link_filename(x) for x in f]
            found = catalog.query(ML_SCHEMA, "Execution_Metadata", {"Filename": names}, columns=["RID", "Filename"])
            if found:
                for r in catalog.query(
                    ML_SCHEMA, "Execution_Metadata_Execution", {"Execution_Metadata": [r["RID"] for r in found]}
                ):
                    nxt.add(str(r["Execution"]))
        new_ds = sorted(ds_here - set(datasets))
        if new_ds:
            for r in catalog.query(ML_SCHEMA, "Dataset", {"RID": new_ds}, columns=["RID", "Description"]):
                datasets[str(r["RID"])] = str(r.get("Description") or "")
            for r in catalog.query(ML_SCHEMA, "Dataset_Version", {"Dataset": new_ds}):
                versions.setdefault(str(r["Dataset"]), {})[str(r["Version"])] = (
                    str(r["Version"]),
                    str(r.get("RCT") or ""),
                    str(r["Execution"]) if r.get("Execution") else None,
                )
                if level < depth and r.get("Execution"):
                    nxt.add(str(r["Execution"]))
            if level < depth:
                for r in catalog.query(ML_SCHEMA, "Dataset_Execution", {"Dataset": new_ds}):
                    nxt.add(str(r["Execution"]))
        if level < depth:
            nxt |= {x for pair in nesting for x in pair}
        frontier = nxt
    root = str(rid)
    return LineageFacts(
        root=root,
        root_kind=root_kind,
        executions=executions,
        workflows=workflows,
        asset_links=tuple(asset_links.values()),
        assets=assets,
        dataset_links=tuple(dataset_links.values()),
        datasets=datasets,
        versions={d: sorted(v.values()) for d, v in versions.items()},
        nesting=tuple(sorted(nesting)),
    )


def _is_metadata_link(table: str, asset: tuple[str, str] | None) -> bool:
    """Library metadata files do not connect executions (two runs never share a configuration.json by
    intent, but identical files are one asset row)."""
    from deriva_ml.replay.facts import AssetFact
    from deriva_ml.replay.report import is_library_metadata

    return asset is not None and is_library_metadata(AssetFact(table, "", asset[1], None))


def lineage(catalog: Any, rid: str, *, depth: int = 2, group_over: int = 4, include_metadata: bool = False) -> Graph:
    """Gather and build: the provenance graph around ``rid``."""
    return build_graph(
        gather_lineage(catalog, rid, depth=depth), group_over=group_over, include_metadata=include_metadata
    )


__all__ = [
    "FORMATS",
    "AssetLink",
    "DatasetLink",
    "Edge",
    "Graph",
    "LineageError",
    "LineageFacts",
    "Node",
    "build_graph",
    "gather_lineage",
    "lineage",
    "node_id",
    "render",
    "to_dot",
    "to_mermaid",
    "to_svg",
    "version_at",
]
