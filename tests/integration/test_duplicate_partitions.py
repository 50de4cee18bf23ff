"""Duplicates are decided the same whatever the partition order (DESIGN.md rule 12, issue 13):
every record of a live catalog copied onto its own partition and onto another one, with
genuine writes after the copies. The live projector neither wedges nor double-counts, the
copies on another partition are rejected by position, and a replay with one worker and one
with two worker processes give the live digest."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import grpc
from aiokafka import AIOKafkaProducer
from google.protobuf import field_mask_pb2

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.catalog.main import spec
from modelreg.eventlog import decode
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.projections.batch import Record
from modelreg.projections.replay import BOOKKEEPING_TABLES, digest, read_log, rebuild_all
from modelreg.runtime.settings import Settings
from tests.helpers import serving, unique, with_own_topics

TABLES = [*CatalogProjection.read_model_tables, *BOOKKEEPING_TABLES]
MODELS = 9


async def records_of(settings: Settings, topic: str) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    async for partition, batch in read_log(settings.kafka, topic):
        out.setdefault(partition, []).extend(batch)
    return out


async def wait_caught_up(conn: asyncpg.Connection, schema: str, ends: dict[int, int], topic: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        rows = await conn.fetch(
            f'SELECT partition, next_offset FROM "{schema}".checkpoints WHERE topic = $1', topic
        )
        at = {r["partition"]: r["next_offset"] for r in rows}
        if all(at.get(p, 0) >= end for p, end in ends.items()):
            return
        assert time.monotonic() < deadline, f"the projector stopped at {at}, the log ends at {ends}"
        await asyncio.sleep(0.05)


async def test_duplicates_on_the_same_and_another_partition_get_the_same_verdicts_in_every_fold(
    settings: Settings,
) -> None:
    run = with_own_topics(settings, "dups")
    assert run.partitions > 1
    schema, one, two = unique("dups_"), unique("dups_one_"), unique("dups_two_")
    topic = run.kafka.topic("modelreg.catalog.v1")
    names = [f"namespaces/dups/models/m{i}" for i in range(MODELS)]
    conn = await asyncpg.connect(run.pg_dsn)
    try:
        async with serving(spec(schema), run) as host:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)

                async def describe(name: str, text: str) -> None:
                    await stub.UpdateRegisteredModel(
                        catalog_pb2.UpdateRegisteredModelRequest(
                            registered_model=catalog_pb2.RegisteredModel(name=name, description=text),
                            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
                        ),
                        timeout=60,
                    )

                for name in names:
                    await stub.CreateRegisteredModel(
                        catalog_pb2.CreateRegisteredModelRequest(
                            parent="namespaces/dups",
                            registered_model_id=name.rsplit("/", 1)[1],
                            registered_model=catalog_pb2.RegisteredModel(description="first"),
                        ),
                        timeout=60,
                    )
                    await describe(name, "second")
                original = await records_of(run, topic)
                assert len(original) > 1, "the models should spread over several partitions"
                genuine = sum(len(r) for r in original.values())

                # Every record once more on its own partition and once on the next one.
                producer = AIOKafkaProducer(bootstrap_servers=run.kafka.bootstrap_servers, acks="all")
                await producer.start()
                moved = 0
                try:
                    partitions = sorted(original)
                    for i, partition in enumerate(partitions):
                        other = partitions[(i + 1) % len(partitions)]
                        for record in original[partition]:
                            assert record.value is not None
                            key = decode(record.value).stream.encode()
                            await producer.send_and_wait(
                                topic, value=record.value, key=key, partition=partition
                            )
                            await producer.send_and_wait(topic, value=record.value, key=key, partition=other)
                            moved += 1
                finally:
                    await producer.stop()

                # Genuine writes after the copies, on every stream: judged on the genuine heads.
                for name in names:
                    await describe(name, "third")
                ends = {p: r[-1].offset + 1 for p, r in (await records_of(run, topic)).items()}
                await wait_caught_up(conn, schema, ends, topic)

            models = await conn.fetch(f'SELECT name, description FROM "{schema}".registered_models')
            assert {r["name"]: r["description"] for r in models} == dict.fromkeys(names, "third")
            outcomes = await conn.fetch(
                f'SELECT verdict, count(*) AS n FROM "{schema}".event_outcomes GROUP BY 1'
            )
            assert {r["verdict"]: r["n"] for r in outcomes} == {"accepted": genuine + MODELS}
            rejected = await conn.fetch(f'SELECT partition, reason FROM "{schema}".rejected_records')
            assert len(rejected) == moved
            assert all(
                r["reason"].startswith(f"found on partition {r['partition']}, written to") for r in rejected
            )

        # The live verdicts, whatever the number of workers and so the order across partitions.
        pool = await asyncpg.create_pool(run.pg_dsn, min_size=1, max_size=4)
        try:
            routes = {topic: CatalogProjection()}
            await rebuild_all(pool, schema=one, routes=routes, kafka=run.kafka)
            await rebuild_all(pool, schema=two, routes=routes, kafka=run.kafka, processes=2, dsn=run.pg_dsn)
        finally:
            await pool.close()
        live = await digest(conn, schema, TABLES)
        assert await digest(conn, one, TABLES) == live
        assert await digest(conn, two, TABLES) == live
    finally:
        for s in (schema, one, two):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await conn.close()
