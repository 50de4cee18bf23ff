"""`modelreg lineage ...`: record and look at what versions were made from."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from google.protobuf.json_format import Parse, ParseError
from rich.tree import Tree

from modelreg.cli.output import (
    Output,
    OutputOption,
    as_dict,
    console,
    echo_json,
    emit,
    emit_fields,
    output_option,
    run,
)
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
    recorded = run(lambda r: r.lineage.record_lineage(uri, message))
    if output is Output.json:
        typer.echo(json.dumps(as_dict(recorded), indent=2))
    else:
        console.print(f"recorded {recorded.name}")


@app.command()
def records(
    uri: str = typer.Argument(..., help="ns/model/3, ns/model@production, ..."),
    filter_: str = typer.Option(
        "", "--filter", "-f", help='e.g. creator = "ci" AND create_time >= "2026-01-01T00:00:00Z"'
    ),
    show_superseded: bool = typer.Option(False, help="include records a correction replaced"),
    output: Output = OutputOption,
) -> None:
    """List the lineage records of a version, in recording order."""
    found = run(
        lambda r: r.lineage.list_lineage_records(uri, show_superseded=show_superseded, filter=filter_)
    )
    emit(
        found,
        output,
        ["name", "create_time", "creator", "reason", "superseded_by"],
        title=f"lineage records of {uri}",
    )


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
    graph = run(lambda r: r.lineage.lineage_subgraph(uri, direction=direction, max_hops=hops))
    if output is Output.json:
        typer.echo(json.dumps(as_dict(graph), indent=2))
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


@app.command()
def impact(
    dataset: str = typer.Option(None, help="a dataset uri"),
    digest: str = typer.Option("", help="the dataset's digest"),
    version: str = typer.Option(None, help="or a version: ns/model/3"),
    stage: list[str] = typer.Option([], "--stage", help="only versions a stage or alias names; repeatable"),
    output: Output = OutputOption,
) -> None:
    """Which versions were made from a dataset (or from a version), and how far downstream."""
    if bool(dataset) == bool(version):
        raise typer.BadParameter("give exactly one of --dataset or --version")
    affected = run(
        lambda r: r.lineage.find_downstream(
            dataset_uri=dataset or "", dataset_digest=digest, version=version or "", stages=stage
        )
    )
    emit(affected, output, ["model_version", "distance"], title="affected versions")


@app.command()
def diff(
    a: str = typer.Argument(..., help="ns/model/1"),
    b: str = typer.Argument(..., help="ns/model/2"),
    output: Output = OutputOption,
) -> None:
    """What changed in data, code, config and environment between two versions."""
    result = run(lambda r: r.lineage.diff_lineage(a, b))
    if output is Output.json or result.identical:
        typer.echo(json.dumps(as_dict(result), indent=2) if output is Output.json else "identical")
        return
    for d in result.diffs:
        kind = lineage_pb2.NodeType.Name(d.type).removeprefix("NODE_TYPE_").lower()
        for node in d.only_in_a:
            console.print(f"[red]- {kind}[/] {node.id.split(':', 1)[-1]}")
        for node in d.only_in_b:
            console.print(f"[green]+ {kind}[/] {node.id.split(':', 1)[-1]}")
        for change in d.changes:
            console.print(f"[yellow]~ {kind}[/] {change.key}: {change.a} -> {change.b}")


@app.command()
def reproduce(uri: str = typer.Argument(...), output: Output = output_option(Output.json)) -> None:
    """Everything needed to rebuild a version: one JSON document, or a table of its fields."""
    emit_fields(run(lambda r: r.lineage.reproduction_info(uri)), output, title=f"how to reproduce {uri}")


@app.command()
def export(
    uri: str = typer.Argument(...),
    fmt: str = typer.Option("dot", "--format", help="dot or json"),
    hops: int = typer.Option(3),
    output: Output = OutputOption,
) -> None:
    """Export the lineage around a version as Graphviz DOT or JSON (`-o json` wraps the
    text in a document that also names the version and the format)."""
    if fmt not in ("dot", "json"):
        raise typer.BadParameter("must be dot or json", param_hint="--format")
    content = run(lambda r: r.lineage.export_lineage(uri, fmt=fmt, max_hops=hops))
    if output is Output.json:
        echo_json({"uri": uri, "format": fmt, "max_hops": hops, "content": content})
    else:
        typer.echo(content)
