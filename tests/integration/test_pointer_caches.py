"""The promotion reference caches (versioning's, lineage's) fold a batch to its net effect
through one shared reducer; each must end exactly where folding the same events one at a
time (in log order) ends."""

from __future__ import annotations

import random

import asyncpg
import pytest
from google.protobuf.message import Message

from modelreg.eventlog import GENESIS_HASH, EventContext, Position, build_envelope
from modelreg.eventlog.envelope import occurred_at
from modelreg.gen.promotion.v1 import events_pb2 as promotion
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.lineage.adapters.caches import PointerCache
from modelreg.projections.batch import AcceptedEvent, ProjectionHandler
from modelreg.projections.replay import digest
from modelreg.projections.schema import quote_schema
from modelreg.versioning.adapters.caches import PointersCache
from tests.helpers import unique

MODELS = ("namespaces/n/models/a", "namespaces/n/models/b")


def random_events(rng: random.Random, count: int) -> list[AcceptedEvent]:
    def split(environment: str) -> promotion_pb2.Deployment:
        versions = rng.sample(range(1, 6), rng.randint(1, 3))
        weights = [promotion_pb2.TrafficWeight(version=v, percent=100 // len(versions)) for v in versions]
        return promotion_pb2.Deployment(environment=environment, weights=weights)

    def pointer() -> str:
        return rng.choice(["champion", "STAGING", "PRODUCTION", "deployment:prod#2"])

    events = []
    for offset in range(count):
        model = rng.choice(MODELS)
        field: str
        payload: Message
        match rng.randrange(4):
            case 0:
                field = "pointer_moved"
                payload = promotion.PointerMoved(model=model, pointer=pointer(), version=rng.randint(0, 5))
            case 1:
                field = "pointer_removed"
                payload = promotion.PointerRemoved(model=model, pointer=pointer())
            case _:
                field = "transition_applied"
                payload = promotion.TransitionApplied(
                    moved=[
                        promotion.PointerMoved(model=model, pointer=pointer(), version=rng.randint(1, 5))
                        for _ in range(rng.randint(0, 2))
                    ],
                    removed=[promotion.PointerRemoved(model=model, pointer=pointer())],
                    deployments=[split(e) for e in rng.sample(["prod", "canary"], rng.randint(0, 2))],
                )
        envelope = build_envelope(
            stream=model,
            payload_field=field,
            payload=payload,
            expected_revision=-1,
            prev_hash=GENESIS_HASH,
            source="test",
            context=EventContext(actor="t"),
        )
        events.append(AcceptedEvent(envelope, offset + 1, Position("t", 0, offset), occurred_at(envelope)))
    return events


# Versioning keeps deployments' splits as pointers; lineage keeps stages and aliases only.
@pytest.mark.parametrize("cache", [PointersCache(), PointerCache()], ids=["versioning", "lineage"])
async def test_a_batch_ends_where_one_event_at_a_time_ends(database: str, cache: ProjectionHandler) -> None:
    batched, single = unique("pointers_batched_"), unique("pointers_single_")
    conn = await asyncpg.connect(database)
    try:
        for schema in (batched, single):
            await conn.execute(f"CREATE SCHEMA {quote_schema(schema)}; {cache.ddl(schema)}")
        for seed in range(30):
            rng = random.Random(seed)
            events = random_events(rng, rng.randint(1, 25))
            cut = rng.randint(0, len(events))
            # Two batches, so stored pointers meet the next batch's clears.
            for part in (events[:cut], events[cut:]):
                async with conn.transaction():
                    await cache.apply(conn, batched, part)
            for event in events:
                async with conn.transaction():
                    await cache.apply(conn, single, [event])
            tables = cache.read_model_tables
            assert await digest(conn, batched, tables) == await digest(conn, single, tables), seed
    finally:
        for schema in (batched, single):
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_schema(schema)} CASCADE")
        await conn.close()


async def test_versioning_keeps_deployment_splits_and_lineage_keeps_stages_only(database: str) -> None:
    model = MODELS[0]
    split = promotion_pb2.Deployment(
        environment="prod", weights=[promotion_pb2.TrafficWeight(version=v, percent=50) for v in (2, 3)]
    )
    applied = promotion.TransitionApplied(
        moved=[promotion.PointerMoved(model=model, pointer="PRODUCTION", version=3)], deployments=[split]
    )
    envelope = build_envelope(
        stream=model,
        payload_field="transition_applied",
        payload=applied,
        expected_revision=-1,
        prev_hash=GENESIS_HASH,
        source="test",
        context=EventContext(actor="t"),
    )
    schema = unique("pointers_kept_")
    conn = await asyncpg.connect(database)
    try:
        s = quote_schema(schema)
        await conn.execute(f"CREATE SCHEMA {s}; {PointersCache().ddl(schema)} {PointerCache().ddl(schema)}")
        async with conn.transaction():
            for cache in (PointersCache(), PointerCache()):
                await cache.apply(
                    conn, schema, [AcceptedEvent(envelope, 1, Position("t", 0, 0), occurred_at(envelope))]
                )
        query = "SELECT pointer, version FROM {}.{} ORDER BY pointer"
        assert [tuple(r) for r in await conn.fetch(query.format(s, "version_pointers"))] == [
            ("PRODUCTION", 3),
            ("deployment:prod#2", 2),
            ("deployment:prod#3", 3),
        ]
        assert [tuple(r) for r in await conn.fetch(query.format(s, "stage_pointers"))] == [("PRODUCTION", 3)]
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_schema(schema)} CASCADE")
        await conn.close()
