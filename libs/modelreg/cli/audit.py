"""`modelreg audit ...`: the trail of who did what to which model, and when."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.table import Table

from modelreg.cli.output import Output, OutputOption, as_dict, console, run

app = typer.Typer(help="Audit: the trail of every accepted event and denial.", no_args_is_help=True)

COLUMNS = ("time", "actor", "action", "resource", "comment", "request_id", "position")


def parse_time(value: str | None, option: str) -> datetime | None:
    """An RFC 3339 time (a bare date is midnight UTC; no zone means UTC)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an RFC 3339 time", param_hint=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("list")
def list_(
    namespace: str = typer.Option("", "--namespace", "-n", help="only this namespace"),
    model: str = typer.Option("", "--model", "-m", help="only this model, ns/model"),
    actor: str = typer.Option("", "--actor", help="only what this principal did (or was denied)"),
    action: str = typer.Option("", "--action", help="e.g. RegisteredModelCreated, AccessDenied"),
    since: str = typer.Option(None, "--since", help="from this time on (RFC 3339, inclusive)"),
    until: str = typer.Option(None, "--until", help="before this time (RFC 3339, exclusive)"),
    filter_: str = typer.Option("", "--filter", "-f", help='more conditions, e.g. correlation_id = "..."'),
    limit: int = typer.Option(100, "--limit", help="at most this many events (0: all)"),
    output: Output = OutputOption,
) -> None:
    """List the audit trail in time order."""
    since_at, until_at = parse_time(since, "--since"), parse_time(until, "--until")
    if model and "/" not in model:
        raise typer.BadParameter("must be ns/model", param_hint="--model")
    found = run(
        lambda r: r.audit.list_audit_events(
            namespace,
            model=model,
            actor=actor,
            action=action,
            since=since_at,
            until=until_at,
            filter=filter_,
            limit=limit or None,
        )
    )
    if output is Output.json:
        typer.echo(json.dumps([as_dict(e) for e in found], indent=2))
        return
    table = Table(title=f"audit trail ({len(found)} events)")
    for column in COLUMNS:
        table.add_column(column)
    for event in found:
        table.add_row(
            event.occur_time.ToDatetime(tzinfo=UTC).isoformat(timespec="milliseconds"),
            event.actor,
            event.action,
            event.resource,
            event.comment,
            event.request_id,
            f"{event.topic}:{event.partition}@{event.offset}",
        )
    console.print(table)
