"""Reading the lineage graph: subgraph walks and their node-type filter, diffs of two versions' inputs,
the merged reproduction of a version, and the subgraph rendered as JSON or Graphviz DOT."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from modelreg.errors import InvalidArgument
from modelreg.lineage.domain.values import (
    Edge,
    LineageRecord,
    Node,
    NodeType,
    graph_of,
    node_type_of,
    version_node_id,
)


class Direction(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    BIDIRECTIONAL = "bidirectional"


MAX_HOPS = 20
DEFAULT_HOPS = 3
MAX_START_NODES = 100
MAX_DOWNSTREAM_HOPS = 64


@dataclass(frozen=True, slots=True)
class SubgraphQuery:
    start_nodes: tuple[str, ...]
    direction: Direction = Direction.UPSTREAM
    max_hops: int = DEFAULT_HOPS
    node_types: frozenset[NodeType] = frozenset()

    def normalized(self) -> list[object]:
        return [
            sorted(set(self.start_nodes)),
            self.direction.value,
            self.max_hops,
            sorted(t.value for t in self.node_types),
        ]


def check_subgraph_query(query: SubgraphQuery, prefix: str = "query") -> SubgraphQuery:
    if not query.start_nodes:
        raise InvalidArgument.of(f"{prefix}.start_nodes", "is required")
    if len(query.start_nodes) > MAX_START_NODES:
        raise InvalidArgument.of(f"{prefix}.start_nodes", f"at most {MAX_START_NODES} start nodes")
    for i, node in enumerate(query.start_nodes):
        if node_type_of(node) is None or len(node) > 4096:
            raise InvalidArgument.of(
                f"{prefix}.start_nodes[{i}]", f"{node[:100]!r} is not a node id, e.g. dataset:<uri>@<digest>"
            )
    if not 1 <= query.max_hops <= MAX_HOPS:
        raise InvalidArgument.of(f"{prefix}.max_hops", f"must be between 1 and {MAX_HOPS}")
    return query


@dataclass(frozen=True, slots=True)
class Subgraph:
    nodes: dict[str, int]
    """Node id -> hops from the nearest start node."""
    edges: dict[Edge, str]
    """Each edge followed by the walk -> the id of a (the smallest) current record stating it."""


def select(graph: Subgraph, node_types: frozenset[NodeType]) -> Subgraph:
    """Applies the node-type filter after the walk: the walk passes through every node."""
    if not node_types:
        return graph
    kept = {n: d for n, d in graph.nodes.items() if node_type_of(n) in node_types}
    return Subgraph(kept, {e: r for e, r in graph.edges.items() if e.source in kept and e.target in kept})


def readable_part(
    graph: Subgraph, start_nodes: Sequence[str], hidden_version: Callable[[str], bool]
) -> Subgraph:
    """The walk without the versions the caller may not read (`hidden_version(node id)`), and
    without what it reached only through them: what stays is connected to a start node by
    readable nodes."""
    hidden = {n for n in graph.nodes if node_type_of(n) is NodeType.MODEL_VERSION and hidden_version(n)}
    if not hidden:
        return graph
    edges = {e: r for e, r in graph.edges.items() if e.source not in hidden and e.target not in hidden}
    neighbours: dict[str, set[str]] = {}
    for edge in edges:
        neighbours.setdefault(edge.source, set()).add(edge.target)
        neighbours.setdefault(edge.target, set()).add(edge.source)
    reached = {n for n in start_nodes if n in graph.nodes and n not in hidden}
    frontier = list(reached)
    while frontier:
        for other in neighbours.get(frontier.pop(), ()):
            if other not in reached:
                reached.add(other)
                frontier.append(other)
    return Subgraph(
        {n: d for n, d in graph.nodes.items() if n in reached},
        {e: r for e, r in edges.items() if e.source in reached and e.target in reached},
    )


# -- diff and reproduction ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueChange:
    key: str
    a: str
    b: str


@dataclass(frozen=True, slots=True)
class TypeDiff:
    type: NodeType
    only_in_a: tuple[Node, ...]
    only_in_b: tuple[Node, ...]
    common: tuple[str, ...]
    changes: tuple[ValueChange, ...] = ()

    @property
    def identical(self) -> bool:
        return not (self.only_in_a or self.only_in_b or self.changes)


def _inputs(records: Sequence[LineageRecord]) -> dict[str, Node]:
    """The nodes the records state, except the version itself (its name always differs)."""
    found: dict[str, Node] = {}
    for record in records:
        own = version_node_id(record.model_version)
        nodes, _ = graph_of(record)
        for node in nodes:
            if node.id != own:
                found.setdefault(node.id, node)
    return found


def _attribute_changes(a: Sequence[Node], b: Sequence[Node]) -> tuple[ValueChange, ...]:
    # Only meaningful when each side has exactly one node of the type (one
    # config, one environment): then a changed value is a change, not a swap.
    if len(a) != 1 or len(b) != 1:
        return ()
    left, right = dict(a[0].attributes), dict(b[0].attributes)
    left.pop("digest", None)
    right.pop("digest", None)
    return tuple(
        ValueChange(k, left.get(k, ""), right.get(k, ""))
        for k in sorted(left.keys() | right.keys())
        if left.get(k) != right.get(k)
    )


def diff(a: Sequence[LineageRecord], b: Sequence[LineageRecord]) -> list[TypeDiff]:
    """Per node type, what only A used, what only B used, and changed config/environment values."""
    nodes_a, nodes_b = _inputs(a), _inputs(b)
    result = []
    for kind in NodeType:
        ids_a = {k for k, n in nodes_a.items() if n.type is kind}
        ids_b = {k for k, n in nodes_b.items() if n.type is kind}
        if not ids_a and not ids_b:
            continue
        only_a = tuple(nodes_a[k] for k in sorted(ids_a - ids_b))
        only_b = tuple(nodes_b[k] for k in sorted(ids_b - ids_a))
        changes = (
            _attribute_changes(only_a, only_b) if kind in (NodeType.CONFIG, NodeType.ENVIRONMENT) else ()
        )
        result.append(TypeDiff(kind, only_a, only_b, tuple(sorted(ids_a & ids_b)), changes))
    return result


Part = TypeVar("Part")
"""A part of a record that is listed (datasets, code, parents...)."""


@dataclass(frozen=True, slots=True)
class Reproduction:
    model_version: str
    record_ids: tuple[str, ...]
    record: LineageRecord


def _union(items: Iterable[Part]) -> tuple[Part, ...]:
    return tuple(dict.fromkeys(items))


def reproduction(model_version: str, records: Sequence[tuple[str, LineageRecord]]) -> Reproduction:
    """Merges the current records of a version, oldest first: lists are unioned
    (first mention wins), single-valued parts come from the latest record that has them."""

    recs = [r for _, r in records]
    merged = LineageRecord(
        model_version=model_version,
        datasets=_union(d for r in recs for d in r.datasets),
        preprocessing_steps=_union(p for r in recs for p in r.preprocessing_steps),
        code=_union(c for r in recs for c in r.code),
        config=next((r.config for r in reversed(recs) if r.config is not None), None),
        environment=next((r.environment for r in reversed(recs) if r.environment is not None), None),
        training_run=next((r.training_run for r in reversed(recs) if r.training_run is not None), None),
        parents=_union(p for r in recs for p in r.parents),
        evaluations=_union(e for r in recs for e in r.evaluations),
    )
    return Reproduction(model_version, tuple(i for i, _ in records), merged)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the read model holds it, with its history links."""

    id: str
    record: LineageRecord
    create_time: datetime
    creator: str
    supersedes: str | None = None
    superseded_by: str | None = None
    reason: str = ""


# -- export -------------------------------------------------------------------

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
