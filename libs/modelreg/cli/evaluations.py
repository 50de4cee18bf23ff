"""`modelreg evaluations`: how versions perform over time (offline, shadow, production), compared on a
dataset, and the degradation thresholds that raise `version degraded`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import typer

from modelreg.cli.output import Output, OutputOption, as_dict, console, echo_json, parse_pairs, run
from modelreg.gen.lineage.v1 import lineage_pb2

app = typer.Typer(help="Evaluations of versions over time, comparisons and degradation thresholds.")

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """One character per value, scaled between the series' min and max."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return BARS[len(BARS) // 2] * len(values)
    return "".join(BARS[round((v - low) / (high - low) * (len(BARS) - 1))] for v in values)


def _kind(e: lineage_pb2.ModelEvaluation) -> str:
    return lineage_pb2.ModelEvaluation.Kind.Name(e.kind).removeprefix("KIND_")


def _on(e: lineage_pb2.ModelEvaluation) -> str:
    if e.HasField("dataset"):
        return e.dataset.uri
    w = e.window
    span = f"{w.start_time.ToJsonString()[:16]}..{w.end_time.ToJsonString()[11:16]}"
    return f"{w.environment or 'traffic'} {span}"


def _version(e: lineage_pb2.ModelEvaluation) -> str:
    return e.model_version.rsplit("/", 1)[-1]


@app.command("list")
def list_(
    uri: str = typer.Argument(..., help="ns/model (every version), ns/model@production or ns/model/3"),
    metric: str = typer.Option("", "--metric", "-m", help="the metric drawn over time; default: each one"),
    filter_: str = typer.Option("", "--filter", "-f", help='e.g. kind = "PRODUCTION"'),
    output: Output = OutputOption,
) -> None:
    """The evaluations in time order as a table, then each metric over time per version as a
    sparkline (oldest to newest)."""
    found = run(lambda r: r.lineage.list_evaluations(uri, filter=filter_))
    if output is Output.json:
        echo_json([as_dict(e) for e in found])
        return
    from rich.table import Table

    names = sorted({m for e in found for m in e.metrics}) if not metric else [metric]
    table = Table(title=f"evaluations of {uri}")
    for column in ("evaluated", "version", "kind", "on", *names, "degraded", "tool/run"):
        table.add_column(column)
    for e in found:
        values = [f"{e.metrics[m]:.4g}" if m in e.metrics else "" for m in names]
        degraded = ", ".join(e.degraded_metrics)
        table.add_row(
            e.evaluate_time.ToJsonString()[:19],
            _version(e),
            _kind(e),
            _on(e),
            *values,
            f"[red]{degraded}[/]" if degraded else "",
            " ".join(x for x in (e.tool, e.run) if x),
        )
    console.print(table)
    trend = Table(title="over time (oldest -> newest)")
    for column in ("version", "metric", "trend", "first", "last", "min", "max", "n"):
        trend.add_column(column)
    versions = sorted({e.model_version for e in found}, key=lambda v: int(v.rsplit("/", 1)[-1]))
    for version in versions:
        for name in names:
            series = [e.metrics[name] for e in found if e.model_version == version and name in e.metrics]
            if series:
                trend.add_row(
                    version.rsplit("/", 1)[-1],
                    name,
                    sparkline(series),
                    f"{series[0]:.4g}",
                    f"{series[-1]:.4g}",
                    f"{min(series):.4g}",
                    f"{max(series):.4g}",
                    str(len(series)),
                )
    console.print(trend)


@app.command()
def record(
    uri: str = typer.Argument(..., help="ns/model/3 or ns/model@production"),
    metric: list[str] = typer.Option(..., "--metric", "-m", help="NAME=VALUE, repeatable"),
    kind: str = typer.Option("OFFLINE", help="OFFLINE, SHADOW or PRODUCTION"),
    dataset: str = typer.Option("", help="the dataset's URI (with --digest)"),
    digest: str = typer.Option("", help="the dataset's digest, sha256:<hex>"),
    start: datetime = typer.Option(None, help="start of the traffic window (SHADOW, PRODUCTION)"),
    end: datetime = typer.Option(None, help="end of the traffic window"),
    environment: str = typer.Option("", help="the environment of the window"),
    tool: str = typer.Option("", help="the tool that evaluated"),
    run_ref: str = typer.Option("", "--run", help="the run that produced it"),
    output: Output = OutputOption,
) -> None:
    """Record an evaluation of a version (append-only)."""
    try:
        metrics = {k: float(v) for k, v in parse_pairs(metric, "--metric").items()}
    except ValueError:
        raise typer.BadParameter("values must be numbers", param_hint="--metric") from None
    window = None
    if start or end:
        if not (start and end and start.tzinfo and end.tzinfo):
            raise typer.BadParameter("give both, with a time zone (e.g. 2026-12-01T00:00:00+00:00)")
        window = (start, end)
    recorded = run(
        lambda r: r.lineage.record_evaluation(
            uri,
            metrics,
            kind=kind,
            dataset=(dataset, digest) if dataset else None,
            window=window,
            environment=environment,
            tool=tool,
            run=run_ref,
        )
    )
    if output is Output.json:
        echo_json(as_dict(recorded))
        return
    console.print(f"recorded {recorded.name}")
    if recorded.degraded_metrics:
        console.print(f"[red]degraded:[/] {', '.join(recorded.degraded_metrics)}")


@app.command()
def compare(
    a: str = typer.Argument(..., help="the base version, e.g. ns/model/3"),
    b: str = typer.Argument(..., help="the version compared with it, e.g. ns/model@challenger"),
    dataset: str = typer.Option(..., help="the dataset URI both were evaluated on"),
    digest: str = typer.Option("", help="only evaluations on this digest of it"),
    output: Output = OutputOption,
) -> None:
    """Each metric side by side with its delta (b - a), from the newest evaluations on the dataset."""
    answer = run(lambda r: r.lineage.compare_versions(a, b, dataset, digest))
    if output is Output.json:
        echo_json(as_dict(answer))
        return
    from rich.table import Table

    table = Table(title=f"{a} vs {b} on {dataset}")
    for column in ("metric", "a", "b", "delta"):
        table.add_column(column)
    for m in answer.metrics:
        a_cell = f"{m.a:.4g}" if m.HasField("a") else "-"
        b_cell = f"{m.b:.4g}" if m.HasField("b") else "-"
        delta = f"{m.delta:+.4g}" if m.HasField("delta") else "-"
        table.add_row(m.metric, a_cell, b_cell, delta)
    console.print(table)


@app.command()
def thresholds(
    uri: str = typer.Argument(..., help="ns/model"),
    set_: list[str] = typer.Option(
        None, "--set", help="METRIC>=VALUE (or >, <=, <): the healthy side; repeatable; replaces all"
    ),
    output: Output = OutputOption,
) -> None:
    """Show, or set, the degradation thresholds of a model."""
    import re

    if set_:
        parsed: dict[str, tuple[str, float]] = {}
        for item in set_:
            found = re.fullmatch(r"\s*([^<>=\s]+)\s*(>=|<=|>|<)\s*(\S+)\s*", item)
            if not found:
                raise typer.BadParameter(f"{item!r} is not METRIC>=VALUE", param_hint="--set")
            try:
                parsed[found[1]] = (found[2], float(found[3]))
            except ValueError:
                raise typer.BadParameter(f"{item!r}: the value is not a number", param_hint="--set") from None
        answer = run(lambda r: r.lineage.set_degradation_thresholds(uri, parsed))
    else:
        answer = run(lambda r: r.lineage.degradation_thresholds(uri))
    if output is Output.json:
        echo_json(as_dict(answer))
        return
    names = {1: ">=", 2: ">", 3: "<=", 4: "<"}
    for t in answer.thresholds:
        console.print(f"{t.metric} {names.get(t.comparison, '?')} {t.threshold:g}")
    if not answer.thresholds:
        console.print("no degradation thresholds")
