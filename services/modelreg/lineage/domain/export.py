"""Rendering a subgraph as JSON or Graphviz DOT: pure functions of nodes and edges."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from modelreg.lineage.domain.model import Node, NodeType

EdgeKey = tuple[str, str, str]

_SHAPES = {
    NodeType.DATASET: "cylinder",
    NodeType.PREPROCESSING: "parallelogram",
    NodeType.CODE: "note",
    NodeType.CONFIG: "tab",
    NodeType.ENVIRONMENT: "component",
    NodeType.TRAINING_RUN: "cds",
    NodeType.MODEL_VERSION: "box3d",
    NodeType.EVALUATION: "hexagon",
}


def to_json(nodes: Sequence[Node], edges: Mapping[EdgeKey, str]) -> str:
    document = {
        "nodes": [{"id": n.id, "type": n.type.value, "attributes": dict(n.attributes)} for n in nodes],
        "edges": [
            {"source": s, "target": t, "relation": r, "record": record}
            for (s, t, r), record in sorted(edges.items())
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True)


def _quote(text: str) -> str:
    # DOT double-quoted strings: escape backslash and quote; newlines would end the statement.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _label(node: Node) -> str:
    attributes = dict(node.attributes)
    title = {
        NodeType.DATASET: attributes.get("uri", ""),
        NodeType.CODE: f"{attributes.get('repo', '')}@{attributes.get('commit', '')[:12]}",
        NodeType.MODEL_VERSION: attributes.get("name", ""),
    }.get(node.type) or node.id.partition(":")[2][:60]
    return f"{node.type.value}\n{title}"


def to_dot(nodes: Sequence[Node], edges: Mapping[EdgeKey, str]) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [fontsize=10];"]
    for node in nodes:
        lines.append(f"  {_quote(node.id)} [label={_quote(_label(node))}, shape={_SHAPES[node.type]}];")
    for source, target, relation in sorted(edges):
        lines.append(f"  {_quote(source)} -> {_quote(target)} [label={_quote(relation)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
