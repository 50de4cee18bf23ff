"""Benchmarks of the write path, the read path and replay, on a fresh local stack.

    make bench            # or: python3 scripts/run.py bench [--replay-events N]

Starts Tansu, PostgreSQL (embedded unless MODELREG_PG_DSN is set) and the
catalog service as its own process, then measures from this client process.
Every latency is printed beside the floor: a gRPC health Check against the
same service over the same channel. Prints a table and writes bench/out/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from modelreg.catalog.adapters.postgres import CatalogProjection
from modelreg.cli.dev import wait_until_serving
from modelreg.devstack import LocalStack, create_database, drop_database
from modelreg.devstack.ports import free_port
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc, events_pb2
from modelreg.projections.replay import rebuild
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings

OUT = Path(__file__).parent / "out"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "n": len(samples)}


async def timed(calls: int, make_call) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await make_call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def measure_service(port: int, creates: int, gets: int, clients: int) -> dict[str, object]:
    results: dict[str, object] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        ns = f"bench{uuid.uuid4().hex[:6]}"
        for _ in range(50):  # warm-up: connections, prepared statements, JIT-free paths
            await health.Check(health_pb2.HealthCheckRequest())
        results["floor_health_check"] = percentiles(
            await timed(1000, lambda i: health.Check(health_pb2.HealthCheckRequest()))
        )

        def create(i: int, prefix: str = "m"):  # type: ignore[no-untyped-def]
            return catalog.CreateRegisteredModel(
                pb.CreateRegisteredModelRequest(
                    parent=f"namespaces/{ns}",
                    registered_model_id=f"{prefix}{i}",
                    registered_model=pb.RegisteredModel(
                        description="benchmark model", tags={"k1": "v1", "k2": "v2", "k3": "v3"}
                    ),
                )
            )

        await timed(20, lambda i: create(i, "warm"))
        results["create_sequential"] = percentiles(await timed(creates, create))
        results["get_sequential"] = percentiles(
            await timed(
                gets,
                lambda i: catalog.GetRegisteredModel(
                    pb.GetRegisteredModelRequest(name=f"namespaces/{ns}/models/m{i % creates}")
                ),
            )
        )
        per_client = creates // clients
        started = time.perf_counter()
        samples = await asyncio.gather(
            *(timed(per_client, lambda i, c=c: create(i, f"c{c}-")) for c in range(clients))
        )
        elapsed = time.perf_counter() - started
        flat = [s for client in samples for s in client]
        results[f"create_{clients}_clients"] = {**percentiles(flat), "per_second": len(flat) / elapsed}
    return results


async def measure_replay(kafka: KafkaSettings, dsn: str, events: int) -> dict[str, object]:
    kafka = KafkaSettings(kafka.bootstrap_servers, f"replay{uuid.uuid4().hex[:6]}.", linger_ms=5)
    await ensure_topics(Settings(kafka=kafka, pg_dsn=dsn), ["modelreg.catalog.v1"])
    topic = kafka.topic("modelreg.catalog.v1")
    log = KafkaEventLog(kafka)
    await log.start()
    started = time.perf_counter()
    try:
        for start in range(0, events, 2000):
            await asyncio.gather(
                *(
                    log.append(
                        topic,
                        build_envelope(
                            stream=f"namespaces/replay/models/m{i}",
                            payload_field="registered_model_created",
                            payload=events_pb2.RegisteredModelCreated(
                                registered_model=pb.RegisteredModel(
                                    name=f"namespaces/replay/models/m{i}", description="d", tags={"k": "v"}
                                )
                            ),
                            expected_revision=0,
                            prev_hash=GENESIS_HASH,
                            source="bench",
                            context=EventContext(actor="bench"),
                        ),
                    )
                    for i in range(start, min(start + 2000, events))
                )
            )
    finally:
        await log.stop()
    produce_s = time.perf_counter() - started
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        stats = await rebuild(
            pool, schema="replay_bench", topic=topic, handler=CatalogProjection(), kafka=kafka
        )
        await pool.execute('DROP SCHEMA IF EXISTS "replay_bench" CASCADE')
    finally:
        await pool.close()
    return {
        "events": stats.records,
        "seconds": stats.seconds,
        "events_per_second": stats.per_second,
        "produce_seconds": produce_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--replay-events", type=int, default=100_000)
    parser.add_argument("--scale", action="store_true", help="reserved for the 1M-version search run")
    args = parser.parse_args()
    console = Console()
    with LocalStack.start() as stack:
        database = f"modelreg_bench_{uuid.uuid4().hex[:8]}"
        dsn = asyncio.run(create_database(stack.postgres.admin_dsn, database))
        port = free_port()
        env = {
            **os.environ,
            "MODELREG_KAFKA_BOOTSTRAP": stack.kafka.bootstrap_servers,
            "MODELREG_PG_DSN": dsn,
            "MODELREG_LOG_LEVEL": "WARNING",
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "modelreg.catalog", "serve", "--port", str(port)], env=env
        )
        try:
            wait_until_serving(port, service)
            results = asyncio.run(measure_service(port, args.creates, args.gets, args.clients))
            kafka = KafkaSettings(stack.kafka.bootstrap_servers)
            results["replay"] = asyncio.run(measure_replay(kafka, dsn, args.replay_events))
        finally:
            service.terminate()
            service.wait(10)
            asyncio.run(drop_database(stack.postgres.admin_dsn, database))

    results["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "postgres": "embedded" if not os.environ.get("MODELREG_PG_DSN") else "MODELREG_PG_DSN",
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))

    floor = results["floor_health_check"]["p50_ms"]  # type: ignore[index]
    table = Table(title=f"modelreg bench: floor (health Check p50) = {floor:.2f} ms")
    for column in ("measure", "p50 ms", "p95 ms", "p99 ms", "p50 - floor", "rate"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for name, figures in results.items():
        if name in ("meta", "replay"):
            continue
        f = figures  # type: ignore[assignment]
        rate = f"{f['per_second']:.0f}/s" if "per_second" in f else ""  # type: ignore[operator]
        table.add_row(
            name,
            f"{f['p50_ms']:.2f}",
            f"{f['p95_ms']:.2f}",
            f"{f['p99_ms']:.2f}",  # type: ignore[index]
            f"{f['p50_ms'] - floor:+.2f}",
            rate,
        )  # type: ignore[index]
    replay = results["replay"]
    table.add_row(
        "replay (rebuild from offset 0)",
        "",
        "",
        "",
        "",
        f"{replay['events_per_second']:.0f} events/s over {replay['events']}",
    )  # type: ignore[index]
    console.print(table)
    console.print(
        f"targets: get p50 <= floor + 1 ms; create p50 <= 6 ms; replay >= 50k events/s. "
        f"written to {OUT / 'results.json'}"
    )


if __name__ == "__main__":
    main()
