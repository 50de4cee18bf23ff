"""The `modelreg` command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from modelreg.cli import dev as dev_module
from modelreg.cli import models

app = typer.Typer(help="modelreg: an event-sourced ML model registry.", no_args_is_help=True)
app.add_typer(models.app, name="models")
console = Console()


@app.callback()
def main() -> None:
    """modelreg: an event-sourced ML model registry."""


@app.command()
def dev(
    home: Path = typer.Option(None, help="state directory (default: $MODELREG_HOME or ~/.modelreg/dev)"),
    catalog_port: int = typer.Option(50051, help="port of the catalog service"),
) -> None:
    """Start the whole registry locally: Tansu, PostgreSQL and every service."""
    dev_module.run_dev(
        home=home or dev_module.modelreg_home(), ports={"catalog": catalog_port}, console=console
    )


if __name__ == "__main__":
    app()
