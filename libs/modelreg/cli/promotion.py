"""Promotion commands: move pointers under policy, approve, roll back, list requests,
history and denials."""

from __future__ import annotations

import json
from contextlib import closing
from itertools import islice

import typer

from modelreg.cli.output import (
    Output,
    OutputOption,
    as_dict,
    console,
    echo_json,
    emit,
    output_option,
    parse_pairs,
    run,
)
from modelreg.client import Registry

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
    emit(
        [run(lambda r: r.promotion.request_promotion(uri, moves, comment=comment))],
        output,
        TRANSITION_COLUMNS,
    )


def approve(
    transition: str = typer.Argument(..., help="the transition request's name"),
    comment: str = typer.Option("", "--comment", "-c"),
    output: Output = OutputOption,
) -> None:
    """Approve a pending transition request."""
    emit([run(lambda r: r.promotion.approve(transition, comment=comment))], output, TRANSITION_COLUMNS)


def reject(
    transition: str = typer.Argument(...),
    comment: str = typer.Option("", "--comment", "-c"),
    output: Output = OutputOption,
) -> None:
    """Reject a pending transition request."""
    emit([run(lambda r: r.promotion.reject(transition, comment=comment))], output, TRANSITION_COLUMNS)


def rollback(
    uri: str = typer.Argument(..., help="namespace/model"),
    stage: str = typer.Option("PRODUCTION", help="STAGING or PRODUCTION"),
    reason: str = typer.Option(..., help="why; recorded in the history"),
    emergency: bool = typer.Option(False, help="use the policy's single-approver path"),
    output: Output = OutputOption,
) -> None:
    """Return a stage to its previous version."""
    emit(
        [run(lambda r: r.promotion.rollback(uri, stage, reason=reason, emergency=emergency))],
        output,
        TRANSITION_COLUMNS,
    )


def pointers(uri: str = typer.Argument(..., help="namespace/model"), output: Output = OutputOption) -> None:
    """Show where the stages and aliases of a model point."""
    emit(
        [run(lambda r: r.promotion.pointers(uri))],
        output,
        ["model", "stages", "aliases", "archived_versions", "etag"],
    )


def requests(
    uri: str = typer.Argument(..., help="namespace/model"),
    filter_: str = typer.Option(
        "", "--filter", "-f", help='e.g. state = "PENDING" AND requested_by = "alice"'
    ),
    output: Output = OutputOption,
) -> None:
    """List the transition requests of a model, newest first (e.g. those awaiting approval)."""
    found = run(lambda r: r.promotion.list_transition_requests(uri, filter=filter_))
    emit(found, output, TRANSITION_COLUMNS, title=f"transition requests of {uri}")


def history(
    uri: str = typer.Argument(..., help="namespace/model"),
    pointer: str = typer.Option("", help="only this stage or alias"),
    filter_: str = typer.Option(
        "",
        "--filter",
        "-f",
        help='e.g. pointer = "PRODUCTION" AND applied_time >= "2026-01-01T00:00:00Z"',
    ),
    output: Output = OutputOption,
) -> None:
    """Every applied transition: who moved what, when, why, and who approved."""
    entries = run(lambda r: r.promotion.history(uri, pointer=pointer, filter=filter_))
    if output is Output.json:
        echo_json([as_dict(e) for e in entries])  # a list even when one entry matches
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


def denials(
    namespace: str = typer.Argument(..., help="the namespace"),
    filter_: str = typer.Option(
        "", "--filter", "-f", help='e.g. principal = "mallory" AND deny_time >= "2026-01-01T00:00:00Z"'
    ),
    output: Output = OutputOption,
) -> None:
    """List the promotion calls refused in a namespace, newest first: who tried what, and why not."""
    found = run(lambda r: r.promotion.list_access_denials(namespace, filter=filter_))
    emit(
        found,
        output,
        ["deny_time", "principal", "action", "resource", "reason"],
        title=f"access denials in {namespace}",
    )


def watch(
    parent: str = typer.Argument("", help="a namespace (namespaces/ns) or model; empty: everything"),
    resume_token: str = typer.Option("", help="continue after the item that carried this token"),
    limit: int = typer.Option(0, help="stop after this many items (0: follow forever)"),
    output: Output = output_option(Output.json),
) -> None:
    """Follow applied transitions, gap-free, from a resume token (for CD controllers):
    JSON lines, or a line per transition with `-o table`."""

    def follow(registry: Registry) -> None:
        if output is Output.table:
            typer.echo("\t".join(("applied", "model", "changes", "requested by", "resume token")))
        with closing(registry.promotion.watch_promotions(parent, resume_token=resume_token)) as items:
            for item in islice(items, limit or None):
                if output is Output.json:
                    typer.echo(json.dumps(as_dict(item)))
                    continue
                entry = item.entry
                changes = ", ".join(
                    f"{c.pointer}: {c.previous or '-'} -> {c.version or '-'}" for c in entry.changes
                )
                applied = entry.apply_time.ToJsonString()
                typer.echo("\t".join((applied, entry.model, changes, entry.requester, item.resume_token)))

    run(follow)


def register(app: typer.Typer) -> None:
    for command in (promote, approve, reject, rollback, pointers, requests, history, denials, watch):
        app.command()(command)
