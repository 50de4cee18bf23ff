"""Projector replicas in a consumer group share partitions and still fold exactly once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.eventlog import GENESIS_HASH, ConsistencyToken, EventContext, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.projections.progress import ProgressListener
from modelreg.projections.replay import BOOKKEEPING_TABLES, create_schema, digest, rebuild
from modelreg.projections.runner import Projector, ProjectorSettings
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings

TABLES = [*CatalogProjection.read_model_tables, *BOOKKEEPING_TABLES]


async def test_two_replicas_share_partitions_and_match_a_replay(settings: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(settings.kafka.bootstrap_servers, topic_prefix=f"group-{run}.")
    topic = kafka.topic("modelreg.catalog.v1")
    await ensure_topics(Settings(kafka=kafka, pg_dsn=settings.pg_dsn, partitions=4), ["modelreg.catalog.v1"])
    schema, clean = f"group_{run}", f"group_{run}_clean"
    pool = await asyncpg.create_pool(settings.pg_dsn, min_size=1, max_size=6)
    handler = CatalogProjection()
    async with pool.acquire() as conn:
        await create_schema(conn, schema, [handler], fresh=True)
    group = ProjectorSettings(group_id=f"modelreg-test-{run}", session_timeout_ms=2000)
    replicas = [
        Projector(pool=pool, schema=schema, routes={topic: handler}, kafka=kafka, settings=group)
        for _ in range(2)
    ]
    progress = ProgressListener(settings.pg_dsn, schema, {topic})
    log = KafkaEventLog(kafka)
    await asyncio.gather(progress.start(), log.start(), *(r.start() for r in replicas))
    try:

        def held() -> list[int]:
            return sorted(p for r in replicas for p in r.assigned_partitions)

        # Group joins are asynchronous, and each replica hears of its share in its own callback:
        # right after the second join the first may still list all four partitions. Wait for
        # the settled split, both replicas holding some.
        for _ in range(300):
            if all(r.assigned_partitions for r in replicas) and held() == [0, 1, 2, 3]:
                break
            await asyncio.sleep(0.1)
        assert all(r.assigned_partitions for r in replicas) and held() == [0, 1, 2, 3], held()
        positions = []
        for i in range(400):
            stream = f"namespaces/group/models/m{i % 300}"  # 100 conflicting re-creations
            positions.append(
                await log.append(
                    topic,
                    build_envelope(
                        stream=stream,
                        payload_field="registered_model_created",
                        payload=events_pb2.RegisteredModelCreated(
                            registered_model=catalog_pb2.RegisteredModel(name=stream)
                        ),
                        expected_revision=0,
                        prev_hash=GENESIS_HASH,
                        source="test",
                        context=EventContext(actor="t"),
                    ),
                )
            )
            if i == 200:
                await replicas[1].stop()  # a replica leaves mid-stream; the other takes over
        assert await progress.wait_for(ConsistencyToken.after(positions).required, 60.0)
        assert all(r.batches_applied > 0 for r in replicas), "both replicas should have folded batches"
    finally:
        await asyncio.gather(
            *(r.stop() for r in replicas), progress.stop(), log.stop(), return_exceptions=True
        )
    try:
        await rebuild(pool, schema=clean, topic=topic, handler=handler, kafka=kafka)
        async with pool.acquire() as conn:
            assert await digest(conn, schema, TABLES) == await digest(conn, clean, TABLES)
            assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".registered_models') == 300
    finally:
        for s in (schema, clean):
            await pool.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await pool.close()
