"""Signed envelopes against the running catalog (issue 12, item 6): records produced straight
onto the topic -- unsigned, signed by an untrusted key, signed by a key that claims a trusted
id, or a genuine record with its payload changed -- change no read model, are recorded with
their position and reason, and a replay reaches the same verdicts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.catalog.main import spec
from modelreg.eventlog import GENESIS_HASH, EventContext, Position, build_envelope, content_hash, encode
from modelreg.eventlog.integrity import NO_INTEGRITY, LogIntegrity
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.projections.replay import BOOKKEEPING_TABLES, digest, rebuild
from modelreg.projections.status import projector_status
from modelreg.runtime.settings import Settings
from tests.helpers import log_envelopes, serving, unique, with_own_topics

TABLES = [*CatalogProjection.read_model_tables, *BOOKKEEPING_TABLES]


def forged_create(stream: str) -> Envelope:
    return build_envelope(
        stream=stream,
        payload_field="registered_model_created",
        payload=events_pb2.RegisteredModelCreated(
            registered_model=catalog_pb2.RegisteredModel(name=stream, description="forged")
        ),
        expected_revision=0,
        prev_hash=GENESIS_HASH,
        source="modelreg/catalog",
        context=EventContext(actor="mallory"),
    )


def forged_update(stream: str, revision: int, head: bytes) -> Envelope:
    return build_envelope(
        stream=stream,
        payload_field="registered_model_updated",
        payload=events_pb2.RegisteredModelUpdated(
            registered_model=catalog_pb2.RegisteredModel(name=stream, description="pwned"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        expected_revision=revision,
        prev_hash=head,
        source="modelreg/catalog",
        context=EventContext(actor="mallory"),
    )


async def produce(kafka: KafkaSettings, topic: str, integrity: LogIntegrity, envelope: Envelope) -> Position:
    """Appends as a process holding `integrity`'s key would (or none)."""
    log = KafkaEventLog(replace(kafka, integrity=integrity))
    await log.start()
    try:
        return await log.append(topic, envelope)
    finally:
        await log.stop()


async def wait_folded(conn: asyncpg.Connection, schema: str, positions: list[Position]) -> None:
    deadline = time.monotonic() + 60
    for p in positions:
        while (
            await conn.fetchval(
                f'SELECT next_offset FROM "{schema}".checkpoints WHERE topic = $1 AND partition = $2',
                p.topic,
                p.partition,
            )
            or 0
        ) <= p.offset:
            assert time.monotonic() < deadline, f"{p} was never folded"
            await asyncio.sleep(0.05)


async def test_forged_records_change_no_read_model_and_replay_rejects_them_too(settings: Settings) -> None:
    run = with_own_topics(settings, "signed")
    assert run.kafka.integrity.required and run.kafka.integrity.signer is not None
    key_id = run.kafka.integrity.signer.key_id
    schema, clean, open_replay = unique("signed_"), unique("signed_replay_"), unique("unverified_")
    topic = run.kafka.topic("modelreg.catalog.v1")
    real = "namespaces/signed/models/real"
    conn = await asyncpg.connect(run.pg_dsn)
    try:
        async with serving(spec(schema), run) as host:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                await stub.CreateRegisteredModel(
                    catalog_pb2.CreateRegisteredModelRequest(
                        parent="namespaces/signed",
                        registered_model_id="real",
                        registered_model=catalog_pb2.RegisteredModel(description="genuine"),
                    ),
                    timeout=30,
                )
                before = await stub.GetRegisteredModel(
                    catalog_pb2.GetRegisteredModelRequest(name=real), timeout=30
                )
                revision, head = await conn.fetchrow(
                    f'SELECT revision, hash FROM "{schema}".stream_heads WHERE stream = $1', real
                )
                (genuine,) = [e for e in await log_envelopes(run.kafka, topic) if e.stream == real]
                assert genuine.signing_key_id == key_id and len(genuine.signature) == 64

                # Each would be accepted if signatures were not checked: right revision, right chain.
                stranger = LogIntegrity.generated("mallory")
                impostor = LogIntegrity.generated(key_id)  # claims the trusted key's id
                tampered = Envelope()
                tampered.CopyFrom(genuine)
                tampered.actor = "mallory"
                tampered.registered_model_created.registered_model.description = "pwned"
                tampered.hash = content_hash(tampered)
                forged = [
                    (NO_INTEGRITY, forged_create("namespaces/signed/models/forged")),
                    (stranger, forged_update(real, revision, bytes(head))),
                    (impostor, forged_update(real, revision, bytes(head))),
                ]
                positions = [await produce(run.kafka, topic, i, e) for i, e in forged]
                raw = KafkaEventLog(run.kafka)
                await raw.start()
                try:
                    positions.append(await raw.append_raw(topic, real.encode(), encode(tampered)))
                finally:
                    await raw.stop()
                await wait_folded(conn, schema, positions)

                after = await stub.GetRegisteredModel(
                    catalog_pb2.GetRegisteredModelRequest(name=real), timeout=30
                )
                assert after == before
                assert after.created_by != "mallory" and after.description == "genuine"
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.GetRegisteredModel(
                        catalog_pb2.GetRegisteredModelRequest(name="namespaces/signed/models/forged"),
                        timeout=30,
                    )
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND

                # A genuine write afterwards is judged against the genuine head: accepted.
                updated = await stub.UpdateRegisteredModel(
                    catalog_pb2.UpdateRegisteredModelRequest(
                        registered_model=catalog_pb2.RegisteredModel(name=real, description="still mine"),
                        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
                    ),
                    timeout=30,
                )
                assert updated.description == "still mine"

            rejected = await conn.fetch(
                f'SELECT topic, partition, "offset", event_id, actor, signing_key_id, reason'
                f' FROM "{schema}".rejected_records ORDER BY partition, "offset"'
            )
            assert [(r["topic"], r["partition"], r["offset"]) for r in rejected] == sorted(
                (p.topic, p.partition, p.offset) for p in positions
            )
            by_event = {r["event_id"]: r for r in rejected if r["event_id"] != genuine.event_id}
            assert {r["reason"] for r in rejected} == {
                "the envelope is not signed",
                "signed by an untrusted key 'mallory'",
                f"the signature by {key_id!r} does not verify",
            }
            assert all(r["actor"] == "mallory" for r in rejected)
            # `modelreg ops status` counts them per partition.
            status = await projector_status(conn, run.kafka, "catalog", schema)
            assert sum(p.rejected for p in status) == len(positions)
            # Rejected records leave no outcome: their event ids are not used up.
            forged_ids = [e.event_id for _, e in forged]
            assert set(by_event) == set(forged_ids)
            assert not await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".event_outcomes WHERE event_id = ANY($1::uuid[])', forged_ids
            )

        # A replay reaches the same verdicts, row for row.
        pool = await asyncpg.create_pool(run.pg_dsn, min_size=1, max_size=4)
        try:
            await rebuild(pool, schema=clean, topic=topic, handler=CatalogProjection(), kafka=run.kafka)
            # The control: folded without verification, the forged create counts.
            unverified = replace(run.kafka, integrity=NO_INTEGRITY)
            await rebuild(
                pool, schema=open_replay, topic=topic, handler=CatalogProjection(), kafka=unverified
            )
        finally:
            await pool.close()
        assert await digest(conn, clean, TABLES) == await digest(conn, schema, TABLES)
        assert (
            await conn.fetchval(
                f'SELECT created_by FROM "{open_replay}".registered_models WHERE name = $1',
                "namespaces/signed/models/forged",
            )
            == "mallory"
        )
    finally:
        for s in (schema, clean, open_replay):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await conn.close()


async def test_a_service_whose_own_record_is_rejected_answers_failed_precondition(settings: Settings) -> None:
    """Issue 13: a service signing with a key its fold does not trust (an API and a projector
    configured apart, a key rotated on one side only) used to wait for its own record, find no
    outcome (a REJECTED record has none) and answer INTERNAL ("projected past ... without an
    outcome"). It answers FAILED_PRECONDITION naming the reason, and nothing changes."""
    run = with_own_topics(settings, "selfrej")
    trusted = run.kafka.integrity.trusted
    assert trusted is not None
    rotated = LogIntegrity.generated("rotated-on-one-side")
    run = replace(run, kafka=replace(run.kafka, integrity=LogIntegrity(rotated.signer, trusted)))
    schema = unique("selfrej_")
    conn = await asyncpg.connect(run.pg_dsn)
    try:
        async with serving(spec(schema), run) as host:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                create = catalog_pb2.CreateRegisteredModelRequest(
                    parent="namespaces/selfrej",
                    registered_model_id="m",
                    registered_model=catalog_pb2.RegisteredModel(description="mine"),
                    request_id="selfrej-1",
                )
                for _ in range(2):  # a retry with the same request_id gets the same answer
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        await stub.CreateRegisteredModel(create, timeout=60)
                    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                    details = refused.value.details() or ""
                    assert "signed by an untrusted key 'rotated-on-one-side'" in details, details
                    assert "MODELREG_TRUSTED_KEYS" in details
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.GetRegisteredModel(
                        catalog_pb2.GetRegisteredModelRequest(name="namespaces/selfrej/models/m"), timeout=30
                    )
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        reasons = [r["reason"] for r in await conn.fetch(f'SELECT reason FROM "{schema}".rejected_records')]
        assert reasons == ["signed by an untrusted key 'rotated-on-one-side'"] * 2
    finally:
        await conn.close()
