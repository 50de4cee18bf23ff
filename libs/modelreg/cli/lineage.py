"""`modelreg lineage ...`: record and look at what versions were made from."""

from __future__ import annotations

from pathlib import Path

import typer
from google.protobuf.json_format import Parse, ParseError
from rich.tree import Tree

from modelreg.cli.output import Output, OutputOption, as_dict, console, run
from modelreg.gen.lineage.v1 import lineage_pb2

app = typer.Typer(help="Lineage: datasets, code, config, runs and parents of versions.", no_args_is_help=True)


@app.command()
def record(
    uri: str = typer.Argument(..., help="ns/model/3 or ns/model@v1.2.0"),
    file: Path = typer.Option(..., "--file", "-f", exists=True, help="a LineageRecord as JSON"),
    output: Output = OutputOption,
) -> None:
    """Record lineage for a version from a JSON file (the LineageRecord message)."""
    try:
        message = Parse(file.read_text(), lineage_pb2.LineageRecord())
    except ParseError as error:
        raise typer.BadParameter(str(error), param_hint="--file") from None
    recorded = run(lambda r: r.record_lineage(uri, message))
    if output is Output.json:
        typer.echo(__import__("json").dumps(as_dict(recorded), indent=2))
    else:
        console.print(f"recorded {recorded.name}")


@app.command()
def show(
    uri: str = typer.Argument(..., help="ns/model/3, ns/model@production, ..."),
    direction: str = typer.Option("up", help="up (what it was made from), down (what used it), both"),
    hops: int = typer.Option(3, help="how far to walk"),
    output: Output = OutputOption,
) -> None:
    """Draw the lineage around a version as a tree."""
    if direction not in ("up", "down", "both"):
        raise typer.BadParameter("must be up, down or both", param_hint="--direction")
    graph = run(lambda r: r.lineage_subgraph(uri, direction=direction, max_hops=hops))
    if output is Output.json:
        typer.echo(__import__("json").dumps(as_dict(graph), indent=2))
        return
    console.print(render_tree(graph, direction))


def render_tree(graph: lineage_pb2.GetLineageSubgraphResponse, direction: str) -> Tree:
    nodes = {n.id: n for n in graph.nodes}
    starts = [n.id for n in graph.nodes if n.type == lineage_pb2.NODE_TYPE_MODEL_VERSION]
    # Upstream trees hang inputs under the version; downstream ones hang what used it.
    children: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.edges:
        parent, child = (edge.target, edge.source) if direction != "down" else (edge.source, edge.target)
        children.setdefault(parent, []).append((child, edge.relation))
    has_parent = {child for kids in children.values() for child, _ in kids}
    roots = [s for s in starts if s not in has_parent] or starts[:1] or list(nodes)[:1]
    tree = Tree("lineage")

    def label(node_id: str, relation: str = "") -> str:
        node = nodes.get(node_id)
        kind = lineage_pb2.NodeType.Name(node.type).removeprefix("NODE_TYPE_").lower() if node else "?"
        via = f"[dim]{relation}[/] " if relation else ""
        return f"{via}[bold]{kind}[/] {node_id.split(':', 1)[-1]}"

    def grow(branch: Tree, node_id: str, seen: frozenset[str]) -> None:
        for child, relation in sorted(children.get(node_id, [])):
            sub = branch.add(label(child, relation))
            if child not in seen:
                grow(sub, child, seen | {child})

    for root in roots:
        grow(tree.add(label(root)), root, frozenset({root}))
    return tree
