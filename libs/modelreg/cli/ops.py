"""`modelreg ops`: operating the log and the read models: archive, restore, verify an archive;
replay, status, as-of.

They talk to PostgreSQL and the broker, not to the services (except as-of), so they read
the services' own settings (MODELREG_PG_DSN, MODELREG_KAFKA_BOOTSTRAP,
MODELREG_TOPIC_PREFIX, and the trusted keys MODELREG_TRUSTED_KEYS, so a replay verifies
signatures as the live folds do) or the same values as options.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from modelreg.archive import CorruptArchive, load_manifest
from modelreg.archive.config import ARCHIVE_ENV, open_segment_store
from modelreg.archive.kafka import Archiver, RestoreRefused
from modelreg.archive.restore import PartitionSummary, restore, verify_archive
from modelreg.cli.output import Output, OutputOption, as_dict, run
from modelreg.client.asof import ModelAsOf, rfc3339
from modelreg.eventlog.integrity import LogIntegrity
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.filtering.lexer import parse_timestamp
from modelreg.projections.schema import quote_schema
from modelreg.projections.shadow import (
    Checkpoints,
    ReadModel,
    ReplayResult,
    build,
    cut_at,
    replay_into_shadow,
)
from modelreg.projections.status import PartitionStatus, mark_stuck, projector_status
from modelreg.runtime.services import UnknownService, service_names, service_spec

app = typer.Typer(
    help="Operate the log and the read models: archive, restore, verify, replay, status, as-of.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)
log = structlog.get_logger(__name__)

T = TypeVar("T")

ARCHIVE_URL_HELP = f"archive location: file:///path or s3://bucket/prefix?endpoint=host:port (${ARCHIVE_ENV})"


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@app.command()
def archive(
    to: str = typer.Option(..., "--to", envvar=ARCHIVE_ENV, help=ARCHIVE_URL_HELP),
    kafka: str = typer.Option(..., envvar="MODELREG_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers"),
    topic_prefix: str = typer.Option(
        "", envvar="MODELREG_TOPIC_PREFIX", help="prefix of the modelreg topics"
    ),
    follow: bool = typer.Option(
        False, "--follow", help="keep following; SIGINT/SIGTERM drain to the end and stop"
    ),
    poll_ms: int = typer.Option(50, envvar="MODELREG_ARCHIVE_POLL_MS", help="how often a follower polls"),
) -> None:
    """Copy every modelreg topic, in order, to append-only segments; resumes where it stopped."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        archiver = Archiver(
            open_segment_store(to), bootstrap_servers=kafka, topic_prefix=topic_prefix, poll_ms=poll_ms
        )
        if follow:
            log.info("archive.started", to=to, follow=True, poll_ms=poll_ms)
        stats = await archiver.run(follow=follow, stop=stop)
        log.info("archive.stopped", records=stats.records, segments=stats.segments, positions=stats.positions)
        console.print(
            f"archived {stats.records} records in {stats.segments} segments "
            f"({stats.per_second:,.0f} records/s); next offsets: {stats.positions}",
            highlight=False,
        )

    _run(run())


def _summary_table(title: str, partitions: dict[str, dict[int, PartitionSummary]]) -> Table:
    table = Table(title=title)
    for column in ("topic", "partition", "records", "last offset", "streams", "digest"):
        table.add_column(column)
    for topic, summaries in partitions.items():
        for partition, summary in summaries.items():
            table.add_row(
                topic,
                str(partition),
                str(summary.records),
                str(summary.last_offset),
                str(len(summary.chain_heads)),
                summary.digest[:16],
            )
    return table


@app.command("verify-archive")
def verify_archive_command(
    source: str = typer.Option(..., "--from", envvar=ARCHIVE_ENV, help=ARCHIVE_URL_HELP),
) -> None:
    """Check an archive offline: segment checksums, index continuity, contiguous offsets."""
    try:
        report = _run(verify_archive(open_segment_store(source)))
    except CorruptArchive as error:
        err_console.print(f"[red]archive is corrupt:[/] {error}", highlight=False)
        raise typer.Exit(2) from None
    console.print(_summary_table("archive", report.partitions))
    console.print(f"archive OK: {report.records} records in {report.segments} segments", highlight=False)


@app.command("restore")
def restore_command(
    source: str = typer.Option(..., "--from", envvar=ARCHIVE_ENV, help=ARCHIVE_URL_HELP),
    kafka: str = typer.Option(
        ..., envvar="MODELREG_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers (an empty cluster)"
    ),
) -> None:
    """Recreate the archived topics in an empty cluster with identical offsets, then verify."""
    try:
        report = _run(restore(open_segment_store(source), kafka))
    except CorruptArchive as error:
        err_console.print(f"[red]archive is corrupt, nothing restored:[/] {error}", highlight=False)
        raise typer.Exit(2) from None
    except RestoreRefused as error:
        err_console.print(f"[red]restore refused:[/] {error}", highlight=False)
        raise typer.Exit(3) from None
    console.print(_summary_table("restored", report.restored))
    problems = report.mismatches()
    if problems:
        for problem in problems:
            err_console.print(f"[red]mismatch:[/] {problem}", highlight=False)
        raise typer.Exit(1)
    console.print(
        f"restored {report.records} records ({report.per_second:,.0f} records/s); "
        "record counts, last offsets, record digests and chain heads match the archive",
        highlight=False,
    )


EXIT_MISMATCH = 10


DsnOption = typer.Option(..., "--pg-dsn", envvar="MODELREG_PG_DSN", help="PostgreSQL of the read models")
KafkaOption = typer.Option(
    ..., "--kafka", envvar="MODELREG_KAFKA_BOOTSTRAP", help="bootstrap servers of the log"
)
PrefixOption = typer.Option("", "--topic-prefix", envvar="MODELREG_TOPIC_PREFIX", help="the services' prefix")


def read_model(service: str, kafka: KafkaSettings) -> ReadModel:
    spec = service_spec(service)
    return ReadModel(
        service=spec.name,
        schema=spec.schema,
        routes={kafka.topic(logical): handler for logical, handler in spec.projections},
    )


def selected(service: str) -> list[str]:
    try:
        return service_names(service)
    except UnknownService as error:
        err_console.print(f"[red]{error}[/]")
        raise typer.Exit(5) from None


class EventsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "", style="cyan")


@app.command()
def replay(
    service: str = typer.Argument("all", help="catalog, versioning, lineage, promotion, audit or all"),
    swap: bool = typer.Option(False, "--swap", help="swap the rebuilt schema in when it matches"),
    schema_change: bool = typer.Option(
        False, "--schema-change", help="the read model's DDL changed: swap even where rows differ"
    ),
    as_of: str = typer.Option(
        "",
        "--as-of",
        help="TIME (RFC 3339) or OFFSETS (topic:partition=offset,...): build the registry as it stood then",
    ),
    into: str = typer.Option("", "--into", help="with --as-of: the schema (SCHEMA_<service> for all)"),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="processes that fold the log (default: one per partition from 20,000 events, else 1)",
    ),
    pg_dsn: str = DsnOption,
    kafka: str = KafkaOption,
    topic_prefix: str = PrefixOption,
    output: Output = OutputOption,
) -> None:
    """Rebuild read models into a shadow schema, compare digests, optionally swap it in.

    The rebuild folds the log from offset 0 while the services keep serving; with --swap
    the shadow replaces the live schema atomically. Exits 10 on a mismatch, naming the
    table and the first differing row's key."""
    settings = KafkaSettings(
        bootstrap_servers=kafka, topic_prefix=topic_prefix, integrity=LogIntegrity.from_env()
    )
    models = [read_model(name, settings) for name in selected(service)]
    if as_of or into:
        _replay_as_of(pg_dsn, settings, models, as_of, into, output, workers)
        return
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed:>9,.0f}/{task.total:<9,.0f}"),
        EventsPerSecond(),
        TimeElapsedColumn(),
        console=err_console,
        disable=output is Output.json,
    ) as progress:

        def track(name: str) -> tuple[Callable[[int], None], Callable[[int], None]]:
            task = progress.add_task(name, total=0)
            state = {"total": 0}

            def grow(count: int) -> None:
                state["total"] += count
                progress.update(task, total=state["total"])

            return (lambda n: progress.advance(task, n)), grow

        results = asyncio.run(_replay(pg_dsn, settings, models, swap, schema_change, track, workers))
    _report_replay(results, output)
    if not schema_change and not all(r.matches for r in results):
        raise typer.Exit(EXIT_MISMATCH)


async def _replay(
    dsn: str,
    kafka: KafkaSettings,
    models: list[ReadModel],
    swap: bool,
    schema_change: bool,
    track: Callable[[str], tuple[Callable[[int], None], Callable[[int], None]]],
    workers: int | None,
) -> list[ReplayResult]:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
    try:
        results = []
        for model in models:
            advance, grow = track(model.service)
            results.append(
                await replay_into_shadow(
                    pool,
                    model,
                    kafka,
                    shadow=f"{model.schema}_shadow",
                    swap=swap,
                    schema_change=schema_change,
                    on_records=advance,
                    on_target=grow,
                    dsn=dsn,
                    workers=workers,
                )
            )
        return results
    finally:
        await pool.close()


def _report_replay(results: list[ReplayResult], output: Output) -> None:
    if output is Output.json:
        typer.echo(
            json.dumps(
                [
                    {
                        "service": r.service,
                        "events": r.events,
                        "seconds": round(r.seconds, 3),
                        "matches": r.matches,
                        "swapped": r.swapped,
                        "difference": (
                            {
                                "table": r.difference.table,
                                "key": json.loads(r.difference.key) if r.difference.key else None,
                                "live": r.difference.live,
                                "replayed": r.difference.shadow,
                            }
                            if r.difference
                            else None
                        ),
                    }
                    for r in results
                ],
                indent=2,
            )
        )
        return
    table = Table(title="replay")
    for column in ("service", "events", "events/s", "digest", "swapped"):
        table.add_column(column)
    for r in results:
        rate = f"{r.events / r.seconds:,.0f}" if r.seconds else ""
        verdict = "[green]equal[/]" if r.matches else "[red]MISMATCH[/]"
        table.add_row(r.service, f"{r.events:,}", rate, verdict, "yes" if r.swapped else "no")
    console.print(table)
    for r in results:
        if r.difference is not None:
            d = r.difference
            console.print(
                f"[red]{r.service}: table {d.table} differs first at row key {d.key}[/]\n"
                f"  live:     {d.live}\n  replayed: {d.shadow}"
            )


def parse_cut(text: str) -> datetime | Checkpoints:
    """TIME or OFFSETS (`topic:partition=offset,...`, exclusive ends) of --as-of."""
    if (moment := parse_timestamp(text)) is not None:
        return moment
    cut: Checkpoints = {}
    for item in text.split(","):
        position, _, offset = item.strip().rpartition("=")
        topic, _, partition = position.rpartition(":")
        if not (topic and partition.isdigit() and offset.isdigit()):
            raise typer.BadParameter(
                f"{item!r} is neither an RFC 3339 time nor topic:partition=offset", param_hint="--as-of"
            )
        cut[(topic, int(partition))] = int(offset)
    return cut


def _replay_as_of(
    dsn: str,
    kafka: KafkaSettings,
    models: list[ReadModel],
    as_of: str,
    into: str,
    output: Output,
    workers: int | None,
) -> None:
    if not (as_of and into):
        raise typer.BadParameter("--as-of and --into go together", param_hint="--as-of/--into")
    cut = parse_cut(as_of)
    schemas = {m.service: into if len(models) == 1 else f"{into}_{m.service}" for m in models}
    for schema in schemas.values():
        try:
            quote_schema(schema)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--into") from None

    async def build_all() -> list[dict[str, object]]:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
        try:
            built = []
            for model in models:
                if isinstance(cut, datetime):
                    target = await cut_at(kafka, list(model.routes), cut)
                else:
                    target = {key: offset for key, offset in cut.items() if key[0] in model.routes}
                events = await build(
                    pool, model, kafka, schema=schemas[model.service], target=target, dsn=dsn, workers=workers
                )
                built.append(
                    {
                        "service": model.service,
                        "schema": schemas[model.service],
                        "events": events,
                        "offsets": {f"{t}:{p}": o for (t, p), o in sorted(target.items())},
                    }
                )
            return built
        finally:
            await pool.close()

    built = asyncio.run(build_all())
    if output is Output.json:
        typer.echo(json.dumps(built, indent=2))
        return
    for item in built:
        console.print(
            f"{item['service']}: {item['events']:,} events folded into schema {item['schema']}; serve it with"
            f" `python -m modelreg.{item['service']} serve --schema {item['schema']} --read-only`"
        )


@app.command()
def status(
    service: str = typer.Argument("all", help="catalog, versioning, lineage, promotion, audit or all"),
    window: float = typer.Option(2.0, "--window", help="seconds between the two samples that judge STUCK"),
    archive_url: str = typer.Option(
        "", "--archive", envvar=ARCHIVE_ENV, help="the archive, to show how far it has copied each partition"
    ),
    pg_dsn: str = DsnOption,
    kafka: str = KafkaOption,
    topic_prefix: str = PrefixOption,
    output: Output = OutputOption,
) -> None:
    """Projector positions: checkpoint, high watermark, lag, last batch, verdicts, STUCK.

    Per service, projection and partition; STUCK when a partition has lag and it has not
    shrunk over --window seconds."""
    settings = KafkaSettings(
        bootstrap_servers=kafka, topic_prefix=topic_prefix, integrity=LogIntegrity.from_env()
    )
    models = [read_model(name, settings) for name in selected(service)]
    rows = asyncio.run(_status(pg_dsn, settings, models, window))
    if archive_url:
        manifest = asyncio.run(load_manifest(open_segment_store(archive_url)))
        rows = [
            replace(
                r,
                archived=manifest.topics[r.topic].next_offset(r.partition)
                if r.topic in manifest.topics
                else 0,
            )
            for r in rows
        ]
    if output is Output.json:
        typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    table = Table(title="projectors")
    for column in (
        "service",
        "projection",
        "topic",
        "partition",
        "checkpoint",
        "high watermark",
        "lag",
        "last applied",
        "conflicts",
        "aborts",
        "duplicates",
        "quarantined",
        "rejected",
        "archived to",
        "state",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.service,
            r.projection,
            r.topic,
            str(r.partition),
            str(r.checkpoint),
            "?" if r.high_watermark is None else str(r.high_watermark),
            "?" if r.lag is None else str(r.lag),
            r.last_applied.isoformat(timespec="seconds") if r.last_applied else "-",
            str(r.conflicts),
            str(r.aborts),
            str(r.duplicates),
            str(r.quarantined),
            str(r.rejected),
            "-" if r.archived is None else str(r.archived),
            _state(r),
        )
    console.print(table)


def _state(r: PartitionStatus) -> str:
    if r.stuck:
        return "[red]STUCK[/]"
    if r.quarantined:
        return "[red]DEGRADED[/]"  # moving on, but the read model lacks the quarantined events
    return "[yellow]behind[/]" if r.lag else "[green]ok[/]"


async def _status(
    dsn: str, kafka: KafkaSettings, models: list[ReadModel], window: float
) -> list[PartitionStatus]:
    conn = await asyncpg.connect(dsn)
    try:

        async def sample() -> list[PartitionStatus]:
            rows = []
            for model in models:
                rows.extend(await projector_status(conn, kafka, model.service, model.schema))
            return rows

        first = await sample()
        await asyncio.sleep(window)  # the sampling window itself, not a synchronisation
        return mark_stuck(first, await sample())
    finally:
        await conn.close()


@app.command("as-of")
def as_of(
    time: str = typer.Argument(..., help="RFC 3339, e.g. 2026-12-01T10:00:00Z"),
    model: str = typer.Argument(..., help="ns/model"),
    output: Output = OutputOption,
) -> None:
    """What each stage and alias of a model pointed to at TIME, and why.

    For each: the version, the move that set it (who requested, who approved), and what
    the version was trained on (datasets with digests, code commits), from history."""
    moment = parse_timestamp(time)
    if moment is None:
        raise typer.BadParameter(f"{time!r} is not an RFC 3339 time with an offset", param_hint="TIME")
    answer = run(lambda registry: registry.as_of(model, moment))
    if output is Output.json:
        typer.echo(json.dumps(as_of_document(answer), indent=2))
        return
    table = Table(title=f"{answer.model} at {rfc3339(answer.time)}")
    for column in (
        "pointer",
        "version",
        "semver",
        "moved",
        "requested by",
        "approved by",
        "datasets",
        "code",
    ):
        table.add_column(column)
    for entry in answer.entries:
        move = entry.move
        records = entry.lineage
        table.add_row(
            entry.pointer,
            str(entry.version),
            entry.model_version.semver,
            rfc3339(move.apply_time.ToDatetime(tzinfo=UTC)) if move else "-",
            move.requester if move else "-",
            ", ".join(a.approver for a in move.approvals) if move else "-",
            "\n".join(f"{d.uri} {d.digest}" for r in records for d in r.datasets) or "-",
            "\n".join(f"{c.repo}@{c.commit}" for r in records for c in r.code) or "-",
        )
    console.print(table)


def as_of_document(answer: ModelAsOf) -> dict[str, object]:
    return {
        "model": answer.model,
        "time": rfc3339(answer.time),
        "pointers": as_dict(answer.pointers),
        "entries": [
            {
                "pointer": e.pointer,
                "version": e.version,
                "move": as_dict(e.move) if e.move else None,
                "model_version": as_dict(e.model_version),
                "lineage": [as_dict(r) for r in e.lineage],
            }
            for e in answer.entries
        ],
    }
