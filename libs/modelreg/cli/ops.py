"""`modelreg ops`: operating the log: archive, restore, verify an archive."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog
import typer
from rich.console import Console
from rich.table import Table

from modelreg.archive import CorruptArchive
from modelreg.archive.config import ARCHIVE_ENV, open_segment_store
from modelreg.archive.kafka import Archiver, RestoreRefused
from modelreg.archive.restore import PartitionSummary, restore, verify_archive

app = typer.Typer(help="Operate the log: archive, restore, verify.", no_args_is_help=True)
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
