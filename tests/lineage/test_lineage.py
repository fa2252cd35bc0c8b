"""``deriva-ml lineage``: the pure graph builder and renderers (DOT parsed with pydot, Mermaid, SVG when
Graphviz is installed), and the gathering on every backend with a constant number of requests per level."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydot
import pytest
from live_support import http_log, unique_token

from deriva_ml import DerivaML
from deriva_ml.asset.aux_classes import AssetSpec
from deriva_ml.core.errors import ValidationError
from deriva_ml.dataset.aux_classes import DatasetSpec
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.lineage import (
    AssetLink,
    DatasetLink,
    LineageFacts,
    build_graph,
    gather_lineage,
    lineage,
    node_id,
    render,
    to_dot,
    to_mermaid,
    version_at,
)
from deriva_ml.testing import add_domain_schema

# ----------------------------------------------------------------------------------------- pure parts


def _facts(n_images: int = 3) -> LineageFacts:
    exe = {
        "1-G": {"Workflow": "1-WG", "Description": "Generate images", "Status": "Completed", "RCT": "2026-01-01"},
        "1-T": {"Workflow": "1-WT", "Description": 'Train "v1"', "Status": "Completed", "RCT": "2026-02-01"},
        "1-R": {"Workflow": "1-WT", "Description": "replay", "Status": "Completed", "RCT": "2026-03-01"},
        "1-P": {"Workflow": "1-WT", "Description": "sweep", "Status": "Completed", "RCT": "2026-02-01"},
    }
    images = [f"1-I{i}" for i in range(n_images)]
    return LineageFacts(
        root="1-T",
        root_kind="execution",
        executions=exe,
        workflows={"1-WG": {"Name": "generate"}, "1-WT": {"Name": "train"}},
        asset_links=[
            *(AssetLink("Image", i, "1-G", "Output") for i in images),
            AssetLink("Model", "1-M", "1-T", "Output"),
            AssetLink("Execution_Metadata", "1-C", "1-T", "Output"),
            AssetLink("Model", "1-M", "1-R", "Output"),
            AssetLink("Execution_Metadata", "1-L", "1-R", "Output"),
        ],
        assets={
            **{i: ("Image", f"{i}.pgm") for i in images},
            "1-M": ("Model", "model.json"),
            "1-C": ("Execution_Metadata", "configuration.json"),
            "1-L": ("Execution_Metadata", "replay-of-1-T.json"),
        },
        dataset_links=[DatasetLink("1-D", "1-G", "Output"), DatasetLink("1-D", "1-T", "Input")],
        datasets={"1-D": "demo images"},
        versions={
            "1-D": [("0.1.0", "2026-01-01", "1-G"), ("0.2.0", "2026-01-15", "1-G"), ("0.3.0", "2026-05-01", None)]
        },
        nesting=[("1-P", "1-T")],
    )


def _edges(graph: Any) -> set[tuple[str, str, str]]:
    return {(e.src, e.dst, e.label) for e in graph.edges}


def test_the_graph_links_workflows_executions_outputs_datasets_nesting_and_replays() -> None:
    g = build_graph(_facts())
    x = {r: node_id("exe", r) for r in ("1-G", "1-T", "1-R", "1-P")}
    assert g.root == x["1-T"]
    assert {
        (node_id("wf", "1-WT"), x["1-T"], "ran"),
        (node_id("wf", "1-WG"), x["1-G"], "ran"),
        (x["1-G"], node_id("ds", "1-D"), "wrote 0.1.0, 0.2.0"),  # one edge, the versions it made
        (node_id("ds", "1-D"), x["1-T"], "read 0.2.0"),  # the version that existed when 1-T was created
        (x["1-T"], node_id("asset", "1-M"), "wrote"),
        (x["1-R"], node_id("asset", "1-M"), "wrote"),
        (x["1-P"], x["1-T"], "nested"),
        (x["1-T"], x["1-R"], "replayed by"),
    } <= _edges(g)
    names = {n.label for n in g.nodes}
    assert not any("configuration.json" in n or "replay-of" in n for n in names)  # library metadata left out
    assert len([n for n in g.nodes if n.kind == "asset" and n.rid and n.rid.startswith("1-I")]) == 3


def test_many_outputs_of_one_table_are_one_node_and_metadata_can_be_included() -> None:
    g = build_graph(_facts(40), group_over=4)
    groups = [n for n in g.nodes if n.kind == "group"]
    assert len(groups) == 1 and groups[0].label.startswith("40 x Image")
    assert (node_id("exe", "1-G"), groups[0].id, "wrote") in _edges(g)
    full = build_graph(_facts(), include_metadata=True)
    assert any("configuration.json" in n.label for n in full.nodes)


@pytest.mark.parametrize(
    ("when", "expected"), [("2026-01-10", "0.1.0"), ("2026-03-01", "0.2.0"), ("2025-01-01", "0.10.0"), (None, "0.10.0")]
)
def test_version_at(when: str | None, expected: str) -> None:
    versions = [("0.1.0", "2026-01-01", None), ("0.2.0", "2026-02-01", None), ("0.10.0", "2026-06-01", None)]
    assert version_at(versions, when) == expected


def test_dot_parses_and_holds_every_node_and_edge() -> None:
    g = build_graph(_facts())
    (parsed,) = pydot.graph_from_dot_data(to_dot(g))
    nodes = {n.get_name(): n for n in parsed.get_nodes() if n.get_name() not in ("node", "edge", "graph")}
    assert set(nodes) == {n.id for n in g.nodes}
    edges = {(e.get_source(), e.get_destination(), e.get("label").strip('"')) for e in parsed.get_edges()}
    assert edges == _edges(g)
    train = nodes[node_id("exe", "1-T")]
    assert train.get("label") == '"Execution 1-T\\nTrain \\"v1\\"\\n(Completed)"'  # quotes escaped
    assert train.get("penwidth") == "2.5"  # the start is drawn bold


def test_mermaid_flowchart_has_a_line_per_node_and_edge() -> None:
    g = build_graph(_facts())
    text = to_mermaid(g)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert len(lines) == 1 + len(g.nodes) + len(g.edges) + 1  # + the style line of the start
    assert f'  {node_id("ds", "1-D")} -->|"read 0.2.0"| {node_id("exe", "1-T")}' in lines
    assert "#quot;v1#quot;" in text and '"v1"' not in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_svg_is_drawn_by_graphviz() -> None:
    import html

    svg = html.unescape(render(build_graph(_facts()), "svg").decode("utf-8"))  # Graphviz writes - as &#45;
    assert "<svg" in svg and "Execution 1-T" in svg and "read 0.2.0" in svg


def test_unknown_format_names_the_valid_ones() -> None:
    with pytest.raises(ValidationError, match="dot, svg, mermaid"):
        render(build_graph(_facts()), "png")


# ------------------------------------------------------------------------------------- on a catalog


def _scenario(ml: DerivaML, token: str, n: int) -> dict[str, str]:
    """generate (n images, a dataset) -> train (reads the dataset, writes a model) -> evaluate (reads the
    model); train is nested in a sweep parent."""
    wf = ml.create_workflow(name="pipeline", workflow_type="Training", url=f"https://x/{token}/p.py", checksum="p")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="generate")) as gen:
        for i in range(n):
            gen.asset_file_path("Image", f"img{i}.png").write_bytes(f"{token} image {i}".encode())
    images = [a.rid for a in gen.upload_execution_outputs()[f"{ml.domain_schema}/Image"]]
    ds = gen.create_dataset(description="images", dataset_types=["Training"])
    ds.add_dataset_members(images)
    parent = ml.create_execution(ExecutionConfiguration(workflow=wf, description="sweep"))
    with ml.create_execution(
        ExecutionConfiguration(workflow=wf, description="train", datasets=[DatasetSpec(rid=ds.dataset_rid)])
    ) as train:
        for i in range(n):
            train.asset_file_path("Model", f"m{i}.bin").write_bytes(f"{token} model {i}".encode())
    models = [a.rid for a in train.upload_execution_outputs()[f"{ml.domain_schema}/Model"]]
    parent.add_nested_execution(train, sequence=0)
    cfg = ExecutionConfiguration(workflow=wf, description="evaluate", assets=[AssetSpec(rid=models[0])])
    with ml.create_execution(cfg) as ev:
        ev.asset_file_path("Execution_Asset", "scores.json").write_text(token)
    ev.upload_execution_outputs()
    return {
        "gen": str(gen.execution_rid),
        "train": str(train.execution_rid),
        "eval": str(ev.execution_rid),
        "parent": str(parent.execution_rid),
        "ds": str(ds.dataset_rid),
        "model": str(models[0]),
    }


def test_lineage_on_a_catalog_follows_outputs_inputs_datasets_and_nesting(ml: DerivaML) -> None:
    add_domain_schema(ml)
    s = _scenario(ml, unique_token(), 2)
    g = lineage(ml.catalog, s["train"], depth=1)
    x = {k: node_id("exe", v) for k, v in s.items() if k in ("gen", "train", "eval", "parent")}
    assert {n.rid for n in g.nodes if n.kind == "execution"} == {s["gen"], s["train"], s["eval"], s["parent"]}
    edges = _edges(g)
    assert (node_id("asset", s["model"]), x["eval"], "read") in edges
    assert (x["train"], node_id("asset", s["model"]), "wrote") in edges
    assert (x["parent"], x["train"], "nested") in edges
    read = [e for e in g.edges if e.src == node_id("ds", s["ds"]) and e.dst == x["train"]]
    assert len(read) == 1 and read[0].label.startswith("read ")
    assert any(e.src == x["gen"] and e.dst == node_id("ds", s["ds"]) for e in g.edges)

    alone = lineage(ml.catalog, s["train"], depth=0)
    assert {n.rid for n in alone.nodes if n.kind == "execution"} == {s["train"]}
    from_dataset = lineage(ml.catalog, s["ds"], depth=0)
    assert from_dataset.root == node_id("ds", s["ds"])
    assert {n.rid for n in from_dataset.nodes if n.kind == "execution"} == {s["gen"], s["train"]}
    from_asset = lineage(ml.catalog, s["model"], depth=0)
    assert {n.rid for n in from_asset.nodes if n.kind == "execution"} == {s["train"], s["eval"]}
    with pytest.raises(ValidationError, match="lineage starts at an Execution, a Dataset or an asset"):
        gather_lineage(ml.catalog, ml.find_workflows()[0].rid)


def test_a_level_costs_the_same_requests_whatever_its_size(remote_backend: Callable[[], DerivaML]) -> None:
    ml = remote_backend()
    add_domain_schema(ml)
    small = _scenario(ml, unique_token(), 2)
    large = _scenario(ml, unique_token(), 9)
    ml.catalog.model()  # the model is read once per handle, not per level
    counts = []
    for s in (small, large):
        per_depth = []
        for depth in (0, 1, 2):
            with http_log() as log:
                g = lineage(ml.catalog, s["train"], depth=depth)
            per_depth.append(log.count(service="ermrest"))
        counts.append(per_depth)
        assert len([n for n in g.nodes if n.kind == "execution"]) == 4
    print("lineage ermrest requests at depth 0, 1, 2:", counts)
    assert counts[0] == counts[1], counts  # 2 or 9 images and models: the same requests
    assert counts[0][0] <= 25, counts  # one level: a bounded handful


def test_cli_writes_each_format(ml: DerivaML, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if ml.host_name != "local":
        pytest.skip("the CLI test opens the embedded catalog by name")
    from deriva_ml.cli import main

    add_domain_schema(ml)
    s = _scenario(ml, unique_token(), 2)
    home = str(ml.home)
    assert main(["lineage", s["train"], "--catalog", ml.catalog_id, "--home", home, "--depth", "1"]) == 0
    assert "digraph lineage {" in capsys.readouterr().out  # stdout by default
    dot = tmp_path / "g.dot"
    assert main(["lineage", s["train"], "--catalog", ml.catalog_id, "--home", home, "-o", str(dot)]) == 0
    (parsed,) = pydot.graph_from_dot_data(dot.read_text())
    assert node_id("exe", s["eval"]) in {n.get_name() for n in parsed.get_nodes()}
    out = tmp_path / "g.mmd"
    args = ["lineage", s["train"], "--catalog", ml.catalog_id, "--home", home, "--format", "mermaid", "-o", str(out)]
    assert main(args) == 0
    assert out.read_text().startswith("flowchart LR")
    assert main(["lineage", s["train"], "--catalog", ml.catalog_id, "--home", home, "--depth", "-1"]) == 2
