"""`modelreg models ...`: the catalog from the command line."""

from __future__ import annotations

import typer

from modelreg.cli.output import Output, OutputOption, emit, parse_pairs, run

app = typer.Typer(help="Registered models (the catalog).", no_args_is_help=True)

MODEL_COLUMNS = ["name", "state", "description", "tags", "create_time", "created_by", "etag"]


@app.command()
def create(
    uri: str = typer.Argument(..., help="namespace/model or modelreg://namespace/model"),
    description: str = typer.Option("", "--description", "-d", help="markdown description"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="key=value, repeatable"),
    output: Output = OutputOption,
) -> None:
    """Register a model."""
    tags = parse_pairs(tag, "--tag")
    model = run(lambda r: r.catalog.register_model(uri, description=description, tags=tags))
    emit([model], output, MODEL_COLUMNS)


@app.command()
def get(uri: str = typer.Argument(..., help="namespace/model"), output: Output = OutputOption) -> None:
    """Show one model."""
    emit([run(lambda r: r.catalog.get_model(uri))], output, MODEL_COLUMNS)


@app.command("list")
def list_(namespace: str = typer.Argument(...), output: Output = OutputOption) -> None:
    """List the models of a namespace."""
    models = run(lambda r: r.catalog.list_models(namespace))
    emit(models, output, MODEL_COLUMNS, title=f"models in {namespace}")


@app.command()
def search(
    namespace: str = typer.Argument(...),
    filter_: str = typer.Option(
        "", "--filter", "-f", help='e.g. tags.team = "growth" AND properties.auc >= 0.9'
    ),
    order_by: str = typer.Option("", "--order-by", help='e.g. "update_time desc"'),
    output: Output = OutputOption,
) -> None:
    """Search the models of a namespace with the filter language."""
    models = run(lambda r: r.catalog.search_models(namespace, filter=filter_, order_by=order_by))
    emit(models, output, MODEL_COLUMNS, title=f"models in {namespace}")


@app.command()
def update(
    uri: str = typer.Argument(..., help="namespace/model"),
    description: str = typer.Option(None, "--description", "-d"),
    annotations: str = typer.Option(None, "--annotations"),
    tag: list[str] = typer.Option(None, "--tag", "-t", help="key=value; replaces all tags; repeatable"),
    owner: list[str] = typer.Option(None, "--owner", help="replaces the owners; repeatable"),
    etag: str = typer.Option("", help="fail with ABORTED unless the model is still at this etag"),
    output: Output = OutputOption,
) -> None:
    """Change only the fields given."""
    tags = parse_pairs(tag, "--tag") if tag else None
    model = run(
        lambda r: r.catalog.update_model(
            uri, description=description, annotations=annotations, tags=tags, owners=owner or None, etag=etag
        )
    )
    emit([model], output, MODEL_COLUMNS)


@app.command()
def archive(uri: str = typer.Argument(...), output: Output = OutputOption) -> None:
    """Archive a model: read-only until restored."""
    emit([run(lambda r: r.catalog.archive_model(uri))], output, MODEL_COLUMNS)


@app.command()
def restore(uri: str = typer.Argument(...), output: Output = OutputOption) -> None:
    """Restore an archived model."""
    emit([run(lambda r: r.catalog.restore_model(uri))], output, MODEL_COLUMNS)


@app.command()
def delete(
    uri: str = typer.Argument(...), reason: str = typer.Option("", help="why"), output: Output = OutputOption
) -> None:
    """Soft-delete a model; its name stays reserved."""
    emit([run(lambda r: r.catalog.delete_model(uri, reason=reason))], output, MODEL_COLUMNS)
