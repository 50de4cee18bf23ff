"""The lineage drawing: inputs left of what was made from them, every node a link where it
has a page, and text escaped (labels come from what pipelines recorded)."""

from __future__ import annotations

import re

from modelreg.gateway.ui.graph import GraphEdge, GraphNode, render_svg


def x_of(svg: str, node_id: str) -> int:
    match = re.search(rf'data-node-id="{re.escape(node_id)}"[^>]*><rect x="(\d+)"', svg)
    assert match, node_id
    return int(match[1])


def test_inputs_are_drawn_left_of_what_was_made_from_them() -> None:
    nodes = [
        GraphNode("v:2", "model_version", "churn v2", href="/models/ns/churn/versions/2", current=True),
        GraphNode("v:1", "model_version", "churn v1", href="/models/ns/churn/versions/1"),
        GraphNode("d:1", "dataset", "s3://data/train.parquet"),
        GraphNode("r:1", "training_run", "airflow/run-7"),
    ]
    edges = [
        GraphEdge("d:1", "r:1", "input"),
        GraphEdge("r:1", "v:2", "produced"),
        GraphEdge("v:1", "v:2", "parent"),
    ]
    svg = render_svg(nodes, edges)
    assert x_of(svg, "d:1") < x_of(svg, "r:1") < x_of(svg, "v:2")
    assert x_of(svg, "v:1") < x_of(svg, "v:2")
    assert '<a href="/models/ns/churn/versions/1" class="node" data-node-id="v:1"' in svg
    assert svg.count('class="edge"') == 3
    assert 'stroke="#f4a261"' in svg  # the current version stands out


def test_recorded_text_is_escaped_and_long_labels_shortened() -> None:
    evil = '<script>alert("x")</script>' + "y" * 80
    svg = render_svg([GraphNode("d:<1>", "dataset", evil, detail='a="b"')], [])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "…" in svg
    assert 'data-node-id="d:&lt;1&gt;"' in svg


def test_edges_to_unknown_nodes_and_cycles_do_not_break_the_drawing() -> None:
    nodes = [GraphNode("a", "dataset", "a"), GraphNode("b", "code", "b")]
    svg = render_svg(nodes, [GraphEdge("a", "b", "x"), GraphEdge("b", "a", "y"), GraphEdge("a", "zzz", "z")])
    assert svg.count('class="node"') == 2
    assert render_svg([], []) == ""


def test_merged_subgraph_keeps_each_node_once_and_only_the_newest_evaluations() -> None:
    from modelreg.gateway.ui.pages import EVALUATION_NODES_SHOWN, merge_subgraphs
    from modelreg.gen.lineage.v1 import lineage_pb2

    version = lineage_pb2.Node(id="model_version:v", type=lineage_pb2.NODE_TYPE_MODEL_VERSION)
    dataset = lineage_pb2.Node(id="dataset:d", type=lineage_pb2.NODE_TYPE_DATASET)
    upstream = lineage_pb2.GetLineageSubgraphResponse(
        nodes=[dataset, version], edges=[lineage_pb2.Edge(source="dataset:d", target="model_version:v")]
    )
    downstream = lineage_pb2.GetLineageSubgraphResponse(nodes=[version])
    for day in range(1, EVALUATION_NODES_SHOWN + 3):
        node_id = f"evaluation:{day}"
        downstream.nodes.append(
            lineage_pb2.Node(
                id=node_id,
                type=lineage_pb2.NODE_TYPE_EVALUATION,
                attributes={"evaluate_time": f"2026-11-{day:02d}T00:00:00+00:00"},
            )
        )
        downstream.edges.append(lineage_pb2.Edge(source="model_version:v", target=node_id))

    merged = merge_subgraphs(upstream, downstream)

    ids = [node.id for node in merged.nodes]
    assert len(ids) == len(set(ids)) == 2 + EVALUATION_NODES_SHOWN
    assert "evaluation:1" not in ids and "evaluation:2" not in ids  # the oldest two are left out
    assert f"evaluation:{EVALUATION_NODES_SHOWN + 2}" in ids
    assert all(e.target in ids and e.source in ids for e in merged.edges)
    assert len(merged.edges) == 1 + EVALUATION_NODES_SHOWN
