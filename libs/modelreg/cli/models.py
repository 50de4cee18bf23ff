"""`modelreg models ...`: the catalog from the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from modelreg.cli.output import Output, emit, fail
from modelreg.client import Registry, RegistryError

app = typer.Typer(help="Registered models (the catalog).", no_args_is_help=True)

MODEL_COLUMNS = ["name", "state", "description", "tags", "create_time", "created_by", "etag"]
OutputOption = typer.Option(Output.table, "--output", "-o", help="table or json")


def run(action: Callable[[Registry], Any]) -> Any:
    try:
        with Registry() as registry:
            return action(registry)
    except RegistryError as error:
        raise fail(error) from None


def parse_tags(tags: list[str]) -> dict[str, str]:
    parsed = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep:
            raise typer.BadParameter(f"{tag!r} is not key=value", param_hint="--tag")
        parsed[key] = value
    return parsed


@app.command()
def create(
    uri: str = typer.Argument(..., help="namespace/model or modelreg://namespace/model"),
    description: str = typer.Option("", "--description", "-d", help="markdown description"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="key=value, repeatable"),
    output: Output = OutputOption,
) -> None:
    """Register a model."""
    tags = parse_tags(tag)
    model = run(lambda r: r.register_model(uri, description=description, tags=tags))
    emit([model], output, MODEL_COLUMNS)


@app.command()
def get(uri: str = typer.Argument(..., help="namespace/model"), output: Output = OutputOption) -> None:
    """Show one model."""
    emit([run(lambda r: r.get_model(uri))], output, MODEL_COLUMNS)


@app.command("list")
def list_(namespace: str = typer.Argument(...), output: Output = OutputOption) -> None:
    """List the models of a namespace."""
    models = run(lambda r: r.list_models(namespace))
    emit(models, output, MODEL_COLUMNS, title=f"models in {namespace}")
