"""Exactly-once projection: duplicate deliveries and zombie projectors change nothing."""

from __future__ import annotations

from functools import partial

import asyncpg
import pytest

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.eventlog import ConsistencyToken
from modelreg.eventlog.envelope import to_kafka_message
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.projections.batch import Fenced, Record, apply_batch
from modelreg.projections.replay import BOOKKEEPING_TABLES, create_schema, digest, read_log
from modelreg.runtime.host import ServiceHost
from tests.helpers import log_envelopes, unique

CATALOG_TABLES = [*CatalogProjection.read_model_tables, *BOOKKEEPING_TABLES]


async def test_the_same_record_produced_twice_has_no_effect(catalog_host: ServiceHost, catalog_stub) -> None:
    created = await catalog_stub.CreateRegisteredModel(
        pb.CreateRegisteredModelRequest(
            parent=f"namespaces/{unique('dup')}",
            registered_model_id="m",
            registered_model=pb.RegisteredModel(description="once"),
        )
    )
    topic = catalog_host.topic("modelreg.catalog.v1")
    [original] = [
        e for e in await log_envelopes(catalog_host.settings.kafka, topic) if e.stream == created.name
    ]
    assert catalog_host.pool is not None
    async with catalog_host.pool.acquire() as conn:
        before = await digest(conn, "catalog", CATALOG_TABLES)

    message = to_kafka_message(original)
    assert catalog_host.log is not None
    positions = [
        await catalog_host.log.append_raw(
            topic, original.stream.encode(), message.value, list(message.headers.items())
        )
        for _ in range(2)
    ]
    assert catalog_host.progress is not None
    assert await catalog_host.progress.wait_for(ConsistencyToken.after(positions).required, 10.0)

    async with catalog_host.pool.acquire() as conn:
        assert await digest(conn, "catalog", CATALOG_TABLES) == before
    got = await catalog_stub.GetRegisteredModel(pb.GetRegisteredModelRequest(name=created.name))
    assert got == created


async def test_a_zombie_projector_cannot_commit(catalog_host: ServiceHost, catalog_stub) -> None:
    """Two projectors hold the same partition; the one that lost the race is fenced off."""
    for i in range(3):
        await catalog_stub.CreateRegisteredModel(
            pb.CreateRegisteredModelRequest(
                parent=f"namespaces/{unique('zombie')}",
                registered_model_id=f"m{i}",
                registered_model=pb.RegisteredModel(),
            )
        )
    topic = catalog_host.topic("modelreg.catalog.v1")
    partition, records = [(p, r) async for p, r in read_log(catalog_host.settings.kafka, topic)][0]
    schema = f"zombie_{unique('')}"
    handler = CatalogProjection()
    conn: asyncpg.Connection = await asyncpg.connect(catalog_host.settings.pg_dsn)
    try:
        await create_schema(conn, schema, [handler], fresh=True)
        await conn.execute(
            f'INSERT INTO "{schema}".checkpoints VALUES ($1, $2, $3, 0)', handler.name, topic, partition
        )
        fold_from_0 = partial(
            apply_batch,
            conn,
            schema=schema,
            handler=handler,
            topic=topic,
            partition=partition,
            expected_next_offset=0,
            integrity=catalog_host.settings.kafka.integrity,
        )
        live_next = await fold_from_0(records=records)
        assert live_next == records[-1].offset + 1
        snapshot = await digest(conn, schema, CATALOG_TABLES)

        with pytest.raises(Fenced) as fenced:  # the zombie still believes it is at offset 0
            await fold_from_0(records=[Record(r.offset, r.value) for r in records])
        assert fenced.value.stored == live_next
        assert await digest(conn, schema, CATALOG_TABLES) == snapshot
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
