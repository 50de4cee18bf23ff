"""`modelreg deployments`: what serves each environment (versions and split, serving code, runtime
config), its revisions, rollback, and the CD acknowledgements against it."""

from __future__ import annotations

import json

import typer

from modelreg.cli.output import Output, OutputOption, as_dict, console, echo_json, emit, parse_pairs, run
from modelreg.gen.promotion.v1 import promotion_pb2

app = typer.Typer(help="Deployments: revisioned specs per environment, rollback and CD status.")

TRANSITION_COLUMNS = ["name", "state", "requester", "required_approvals", "protected_targets", "comment"]


def _split(d: promotion_pb2.Deployment) -> str:
    return ", ".join(f"v{w.version}={w.percent}%" for w in d.weights) or "(removed)"


def _code(d: promotion_pb2.Deployment) -> str:
    c = d.serving_code
    return c.image or (f"{c.repository}@{c.commit}" if c.repository else "-")


def _show(title: str, deployments: list[promotion_pb2.Deployment]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("environment", "revision", "split", "serving code", "runtime config", "schema"):
        table.add_column(column)
    for d in deployments:
        table.add_row(
            d.environment,
            str(d.revision) + (f" (= {d.restored_revision})" if d.restored_revision else ""),
            _split(d),
            _code(d),
            d.runtime_config or "{}",
            "yes" if d.config_schema else "-",
        )
    console.print(table)


@app.command()
def show(
    uri: str = typer.Argument(..., help="namespace/model"),
    env: str = typer.Option("", "--env", "-e", help="one environment; default: all"),
    output: Output = OutputOption,
) -> None:
    """The current revision of each environment (or of one)."""
    if env:
        found = [run(lambda r: r.promotion.deployment(uri, env))]
    else:
        found = list(run(lambda r: r.promotion.pointers(uri)).deployments)
    if output is Output.json:
        echo_json([as_dict(d) for d in found] if not env else as_dict(found[0]))
        return
    _show(f"deployments of {uri}", found)


def _json_option(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as handle:
            value = handle.read()
    try:
        json.loads(value)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint=flag) from None
    return value


@app.command("set")
def set_(
    uri: str = typer.Argument(..., help="namespace/model"),
    env: str = typer.Option(..., "--env", "-e", help="the environment, e.g. prod"),
    reason: str = typer.Option(..., "--reason", "-r", help="why; recorded with the revision"),
    weight: list[str] = typer.Option(None, "--weight", "-w", help="VERSION=PERCENT, repeatable"),
    image: str = typer.Option(None, help="serving image by digest: name@sha256:<hex>"),
    repository: str = typer.Option(None, help="serving code repository (with --commit)"),
    commit: str = typer.Option(None, help="serving code commit"),
    config: str = typer.Option(None, help="runtime config: a JSON object, or @file.json"),
    config_schema: str = typer.Option(None, "--schema", help="JSON Schema of the config, or @file.json"),
    output: Output = OutputOption,
) -> None:
    """Request a new revision changing only what is given (the rest stays): serving code or config
    alone never makes a model version. Protected environments wait for approval."""
    weights = None
    if weight:
        try:
            weights = {int(v): int(p) for v, p in parse_pairs(weight, "--weight").items()}
        except ValueError:
            raise typer.BadParameter("VERSION=PERCENT, both numbers", param_hint="--weight") from None
    config_text = _json_option(config, "--config")
    schema_text = _json_option(config_schema, "--schema")
    if weights is None and image is None and repository is None and commit is None:
        if config_text is None and schema_text is None:
            raise typer.BadParameter("give --weight, --image, --repository/--commit, --config or --schema")
    emit(
        [
            run(
                lambda r: r.promotion.update_deployment(
                    uri,
                    env,
                    reason=reason,
                    weights=weights,
                    image=image,
                    repository=repository,
                    commit=commit,
                    config=config_text,
                    config_schema=schema_text,
                )
            )
        ],
        output,
        TRANSITION_COLUMNS,
    )


@app.command()
def history(
    uri: str = typer.Argument(..., help="namespace/model"),
    env: str = typer.Option(..., "--env", "-e"),
    output: Output = OutputOption,
) -> None:
    """Every revision of an environment, newest first: what changed, who, why, when."""
    found = run(lambda r: r.promotion.deployment_history(uri, env))
    if output is Output.json:
        echo_json([as_dict(r) for r in found])
        return
    from rich.table import Table

    table = Table(title=f"deployment {env} of {uri}")
    for column in ("revision", "applied", "split", "serving code", "runtime config", "by", "reason"):
        table.add_column(column)
    for r in found:
        d = r.deployment
        restored = f" (= {d.restored_revision})" if d.restored_revision else ""
        table.add_row(
            f"{d.revision}{restored}",
            r.apply_time.ToJsonString(),
            _split(d),
            _code(d),
            d.runtime_config or "{}",
            r.requester if r.requester == r.applied_by else f"{r.requester}, approved by {r.applied_by}",
            r.reason,
        )
    console.print(table)


@app.command()
def rollback(
    uri: str = typer.Argument(..., help="namespace/model"),
    env: str = typer.Option(..., "--env", "-e"),
    reason: str = typer.Option(..., "--reason", "-r"),
    revision: int = typer.Option(0, help="the revision to restore; 0: the one before the current"),
    output: Output = OutputOption,
) -> None:
    """Request a new revision equal to an earlier one, in one call (through the policy)."""
    emit(
        [run(lambda r: r.promotion.rollback_deployment(uri, env, reason=reason, revision=revision))],
        output,
        TRANSITION_COLUMNS,
    )


@app.command()
def report(
    uri: str = typer.Argument(..., help="namespace/model"),
    env: str = typer.Option(..., "--env", "-e"),
    state: str = typer.Option(..., help="IN_PROGRESS, SUCCEEDED or FAILED"),
    revision: int = typer.Option(0, help="the deployment revision rolled out"),
    version: int = typer.Option(0, help="or the model version rolled out"),
    detail: str = typer.Option("", help="e.g. the error of a failed rollout"),
    output: Output = OutputOption,
) -> None:
    """Acknowledge a rollout (what a CD system calls)."""
    emit(
        [
            run(
                lambda r: r.promotion.report_deployment(
                    uri, env, state, revision=revision, version=version, detail=detail
                )
            )
        ],
        output,
        ["model", "environment", "revision", "version", "state", "reporter", "report_time"],
    )


@app.command()
def status(uri: str = typer.Argument(..., help="namespace/model"), output: Output = OutputOption) -> None:
    """Desired revision against acknowledged, per environment, flagging drift."""
    answer = run(lambda r: r.promotion.deployment_status(uri))
    if output is Output.json:
        echo_json(as_dict(answer))
        return
    from rich.table import Table

    table = Table(title=f"deployment status of {uri}")
    for column in ("environment", "desired", "acknowledged", "state", "drift"):
        table.add_column(column)
    for e in answer.environments:
        desired = f"r{e.desired.revision}: {_split(e.desired)}" if e.HasField("desired") else "-"
        ack = e.acknowledged
        acknowledged = (
            (f"r{ack.revision}" if ack.revision else f"v{ack.version}") + f" by {ack.reporter}"
            if e.HasField("acknowledged")
            else "-"
        )
        state = (
            promotion_pb2.DeploymentReport.State.Name(ack.state).removeprefix("STATE_") if ack.state else "-"
        )
        table.add_row(
            e.environment,
            desired,
            acknowledged,
            state,
            f"[red]{e.drift_reason}[/]" if e.drift else "[green]no[/]",
        )
    console.print(table)
