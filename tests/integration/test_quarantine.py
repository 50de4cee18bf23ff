"""An event PostgreSQL refuses (a NUL byte in a description) is quarantined: the partition
moves on, the stream stays usable, health, the metric and an ERROR log show it, and a replay
quarantines the same event (DESIGN.md rule 11).

The poison goes straight onto the topic: the API refuses NUL, and the quarantine is the guard
for whatever validation ever misses."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.catalog.main import spec
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.projections.quarantine import quarantined_events
from modelreg.projections.replay import BOOKKEEPING_TABLES, digest, rebuild
from modelreg.projections.status import projector_status
from modelreg.runtime.settings import Settings
from tests.helpers import serving, unique, with_own_topics

TABLES = [*CatalogProjection.read_model_tables, *BOOKKEEPING_TABLES]


def created(stream: str, description: str) -> Envelope:
    return build_envelope(
        stream=stream,
        payload_field="registered_model_created",
        payload=events_pb2.RegisteredModelCreated(
            registered_model=catalog_pb2.RegisteredModel(name=stream, description=description)
        ),
        expected_revision=0,
        prev_hash=GENESIS_HASH,
        source="modelreg/catalog",
        context=EventContext(actor="loader"),
    )


def quarantined_metric(topic: str) -> float:
    value = REGISTRY.get_sample_value(
        "modelreg_quarantined_events_total", {"projection": "catalog", "topic": topic}
    )
    return value or 0.0


async def health_of(port: int, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return int(response.status)


async def test_a_poison_event_is_quarantined_and_the_partition_moves_on(settings: Settings) -> None:
    # One partition: the poison and everything after it share it.
    run = replace(with_own_topics(settings, "poison"), partitions=1, health_check_interval_s=0.1)
    schema, clean = unique("poisoned_"), unique("poison_replay_")
    topic = run.kafka.topic("modelreg.catalog.v1")
    poison_stream = "namespaces/poison/models/bad"
    poison = created(poison_stream, "a NUL \x00 in a description")
    conn = await asyncpg.connect(run.pg_dsn)
    try:
        with capture_logs() as logs:
            async with serving(spec(schema), run) as host:
                assert host.port is not None
                assert (
                    await health_of(host.port, "catalog.projection") == health_pb2.HealthCheckResponse.SERVING
                )
                counted_before = quarantined_metric(topic)
                log = KafkaEventLog(run.kafka)
                await log.start()
                try:
                    # Appended together, so the poison sits inside one batch with its neighbours.
                    positions = await asyncio.gather(
                        log.append(topic, created("namespaces/poison/models/before", "fine")),
                        log.append(topic, poison),
                        log.append(topic, created("namespaces/poison/models/after", "fine")),
                        # The poison never counted, so its stream is still at revision 0.
                        log.append(topic, created(poison_stream, "fixed")),
                    )
                finally:
                    await log.stop()
                poison_position = positions[1]

                # A write through the API, on the same partition, after the poison.
                async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
                    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                    await stub.CreateRegisteredModel(
                        catalog_pb2.CreateRegisteredModelRequest(
                            parent="namespaces/poison",
                            registered_model_id="later",
                            registered_model=catalog_pb2.RegisteredModel(description="via the api"),
                        ),
                        timeout=30,
                    )

                names = await conn.fetch(f'SELECT name, description FROM "{schema}".registered_models')
                assert {r["name"]: r["description"] for r in names} == {
                    "namespaces/poison/models/before": "fine",
                    "namespaces/poison/models/after": "fine",
                    poison_stream: "fixed",
                    "namespaces/poison/models/later": "via the api",
                }
                quarantine = await quarantined_events(conn, schema)
                assert [(q.topic, q.partition, q.offset, q.event_id, q.stream) for q in quarantine] == [
                    (topic, poison_position.partition, poison_position.offset, poison.event_id, poison_stream)
                ]
                assert "CharacterNotInRepertoire" in quarantine[0].error
                assert quarantine[0].event_type == "registered_model_created"
                verdict = await conn.fetchval(
                    f'SELECT verdict FROM "{schema}".event_outcomes WHERE event_id = $1', poison.event_id
                )
                assert verdict == "quarantined"
                # ops status shows the partition degraded (it has moved on: no lag, not STUCK).
                (status,) = await projector_status(conn, run.kafka, "catalog", schema)
                assert (status.quarantined, status.checkpoint) == (1, status.high_watermark)
                assert quarantined_metric(topic) == counted_before + 1

                deadline = time.monotonic() + 30
                while (
                    await health_of(host.port, "catalog.projection")
                    != health_pb2.HealthCheckResponse.NOT_SERVING
                ):
                    assert time.monotonic() < deadline, "health never showed the quarantine"
                    await asyncio.sleep(0.05)
                # Degraded, not down: clients of the service keep being served.
                assert await health_of(host.port, "") == health_pb2.HealthCheckResponse.SERVING
        errors = [e for e in logs if e["event"] == "event_quarantined"]
        assert [(e["log_level"], e["offset"], e["event_id"]) for e in errors] == [
            ("error", poison_position.offset, poison.event_id)
        ]

        pool = await asyncpg.create_pool(run.pg_dsn, min_size=1, max_size=2)
        try:
            await rebuild(pool, schema=clean, topic=topic, handler=CatalogProjection(), kafka=run.kafka)
        finally:
            await pool.close()
        assert await quarantined_events(conn, clean) == await quarantined_events(conn, schema)
        assert await digest(conn, clean, TABLES) == await digest(conn, schema, TABLES)
    finally:
        for s in (schema, clean):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await conn.close()


async def test_a_copy_of_an_event_with_a_nul_in_its_bookkeeping_does_not_wedge_the_partition(
    settings: Settings,
) -> None:
    """A NUL in the request_id (text PostgreSQL cannot store) quarantines the event before it is
    judged. A second copy of the same record, in a later batch (a producer retrying after a lost
    acknowledgement writes one), is a duplicate of a known event id: the fold must not write its
    outcome a second time (the key is the event id), or the partition retries that batch forever."""
    run = replace(with_own_topics(settings, "nulcopy"), partitions=1)
    schema, clean = unique("nulcopy_"), unique("nulcopy_replay_")
    topic = run.kafka.topic("modelreg.catalog.v1")
    poison = build_envelope(
        stream="namespaces/nulcopy/models/bad",
        payload_field="registered_model_created",
        payload=events_pb2.RegisteredModelCreated(
            registered_model=catalog_pb2.RegisteredModel(name="namespaces/nulcopy/models/bad")
        ),
        expected_revision=0,
        prev_hash=GENESIS_HASH,
        source="modelreg/catalog",
        context=EventContext(actor="loader", request_id="r\x00"),
    )
    conn = await asyncpg.connect(run.pg_dsn)
    try:
        async with serving(spec(schema), run) as host:
            assert host.port is not None
            log = KafkaEventLog(run.kafka)
            await log.start()
            try:
                first = await log.append(topic, poison)
                await _checkpoint_passes(conn, schema, topic, first.offset)
                copy = await log.append(topic, poison)
                after = await log.append(topic, created("namespaces/nulcopy/models/after", "fine"))
            finally:
                await log.stop()
            assert copy.offset > first.offset
            # Folded past the copy: the partition moved on to the next event.
            await _checkpoint_passes(conn, schema, topic, after.offset)
            names = await conn.fetch(f'SELECT name FROM "{schema}".registered_models')
            assert [r["name"] for r in names] == ["namespaces/nulcopy/models/after"]
            quarantine = await quarantined_events(conn, schema)
            assert [(q.offset, q.event_id) for q in quarantine] == [(first.offset, poison.event_id)]
        pool = await asyncpg.create_pool(run.pg_dsn, min_size=1, max_size=2)
        try:
            await rebuild(pool, schema=clean, topic=topic, handler=CatalogProjection(), kafka=run.kafka)
        finally:
            await pool.close()
        assert await digest(conn, clean, TABLES) == await digest(conn, schema, TABLES)
    finally:
        for s in (schema, clean):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await conn.close()


async def _checkpoint_passes(conn: asyncpg.Connection, schema: str, topic: str, offset: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        next_offset = await conn.fetchval(
            f'SELECT next_offset FROM "{schema}".checkpoints WHERE topic = $1 AND partition = 0', topic
        )
        if next_offset is not None and next_offset > offset:
            return
        assert time.monotonic() < deadline, f"the projector never folded past offset {offset} ({next_offset})"
        await asyncio.sleep(0.05)
