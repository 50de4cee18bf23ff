"""The `modelreg` command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from modelreg.cli import (
    access,
    audit,
    deployments,
    evaluations,
    lineage,
    models,
    namespaces,
    ops,
    promotion,
    tokens,
    versions,
    webhooks,
)
from modelreg.cli import demo as demo_module
from modelreg.cli import dev as dev_module
from modelreg.cli.output import fail
from modelreg.client import RegistryError

app = typer.Typer(help="modelreg: an event-sourced ML model registry.", no_args_is_help=True)
app.add_typer(namespaces.app, name="namespaces")
app.add_typer(models.app, name="models")
app.add_typer(versions.app, name="versions")
app.add_typer(lineage.app, name="lineage")
app.add_typer(ops.app, name="ops")
app.add_typer(tokens.app, name="tokens")
app.add_typer(audit.app, name="audit")
app.add_typer(access.app, name="access")
app.add_typer(deployments.app, name="deployments")
app.add_typer(evaluations.app, name="evaluations")
app.add_typer(webhooks.app, name="webhooks")
promotion.register(app)
console = Console()


@app.callback()
def main() -> None:
    """modelreg: an event-sourced ML model registry."""


@app.command()
def dev(
    home: Path = typer.Option(None, help="state directory (default: $MODELREG_HOME or ~/.modelreg/dev)"),
    catalog_port: int = typer.Option(
        50051, envvar="MODELREG_CATALOG_PORT", help="port of the catalog service"
    ),
    versioning_port: int = typer.Option(
        50052, envvar="MODELREG_VERSIONING_PORT", help="port of the versioning service"
    ),
    lineage_port: int = typer.Option(
        50053, envvar="MODELREG_LINEAGE_PORT", help="port of the lineage service"
    ),
    promotion_port: int = typer.Option(
        50054, envvar="MODELREG_PROMOTION_PORT", help="port of the promotion service"
    ),
    audit_port: int = typer.Option(50055, envvar="MODELREG_AUDIT_PORT", help="port of the audit service"),
    gateway_port: int = typer.Option(
        5000, envvar="MODELREG_GATEWAY_PORT", help="port of the HTTP gateway (MLflow's REST API)"
    ),
    events_port: int = typer.Option(
        50056, envvar="MODELREG_EVENTS_PORT", help="port of the events relay (public topic, webhooks)"
    ),
) -> None:
    """Start the whole registry locally: Tansu, PostgreSQL and every service."""
    ports = {
        "catalog": catalog_port,
        "versioning": versioning_port,
        "lineage": lineage_port,
        "promotion": promotion_port,
        "audit": audit_port,
        "gateway": gateway_port,
        "events": events_port,
    }
    dev_module.run_dev(home=home or dev_module.modelreg_home(), ports=ports, console=console)


@app.command()
def demo(
    model: str = typer.Option(None, help="model name in namespace `demo` (default: churn-<random>)"),
    home: Path = typer.Option(None, help="the `modelreg dev` state directory"),
) -> None:
    """Walk the main path against `modelreg dev`: register, version, lineage, promote, roll back."""
    try:
        demo_module.run_demo(model=model, console=console, home=home or demo_module.default_home())
    except demo_module.DemoFailed as failure:
        console.print(f"[red]demo failed:[/] {failure}")
        raise typer.Exit(1) from None
    except RegistryError as error:
        raise fail(error) from None


if __name__ == "__main__":
    app()
