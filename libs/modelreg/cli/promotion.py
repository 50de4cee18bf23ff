"""Promotion commands: move pointers under policy, approve, roll back, show history."""

from __future__ import annotations

import typer

from modelreg.cli.output import Output, OutputOption, as_dict, console, emit, fail, parse_pairs, run
from modelreg.client import RegistryError

TRANSITION_COLUMNS = ["name", "state", "moves", "requester", "approvals", "comment"]


def promote(
    uri: str = typer.Argument(..., help="namespace/model"),
    to: list[str] = typer.Option(
        ..., "--to", help="POINTER=VERSION, e.g. PRODUCTION=7 or champion=7; repeatable"
    ),
    comment: str = typer.Option("", "--comment", "-c"),
    output: Output = OutputOption,
) -> None:
    """Request moving one or more pointers at once; protected ones wait for approval."""
    try:
        moves = {pointer: int(version) for pointer, version in parse_pairs(to, "--to").items()}
    except ValueError:
        raise typer.BadParameter("versions must be numbers", param_hint="--to") from None
    emit([run(lambda r: r.request_promotion(uri, moves, comment=comment))], output, TRANSITION_COLUMNS)


def approve(
    transition: str = typer.Argument(..., help="the transition request's name"),
    comment: str = typer.Option("", "--comment", "-c"),
    output: Output = OutputOption,
) -> None:
    """Approve a pending transition request."""
    emit([run(lambda r: r.approve(transition, comment=comment))], output, TRANSITION_COLUMNS)


def reject(
    transition: str = typer.Argument(...),
    comment: str = typer.Option("", "--comment", "-c"),
    output: Output = OutputOption,
) -> None:
    """Reject a pending transition request."""
    emit([run(lambda r: r.reject(transition, comment=comment))], output, TRANSITION_COLUMNS)


def rollback(
    uri: str = typer.Argument(..., help="namespace/model"),
    stage: str = typer.Option("PRODUCTION", help="STAGING or PRODUCTION"),
    reason: str = typer.Option(..., help="why; recorded in the history"),
    emergency: bool = typer.Option(False, help="use the policy's single-approver path"),
    output: Output = OutputOption,
) -> None:
    """Return a stage to its previous version."""
    emit(
        [run(lambda r: r.rollback(uri, stage, reason=reason, emergency=emergency))],
        output,
        TRANSITION_COLUMNS,
    )


def pointers(uri: str = typer.Argument(..., help="namespace/model"), output: Output = OutputOption) -> None:
    """Show where the stages and aliases of a model point."""
    emit(
        [run(lambda r: r.pointers(uri))], output, ["model", "stages", "aliases", "archived_versions", "etag"]
    )


def history(
    uri: str = typer.Argument(..., help="namespace/model"),
    pointer: str = typer.Option("", help="only this stage or alias"),
    output: Output = OutputOption,
) -> None:
    """Every applied transition: who moved what, when, why, and who approved."""
    entries = run(lambda r: r.history(uri, pointer=pointer))
    if output is Output.json:
        emit(entries, output, [])
        return
    from rich.table import Table

    table = Table(title=f"history of {uri}")
    for column in ("applied", "changes", "requested by", "approved by", "comment"):
        table.add_column(column)
    for entry in entries:
        changes = ", ".join(f"{c.pointer}: {c.previous or '-'} -> {c.version or '-'}" for c in entry.changes)
        approvers = ", ".join(a.approver for a in entry.approvals) or entry.applied_by
        comment = f"rollback: {entry.rollback_reason}" if entry.rollback else entry.comment
        table.add_row(entry.apply_time.ToJsonString(), changes, entry.requester, approvers, comment)
    console.print(table)


def watch(
    parent: str = typer.Argument("", help="a namespace (namespaces/ns) or model; empty: everything"),
    resume_token: str = typer.Option("", help="continue after the item that carried this token"),
    limit: int = typer.Option(0, help="stop after this many items (0: follow forever)"),
) -> None:
    """Follow applied transitions as JSON lines, gap-free, from a resume token (for CD controllers)."""
    import asyncio
    import json

    from modelreg.client import AsyncRegistry

    async def follow() -> None:
        async with AsyncRegistry() as registry:
            seen = 0
            async for item in registry.watch_promotions(parent, resume_token=resume_token):
                typer.echo(json.dumps(as_dict(item)), nl=True)
                seen += 1
                if limit and seen >= limit:
                    return

    try:
        asyncio.run(follow())
    except RegistryError as error:
        raise fail(error) from None


def register(app: typer.Typer) -> None:
    for command in (promote, approve, reject, rollback, pointers, history, watch):
        app.command()(command)
