"""`modelreg audit ...`: the trail of who did what to which model, and when."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from modelreg.auditlog.bundle import BundleInvalid, verify_bundle
from modelreg.auditlog.checkpoint import BadCheckpoint, load_public_key
from modelreg.cli.output import Output, OutputOption, as_dict, console, err_console, run

EXIT_INVALID = 11
"""`audit verify`: the bundle does not verify."""

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


@app.command()
def export(
    out: Path = typer.Argument(..., help="a new directory, or a file ending in .tar"),
    namespace: str = typer.Option("", "--namespace", "-n", help="only this namespace"),
    model: str = typer.Option("", "--model", "-m", help="only this model, ns/model"),
    actor: str = typer.Option("", "--actor", help="only what this principal did (or was denied)"),
    action: str = typer.Option("", "--action", help="only this action"),
    since: str = typer.Option(None, "--since", help="from this time on (RFC 3339, inclusive)"),
    until: str = typer.Option(None, "--until", help="before this time (RFC 3339, exclusive)"),
    filter_: str = typer.Option("", "--filter", "-f", help="more conditions in the filter language"),
) -> None:
    """Export a verifiable bundle of the trail (events, proofs, checkpoints, keys, signed manifest)."""
    since_at, until_at = parse_time(since, "--since"), parse_time(until, "--until")
    if out.exists():
        raise typer.BadParameter(f"{out} exists", param_hint="OUT")
    files = run(
        lambda r: r.audit.export_audit(
            namespace, model=model, actor=actor, action=action, since=since_at, until=until_at, filter=filter_
        )
    )
    write_bundle(out, files)
    manifest = json.loads(files["manifest.json"])
    console.print(
        f"exported {manifest['counts']['events']} events and {manifest['counts']['checkpoints']}"
        f" checkpoints to {out} (signed by key {manifest['signer']})",
        highlight=False,
    )


@app.command()
def verify(
    bundle: Path = typer.Argument(..., exists=True, help="a bundle directory or .tar"),
    public_key: list[Path] = typer.Option(
        ..., "--public-key", "-k", exists=True, help="a trusted PEM public key (repeat for rotated keys)"
    ),
    output: Output = OutputOption,
) -> None:
    """Verify a bundle offline, with nothing but the bundle and the public key(s)."""
    try:
        keys = [load_public_key(path.read_bytes()) for path in public_key]
    except BadCheckpoint as error:
        raise typer.BadParameter(str(error), param_hint="--public-key") from None
    try:
        report = verify_bundle(read_bundle(bundle), keys)
    except BundleInvalid as error:
        if output is Output.json:
            typer.echo(json.dumps({"valid": False, "item": error.item, "problem": error.problem}))
        else:
            err_console.print(f"[red]INVALID[/red] {error.item}: {error.problem}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    document = {
        "valid": True,
        "events": report.events,
        "checkpoints": report.checkpoints,
        "whole_streams": report.whole_streams,
        "partial_streams": report.partial_streams,
        "limits": report.limits,
    }
    if output is Output.json:
        typer.echo(json.dumps(document, indent=2))
        return
    console.print(
        f"[green]VALID[/green]: {report.events} events, {report.checkpoints} checkpoints;"
        f" {report.whole_streams} streams exported whole, {report.partial_streams} cut by the filter.",
        highlight=False,
    )
    console.print(report.limits, highlight=False)


def write_bundle(out: Path, files: dict[str, bytes]) -> None:
    if out.suffix == ".tar":
        with tarfile.open(out, "w") as tar:
            for path, data in sorted(files.items()):
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return
    for path, data in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_bundle(bundle: Path) -> dict[str, bytes]:
    if bundle.is_file():
        with tarfile.open(bundle) as tar:
            return {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }
    return {str(p.relative_to(bundle)): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}
