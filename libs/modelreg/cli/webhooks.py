"""`modelreg webhooks ...`: endpoints that receive a namespace's public events, signed the
Standard Webhooks way (served by the events relay; needs the admin role)."""

from __future__ import annotations

import os

import typer

from modelreg.cli.audit import parse_time
from modelreg.cli.output import Output, OutputOption, emit, err_console, run
from modelreg.client.webhooks import new_secret

SECRET_ENV = "MODELREG_WEBHOOK_SECRET"

app = typer.Typer(
    help="Webhooks: POST each public event of a namespace to a URL (Standard Webhooks signatures, "
    "retries with backoff, dead letters, redelivery). Needs the admin role.",
    no_args_is_help=True,
)
COLUMNS = ["name", "url", "state", "event_types", "model", "mlflow_headers", "has_secret", "cursor"]
DELIVERY_COLUMNS = [
    "attempt_time",
    "event_type",
    "event_id",
    "position",
    "attempt",
    "status_code",
    "latency_ms",
    "outcome",
    "error",
]


@app.command()
def create(
    name: str = typer.Argument(..., help="ns/id"),
    url: str = typer.Argument(..., help="http(s) URL the events are POSTed to"),
    event_type: list[str] = typer.Option([], "--type", "-t", help="only these types (e.g. version.ready)"),
    model: str = typer.Option("", "--model", "-m", help="only this model's events, ns/model"),
    mlflow_headers: bool = typer.Option(False, "--mlflow-headers", help="also MLflow's X-MLflow-* headers"),
    output: Output = OutputOption,
) -> None:
    """Subscribe URL. The secret is $MODELREG_WEBHOOK_SECRET, else a new one, printed once
    (to stderr) and never shown again: give it to the receiver to verify signatures."""
    secret = os.environ.get(SECRET_ENV) or new_secret()
    created = run(
        lambda r: r.webhooks.create(
            name, url, secret=secret, event_types=event_type, model=model, mlflow_headers=mlflow_headers
        )
    )
    if not os.environ.get(SECRET_ENV):
        err_console.print(f"signing secret (shown once): {secret}", highlight=False, soft_wrap=True)
    emit([created], output, COLUMNS)


@app.command("list")
def list_(namespace: str = typer.Argument(...), output: Output = OutputOption) -> None:
    """The subscriptions of a namespace."""
    emit(
        run(lambda r: r.webhooks.list_webhooks(namespace)), output, COLUMNS, title=f"webhooks in {namespace}"
    )


@app.command()
def get(name: str = typer.Argument(..., help="ns/id"), output: Output = OutputOption) -> None:
    """One subscription (never its secret)."""
    emit([run(lambda r: r.webhooks.get(name))], output, COLUMNS)


@app.command()
def update(
    name: str = typer.Argument(..., help="ns/id"),
    url: str = typer.Option(None, "--url"),
    event_type: list[str] = typer.Option(None, "--type", "-t", help="replace the types (repeat)"),
    model: str = typer.Option(None, "--model", "-m"),
    mlflow_headers: bool = typer.Option(None, "--mlflow-headers/--no-mlflow-headers"),
    active: bool = typer.Option(None, "--enable/--disable"),
    rotate_secret: bool = typer.Option(
        False, "--rotate-secret", help="a new secret ($MODELREG_WEBHOOK_SECRET or made here, printed once)"
    ),
    output: Output = OutputOption,
) -> None:
    """Change what is given; a rotated secret signs alongside the old one for a while."""
    secret = (os.environ.get(SECRET_ENV) or new_secret()) if rotate_secret else None
    updated = run(
        lambda r: r.webhooks.update(
            name,
            url=url,
            secret=secret,
            event_types=event_type,
            model=model,
            mlflow_headers=mlflow_headers,
            active=active,
        )
    )
    if secret and not os.environ.get(SECRET_ENV):
        err_console.print(f"new signing secret (shown once): {secret}", highlight=False, soft_wrap=True)
    emit([updated], output, COLUMNS)


@app.command()
def delete(name: str = typer.Argument(..., help="ns/id"), output: Output = OutputOption) -> None:
    """Remove a subscription (its delivery log stays)."""
    emit([run(lambda r: r.webhooks.delete(name))], output, COLUMNS)


@app.command()
def test(name: str = typer.Argument(..., help="ns/id"), output: Output = OutputOption) -> None:
    """Send one io.modelreg.webhook.test.v1 request now and show how it went."""
    emit([run(lambda r: r.webhooks.test(name))], output, DELIVERY_COLUMNS)


@app.command()
def deliveries(
    name: str = typer.Argument(..., help="ns/id"),
    dead: bool = typer.Option(False, "--dead", help="only dead letters (and 4xx refusals)"),
    limit: int = typer.Option(100, "--limit"),
    output: Output = OutputOption,
) -> None:
    """The delivery log, newest first: one row per attempt."""
    found = run(lambda r: r.webhooks.deliveries(name, dead_letters_only=dead, limit=limit))
    emit(found, output, DELIVERY_COLUMNS, title=f"deliveries of {name}")


@app.command()
def redeliver(
    name: str = typer.Argument(..., help="ns/id"),
    from_: str = typer.Option(..., "--from", help="a position (see `deliveries`) or an RFC 3339 time"),
    output: Output = OutputOption,
) -> None:
    """Deliver again from a position or a time, with the same webhook-id as before."""
    if from_.isdigit():
        moved = run(lambda r: r.webhooks.redeliver(name, from_position=int(from_)))
    else:
        when = parse_time(from_, "--from")
        moved = run(lambda r: r.webhooks.redeliver(name, from_time=when))
    emit([moved], output, COLUMNS)
