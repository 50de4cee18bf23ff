"""`modelreg tokens create|list|revoke --file PATH`: the API token file a service reads at
MODELREG_AUTH_TOKEN_FILE (salted scrypt hashes; a token is shown once, at create)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from modelreg.cli.output import Output, console, echo_json, err_console, output_option
from modelreg.grpcutil.tokenfile import TokenEntry, create_token, read_entries, revoke_token

app = typer.Typer(help="API tokens: a file of salted hashes that services read.", no_args_is_help=True)
FileOption: Any = typer.Option(
    ..., "--file", "-f", envvar="MODELREG_AUTH_TOKEN_FILE", help="the token file (created if missing)"
)
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _expiry(expires_in: str | None, expires_at: str | None) -> datetime | None:
    if expires_in and expires_at:
        raise typer.BadParameter("give --expires-in or --expires-at, not both")
    if expires_in:
        match = _DURATION.match(expires_in.strip())
        if match is None:
            raise typer.BadParameter("--expires-in looks like 90d, 12h, 30m or 2w")
        return datetime.now(UTC) + timedelta(**{_UNITS[match[2]]: int(match[1])})
    if expires_at:
        try:
            moment = datetime.fromisoformat(expires_at)
        except ValueError:
            raise typer.BadParameter("--expires-at is an ISO 8601 time, e.g. 2027-01-31T00:00:00Z") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _row(entry: TokenEntry, now: datetime) -> dict[str, object]:
    return {
        "id": entry.id,
        "principal": entry.principal,
        "groups": list(entry.groups),
        "status": entry.status(now),
        "created_at": entry.created_at,
        "expires_at": entry.expires_at,
        "revoked_at": entry.revoked_at,
        "description": entry.description,
    }


@app.command()
def create(
    file: Path = FileOption,
    principal: str = typer.Option(..., "--principal", "-p", help="who the token authenticates"),
    group: list[str] = typer.Option([], "--group", "-g", help="a group of the principal (repeatable)"),
    expires_in: str = typer.Option(None, "--expires-in", help="e.g. 90d, 12h (default: never)"),
    expires_at: str = typer.Option(None, "--expires-at", help="ISO 8601 time"),
    description: str = typer.Option("", "--description", "-d"),
    output: Output = output_option(),
) -> None:
    """Create a token; it is printed once (the file keeps only its salted hash)."""
    token, entry = create_token(
        file, principal, groups=group, expires_at=_expiry(expires_in, expires_at), description=description
    )
    if output is Output.json:
        echo_json({"token": token, **_row(entry, datetime.now(UTC))})
        return
    err_console.print(f"token {entry.id} for {entry.principal}; store it now, it is not shown again:")
    typer.echo(token)


@app.command("list")
def list_(file: Path = FileOption, output: Output = output_option()) -> None:
    """List the tokens (ids, principals, groups, expiry, revocation; never a secret)."""
    now = datetime.now(UTC)
    rows = [_row(e, now) for e in read_entries(file)]
    if output is Output.json:
        echo_json(rows)
        return
    table = Table(title="tokens")
    columns = ["id", "principal", "groups", "status", "created_at", "expires_at", "description"]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                ", ".join(map(str, v)) if isinstance(v, list) else str(v or "")
                for v in (row[c] for c in columns)
            )
        )
    console.print(table)


@app.command()
def revoke(file: Path = FileOption, token_id: str = typer.Argument(..., help="the token's id")) -> None:
    """Revoke a token: services refuse it from their next call on."""
    try:
        entry = revoke_token(file, token_id)
    except KeyError:
        err_console.print(f"no token {token_id} in {file}")
        raise typer.Exit(3) from None
    typer.echo(f"revoked {entry.id} ({entry.principal}) at {entry.revoked_at}")
