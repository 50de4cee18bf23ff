"""The lineage graph as an SVG drawing: a layered layout (inputs on the left, what was made
from them on the right), each node a link, computed on the server so the page needs no script."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

NODE_WIDTH = 250
NODE_HEIGHT = 46
COLUMN_GAP = 70
ROW_GAP = 18
MARGIN = 16
MAX_LABEL = 32

KIND_COLOURS = {
    "dataset": "#1f6f8b",
    "preprocessing": "#6a4c93",
    "code": "#2d6a4f",
    "config": "#8a5a00",
    "environment": "#5c677d",
    "training_run": "#9d0208",
    "model_version": "#14213d",
    "evaluation": "#7a3e00",
}
DEFAULT_COLOUR = "#3d405b"


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str
    kind: str
    """e.g. `dataset`, `model_version`: picks the colour and the caption."""
    label: str
    detail: str = ""
    href: str = ""
    current: bool = False
    """The node the page is about: drawn emphasised."""


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    relation: str


def _layers(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> dict[str, int]:
    """Longest path from a source: every edge points one column or more to the right.
    Cycles cannot occur in lineage; if one ever did, the walk stops at len(nodes) columns."""
    known = {node.id for node in nodes}
    incoming: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        if edge.source in known and edge.target in known and edge.source != edge.target:
            incoming[edge.target].append(edge.source)
    layer: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str]) -> int:
        if node in layer:
            return layer[node]
        parents = [p for p in incoming[node] if p not in seen]
        value = 0 if not parents else 1 + max(depth(p, seen | {node}) for p in parents)
        layer[node] = min(value, len(nodes))
        return layer[node]

    for node in nodes:
        depth(node.id, frozenset())
    return layer


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_svg(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], *, title: str = "Lineage") -> str:
    if not nodes:
        return ""
    layer = _layers(nodes, edges)
    columns: dict[int, list[GraphNode]] = defaultdict(list)
    for node in sorted(nodes, key=lambda n: (n.kind, n.label, n.id)):
        columns[layer[node.id]].append(node)
    position: dict[str, tuple[int, int]] = {}
    for column, members in columns.items():
        for row, node in enumerate(members):
            x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
            y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
            position[node.id] = (x, y)
    width = MARGIN * 2 + (max(columns) + 1) * NODE_WIDTH + max(columns) * COLUMN_GAP
    height = MARGIN * 2 + max(len(m) for m in columns.values()) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/>'
        "</marker></defs>",
    ]
    for edge in edges:
        if edge.source not in position or edge.target not in position:
            continue
        sx, sy = position[edge.source]
        tx, ty = position[edge.target]
        x1, y1 = sx + NODE_WIDTH, sy + NODE_HEIGHT // 2
        x2, y2 = tx, ty + NODE_HEIGHT // 2
        bend = max(20, (x2 - x1) // 2)
        parts.append(
            f'<path class="edge" d="M {x1} {y1} C {x1 + bend} {y1}, {x2 - bend} {y2}, {x2} {y2}" '
            f'fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#arrow)">'
            f"<title>{escape(edge.relation)}</title></path>"
        )
    for node in nodes:
        x, y = position[node.id]
        colour = KIND_COLOURS.get(node.kind, DEFAULT_COLOUR)
        stroke = ' stroke="#f4a261" stroke-width="4"' if node.current else ""
        caption = node.kind.replace("_", " ")
        body = (
            f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
            f'fill="{colour}"{stroke}/>'
            f'<text x="{x + 10}" y="{y + 17}" fill="#fff" font-size="11" opacity="0.85">'
            f"{escape(caption)}</text>"
            f'<text x="{x + 10}" y="{y + 35}" fill="#fff" font-size="13" font-weight="600">'
            f"{escape(_short(node.label))}</text>"
            f"<title>{escape(node.label)}{(' — ' + escape(node.detail)) if node.detail else ''}</title>"
        )
        data = f'class="node" data-node-id="{escape(node.id)}" data-kind="{escape(node.kind)}"'
        if node.href:
            parts.append(f'<a href="{escape(node.href)}" {data}>{body}</a>')
        else:
            parts.append(f"<g {data}>{body}</g>")
    parts.append("</svg>")
    return "".join(parts)
