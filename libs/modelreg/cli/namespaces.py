"""`modelreg namespaces ...`."""

from __future__ import annotations

import typer

from modelreg.cli.output import Output, OutputOption, emit, run

app = typer.Typer(
    help="Namespaces (models are created in them; one is created on first use).", no_args_is_help=True
)
COLUMNS = ["name", "description", "implicit", "create_time", "created_by"]


@app.command()
def create(
    namespace: str = typer.Argument(...),
    description: str = typer.Option("", "--description", "-d"),
    output: Output = OutputOption,
) -> None:
    """Create a namespace."""
    emit([run(lambda r: r.catalog.create_namespace(namespace, description=description))], output, COLUMNS)


@app.command("list")
def list_(output: Output = OutputOption) -> None:
    """List namespaces."""
    emit(run(lambda r: r.catalog.list_namespaces()), output, COLUMNS, title="namespaces")
