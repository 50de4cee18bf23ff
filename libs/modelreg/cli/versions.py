"""`modelreg versions ...`: versions and their artifacts."""

from __future__ import annotations

from pathlib import Path

import typer

from modelreg.cli.output import Output, OutputOption, as_dict, console, echo_json, emit, parse_pairs, run
from modelreg.client import Registry
from modelreg.gen.versioning.v1 import versioning_pb2

app = typer.Typer(help="Model versions and their artifacts.", no_args_is_help=True)

VERSION_COLUMNS = ["name", "semver", "state", "metrics", "tags", "create_time", "created_by"]


@app.command()
def create(
    uri: str = typer.Argument(..., help="namespace/model"),
    bump: str = typer.Option(
        "minor", help="major (incompatible data/schema), minor (better model), pipeline"
    ),
    semver: str = typer.Option(None, help="an explicit MAJOR.MINOR.PIPELINE instead of a bump"),
    artifacts: Path = typer.Option(
        None, "--artifacts", "-a", exists=True, help="a file or directory to upload"
    ),
    description: str = typer.Option("", "--description", "-d"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="key=value, repeatable"),
    metric: list[str] = typer.Option([], "--metric", "-m", help="name=number, repeatable"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value, repeatable"),
    framework: str = typer.Option("", help="e.g. pytorch"),
    flavor: str = typer.Option("", help="e.g. torchscript"),
    progress: bool = typer.Option(True, help="show progress bars"),
    output: Output = OutputOption,
) -> None:
    """Create a version, upload its artifacts (hashing, presigned PUT or streaming) and finalise it."""
    try:
        metrics = {k: float(v) for k, v in parse_pairs(metric, "--metric").items()}
    except ValueError:
        raise typer.BadParameter("metric values must be numbers", param_hint="--metric") from None
    version = run(
        lambda r: r.versioning.create_version(
            uri,
            bump=None if semver else bump,
            semver=semver,
            artifacts=artifacts,
            description=description,
            tags=parse_pairs(tag, "--tag"),
            metrics=metrics,
            params=parse_pairs(param, "--param"),
            framework=framework,
            flavor=flavor,
            progress=progress and output is Output.table,
        )
    )
    emit([version], output, VERSION_COLUMNS)


@app.command()
def get(
    uri: str = typer.Argument(..., help="ns/model/3, ns/model@v1.2.0, ns/model@production, ..."),
    output: Output = OutputOption,
) -> None:
    """Show one version."""
    version = run(lambda r: r.versioning.get_version(uri))
    emit([version], output, VERSION_COLUMNS)
    if output is Output.table and version.files:
        emit(list(version.files), output, ["path", "size", "sha256", "media_type"], title="artifacts")


@app.command("list")
def list_(uri: str = typer.Argument(..., help="namespace/model"), output: Output = OutputOption) -> None:
    """List the versions of a model, newest first."""
    emit(run(lambda r: r.versioning.list_versions(uri)), output, VERSION_COLUMNS, title=f"versions of {uri}")


@app.command()
def download(
    uri: str = typer.Argument(..., help="ns/model@production, ns/model/3, ..."),
    destination: Path = typer.Argument(..., help="directory to write the files into"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    output: Output = OutputOption,
) -> None:
    """Download every artifact of a version, verifying each sha256."""

    def fetch(registry: Registry) -> tuple[versioning_pb2.ModelVersion, Path]:
        version = registry.versioning.get_version(uri)
        show = progress and output is Output.table
        return version, registry.versioning.download_version(version, destination, progress=show)

    version, root = run(fetch)
    if output is Output.json:
        echo_json(
            {
                "uri": uri,
                "name": version.name,
                "version": version.version,
                "semver": version.semver,
                "destination": str(root),
                "files": [as_dict(f) for f in version.files],
            }
        )
    else:
        console.print(f"downloaded {uri} into {root}")


@app.command()
def deprecate(
    uri: str = typer.Argument(...), reason: str = typer.Option("", help="why"), output: Output = OutputOption
) -> None:
    """Mark a version DEPRECATED."""
    emit([run(lambda r: r.versioning.deprecate_version(uri, reason=reason))], output, VERSION_COLUMNS)


@app.command()
def delete(
    uri: str = typer.Argument(...), reason: str = typer.Option(..., help="why"), output: Output = OutputOption
) -> None:
    """Soft-delete a version (refused while a stage, alias or traffic split points at it)."""
    emit([run(lambda r: r.versioning.delete_version(uri, reason=reason))], output, VERSION_COLUMNS)


@app.command()
def retention(
    uri: str = typer.Argument(..., help="namespace/model"),
    keep_last: int = typer.Option(None, help="set the policy: keep the last N per MAJOR line"),
    apply: bool = typer.Option(False, "--apply", help="delete for real (default: a dry run that lists)"),
    output: Output = OutputOption,
) -> None:
    """Show (dry run) or apply what the model's retention policy deletes."""
    if keep_last is not None:
        run(lambda r: r.versioning.set_retention(uri, keep_last_per_major=keep_last))
    result = run(lambda r: r.versioning.apply_retention(uri, dry_run=not apply))
    if output is Output.json:
        emit([result], output, [])
        return
    verb = "deleted" if apply else "would delete"
    emit(list(result.deleted), output, VERSION_COLUMNS, title=f"{verb} ({len(result.deleted)})")
    console.print(f"kept because a pointer names them: {list(result.protected_versions) or 'none'}")


@app.command()
def gc(
    apply: bool = typer.Option(False, "--apply", help="remove for real (default: a dry run that lists)"),
    grace: int = typer.Option(86400, help="only blobs unreferenced for at least this many seconds"),
    output: Output = OutputOption,
) -> None:
    """Garbage-collect blobs that no live version references."""
    result = run(lambda r: r.versioning.collect_garbage(dry_run=not apply, grace_period_seconds=grace))
    if output is Output.json:
        emit([result], output, [])
        return
    verb = "removed" if apply else "would remove"
    emit(
        list(result.blobs),
        output,
        ["sha256", "size"],
        title=f"{verb} {len(result.blobs)} blobs, {result.bytes} bytes",
    )
