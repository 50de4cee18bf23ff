"""`modelreg access grant|revoke|list`: roles per namespace, recorded on the log."""

from __future__ import annotations

import typer

from modelreg.cli.output import Output, OutputOption, emit, run
from modelreg.client.access import ROLES


def checked(role: str) -> str:
    if role.lower() not in ROLES:
        raise typer.BadParameter(f"{role!r} is not one of {', '.join(ROLES)}", param_hint="ROLE")
    return role


app = typer.Typer(
    help="Roles per namespace (viewer < editor < approver < admin), granted to a principal or "
    "group:<name>; grants and revocations are events on the log. Needs the admin role.",
    no_args_is_help=True,
)
COLUMNS = ["parent", "subject", "role", "granted_by", "grant_time", "bootstrap"]


@app.command()
def grant(
    namespace: str = typer.Argument(...),
    subject: str = typer.Argument(..., help="a principal, or group:<name>"),
    role: str = typer.Argument(..., help="viewer, editor, approver or admin", callback=checked),
    output: Output = OutputOption,
) -> None:
    """Grant a role in a namespace."""
    emit([run(lambda r: r.access.grant(namespace, subject, role))], output, COLUMNS)


@app.command()
def revoke(
    namespace: str = typer.Argument(...),
    subject: str = typer.Argument(...),
    role: str = typer.Argument(..., callback=checked),
    output: Output = OutputOption,
) -> None:
    """Revoke a role granted with `grant`."""
    emit([run(lambda r: r.access.revoke(namespace, subject, role))], output, COLUMNS)


@app.command("list")
def list_(namespace: str = typer.Argument(...), output: Output = OutputOption) -> None:
    """The grants that apply in a namespace (bootstrap ones from the environment included)."""
    emit(run(lambda r: r.access.list_grants(namespace)), output, COLUMNS, title=f"grants in {namespace}")
