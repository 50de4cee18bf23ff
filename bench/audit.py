"""Audit export and verify rates at 100k events (issue 15).

    make bench-audit        # python3 scripts/run.py bench-audit [--events 100000]

On a fresh local stack (Tansu, PostgreSQL): produces a synthetic registry log of about
`--events` events (catalog, versioning and promotion facts, as bench.run's replay does),
folds it into an audit schema with the audit service's own fold (rows, leaf indexes and the
Merkle frontiers; `rebuild_all`, a worker process per partition), signs a checkpoint per
partition with the service's writer and folds them, then times:

* export: `Audit.export` of the whole trail (the PostgreSQL reads, every leaf hash, the
  trees, an inclusion proof per event, JSONL, CSV, the signed manifest), as ExportAudit runs it;
* verify: `verify_bundle` of that bundle with only its public key, as `modelreg audit verify`.

Prints a table and writes bench/out/audit.json. Everything it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from bench import common
from modelreg.audit.adapters.checkpoints import CheckpointProjection, CheckpointWriter
from modelreg.audit.adapters.keys import KeyRing
from modelreg.audit.adapters.projection import AuditProjection
from modelreg.audit.adapters.reader import PostgresAuditReader
from modelreg.audit.application.use_cases import Audit
from modelreg.auditlog.bundle import verify_bundle
from modelreg.auditlog.checkpoint import Signer
from modelreg.devstack import LocalStack
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.projections.replay import rebuild, rebuild_all
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings

SCHEMA = "audit_bench"


async def measure(kafka_servers: str, dsn: str, events: int) -> dict[str, Any]:
    from bench.run import produce_registry  # bench.run imports this module for `make bench`

    per_model = 20
    kafka = KafkaSettings(kafka_servers, f"auditbench{uuid.uuid4().hex[:6]}.", linger_ms=5)
    produced, topics = await produce_registry(kafka, -(-events // (per_model + 2)), per_model)
    audit_topic = kafka.topic("modelreg.audit.v1")
    settings = Settings(kafka=kafka, pg_dsn=dsn)
    await ensure_topics(settings, ["modelreg.audit.v1"])
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        started = time.perf_counter()
        await rebuild_all(
            pool,
            schema=SCHEMA,
            routes={topic: AuditProjection(name) for name, topic in topics.items()},
            kafka=kafka,
            processes=settings.partitions,
            dsn=dsn,
        )
        fold_s = time.perf_counter() - started
        await pool.execute(CheckpointProjection().ddl(SCHEMA))
        signer = Signer.generate()
        writer = CheckpointWriter(pool, SCHEMA, kafka, audit_topic, KeyRing(signer), every=1, interval_s=0)
        log = KafkaEventLog(kafka)
        await log.start()
        try:
            signed = await writer.tick(log)
        finally:
            await log.stop()
        await rebuild(
            pool, schema=SCHEMA, topic=audit_topic, handler=CheckpointProjection(), kafka=kafka, fresh=False
        )
        reader = PostgresAuditReader(pool, SCHEMA)
        audit = Audit(reader, reader, (), signer, {})
        started = time.perf_counter()
        files = await audit.export("")
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        report = verify_bundle(files, [signer.public_key])
        verify_s = time.perf_counter() - started
        await pool.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    finally:
        await pool.close()
    return {
        "produced": produced,
        "folded_per_second": produced / fold_s,
        "checkpoints": signed,
        "events": report.events,
        "bundle_bytes": sum(len(d) for d in files.values()),
        "export_seconds": export_s,
        "export_events_per_second": report.events / export_s,
        "verify_seconds": verify_s,
        "verify_events_per_second": report.events / verify_s,
    }


def report(results: dict[str, Any], console: Console) -> None:
    table = Table(title=f"audit export and verify ({results['events']:,} events)")
    for column in ("measure", "seconds", "events/s"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row(
        "fold into the trail (+ Merkle)",
        f"{results['produced'] / results['folded_per_second']:.1f}",
        f"{results['folded_per_second']:,.0f}",
    )
    table.add_row(
        "export (ExportAudit's work)",
        f"{results['export_seconds']:.1f}",
        f"{results['export_events_per_second']:,.0f}",
    )
    table.add_row(
        "verify (offline)", f"{results['verify_seconds']:.1f}", f"{results['verify_events_per_second']:,.0f}"
    )
    console.print(table)
    console.print(f"bundle {results['bundle_bytes'] / 1e6:.1f} MB, {results['checkpoints']} checkpoints")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.audit", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with LocalStack.start() as stack, common.scratch_database(stack, "modelreg_audit_bench") as dsn:
        results = asyncio.run(measure(stack.kafka.bootstrap_servers, dsn, args.events))
    results["meta"] = common.meta(events=args.events)
    path = common.write_results(results, common.OUT / "audit.json")
    report(results, Console())
    print(f"written to {path}")


if __name__ == "__main__":
    main()
