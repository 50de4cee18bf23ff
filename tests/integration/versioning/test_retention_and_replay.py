"""Retention (keep last N per MAJOR line, pointer-protected versions), blob GC with a grace
period, and replay of every topic the versioning schema folds."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from modelreg.access.log import with_grants
from modelreg.eventlog import (
    ANY_REVISION,
    GENESIS_HASH,
    ConsistencyToken,
    EventContext,
    build_envelope,
    decode,
)
from modelreg.eventlog.kafka import KafkaEventLog
from modelreg.gen.promotion.v1 import events_pb2 as promotion
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from modelreg.projections import replay
from modelreg.projections.batch import AcceptedEvent, ProjectionHandler
from modelreg.projections.replay import (
    BOOKKEEPING_TABLES,
    create_schema,
    digest,
    fold_in_workers,
    read_log,
    rebuild_all,
)
from modelreg.projections.shadow import ReadModel, build, checkpoints, remaining
from modelreg.runtime.host import ServiceHost
from modelreg.versioning.adapters import codec
from modelreg.versioning.adapters.caches import CatalogModelsCache, PointersCache
from modelreg.versioning.adapters.projection import VersioningProjection
from modelreg.versioning.domain.events import VersionCreated
from modelreg.versioning.domain.values import SemVer, VersionSpec
from tests.helpers import unique
from tests.integration.versioning.helpers import (
    artifact,
    create_version,
    expect,
    ready_version,
    sha,
    upload_requests,
)

Code = grpc.StatusCode


_promotion_heads: dict[str, bytes] = {}


async def append_promotion(host: ServiceHost, model: str, field: str, payload: Message) -> str:
    """Appends a promotion fact, as the promotion service does; returns its consistency token."""
    log = KafkaEventLog(host.settings.kafka)
    await log.start()
    try:
        envelope = build_envelope(
            stream=model,
            payload_field=field,
            payload=payload,
            expected_revision=ANY_REVISION,
            prev_hash=_promotion_heads.get(model, GENESIS_HASH),
            source="modelreg/test-promotion",
            context=EventContext(actor="tester"),
        )
        _promotion_heads[model] = envelope.hash
        position = await log.append(host.topic("modelreg.promotion.v1"), envelope)
    finally:
        await log.stop()
    return ConsistencyToken.after([position]).encode()


async def move_pointer(host: ServiceHost, model: str, pointer: str, version: int) -> str:
    moved = promotion.PointerMoved(model=model, pointer=pointer, version=version, previous=0)
    return await append_promotion(host, model, "pointer_moved", moved)


async def test_retention_keeps_last_n_per_major_line_and_pointed_versions(
    versioning_stub, versioning_host, create_model
) -> None:
    model, token = await create_model()
    for semver in ("1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"):
        await ready_version(versioning_stub, model, token, semver=semver)
    pending = await create_version(versioning_stub, model, semver="0.1.0")  # never touched
    await ready_version(versioning_stub, model, semver="0.2.0")
    await versioning_stub.SetRetentionPolicy(
        pb.SetRetentionPolicyRequest(policy=pb.RetentionPolicy(model=model, keep_last_per_major=1))
    )
    promotion_token = await move_pointer(versioning_host, model, "production", 1)

    dry = await versioning_stub.ApplyRetentionPolicy(
        pb.ApplyRetentionPolicyRequest(model=model, dry_run=True),
        metadata=[("modelreg-consistency-token", promotion_token)],
    )
    # 1.0.0 (number 1) is what production points to: kept, and reported as such.
    assert [v.semver for v in dry.deleted] == ["1.1.0", "2.0.0"]
    assert list(dry.protected_versions) == [1]
    listed = await versioning_stub.ListModelVersions(pb.ListModelVersionsRequest(parent=model))
    assert all(
        v.state != pb.ModelVersion.STATE_DELETED for v in listed.model_versions
    )  # a dry run deletes nothing

    applied = await versioning_stub.ApplyRetentionPolicy(pb.ApplyRetentionPolicyRequest(model=model))
    assert [v.version for v in applied.deleted] == [2, 4]
    assert all(v.state == pb.ModelVersion.STATE_DELETED for v in applied.deleted)
    listed = await versioning_stub.ListModelVersions(pb.ListModelVersionsRequest(parent=model))
    assert sorted(v.version for v in listed.model_versions) == [1, 3, 5, pending.version, 7]
    error = await expect(
        Code.FAILED_PRECONDITION,
        versioning_stub.DeleteModelVersion(pb.DeleteModelVersionRequest(name=f"{model}/versions/1")),
    )
    assert "production" in error.details()
    again = await versioning_stub.ApplyRetentionPolicy(
        pb.ApplyRetentionPolicyRequest(model=model, dry_run=True)
    )
    assert list(again.deleted) == []


async def test_transitions_and_deployments_protect_versions(
    versioning_stub, versioning_host, create_model
) -> None:
    model, token = await create_model()
    for _ in range(4):
        await ready_version(versioning_stub, model, token)

    def split(*versions: int) -> promotion_pb2.Deployment:
        weights = [promotion_pb2.TrafficWeight(version=v, percent=100 // len(versions)) for v in versions]
        return promotion_pb2.Deployment(environment="prod", weights=weights)

    def applied(**fields: Any) -> promotion.TransitionApplied:
        return promotion.TransitionApplied(**fields)

    await append_promotion(
        versioning_host,
        model,
        "transition_applied",
        applied(
            moved=[promotion.PointerMoved(model=model, pointer="champion", version=2)],
            deployments=[split(1, 3)],
        ),
    )
    token = await append_promotion(
        versioning_host,
        model,
        "transition_applied",
        applied(
            removed=[promotion.PointerRemoved(model=model, pointer="champion", previous=2)],
            moved=[promotion.PointerMoved(model=model, pointer="production", version=4)],
            deployments=[split(3)],
        ),
    )
    meta = [("modelreg-consistency-token", token)]
    for number, pointer in ((3, "deployment:prod#3"), (4, "production")):
        error = await expect(
            Code.FAILED_PRECONDITION,
            versioning_stub.DeleteModelVersion(
                pb.DeleteModelVersionRequest(name=f"{model}/versions/{number}"), metadata=meta
            ),
        )
        assert pointer in error.details()
    for number in (1, 2):  # no longer named: the split was replaced, the alias removed
        deleted = await versioning_stub.DeleteModelVersion(
            pb.DeleteModelVersionRequest(name=f"{model}/versions/{number}")
        )
        assert deleted.state == pb.ModelVersion.STATE_DELETED


async def test_gc_lists_unreferenced_blobs_only_after_the_grace_period(
    versioning_stub, versioning_blobs, create_model
) -> None:
    model, token = await create_model()
    kept, dropped = os.urandom(500), os.urandom(700)
    live = await create_version(versioning_stub, model, token, files=[artifact("k.bin", kept)])
    doomed = await create_version(versioning_stub, model, files=[artifact("d.bin", dropped)])
    await versioning_stub.UploadArtifact(upload_requests(live.name, "k.bin", kept))
    await versioning_stub.UploadArtifact(upload_requests(doomed.name, "d.bin", dropped))
    await versioning_stub.DeleteModelVersion(pb.DeleteModelVersionRequest(name=doomed.name, reason="bad run"))

    within_grace = await versioning_stub.CollectGarbage(
        pb.CollectGarbageRequest(grace_period_seconds=3600, dry_run=True)
    )
    assert sha(dropped) not in {b.sha256 for b in within_grace.blobs}
    past_grace = await versioning_stub.CollectGarbage(pb.CollectGarbageRequest(no_grace=True, dry_run=True))
    listed = {b.sha256 for b in past_grace.blobs}
    assert sha(dropped) in listed and sha(kept) not in listed
    assert await versioning_blobs.stat(sha(dropped)) is not None  # dry run: still there

    collected = await versioning_stub.CollectGarbage(pb.CollectGarbageRequest(no_grace=True))
    assert sha(dropped) in {b.sha256 for b in collected.blobs}
    assert await versioning_blobs.stat(sha(dropped)) is None
    assert await versioning_blobs.stat(sha(kept)) is not None


@pytest.mark.parametrize(("processes", "batch"), [(1, None), (1, 1), (2, None)])
async def test_replay_from_offset_zero_reproduces_the_versioning_schema(
    versioning_stub, versioning_host, create_model, processes, batch, monkeypatch
) -> None:
    if batch is not None:
        # A batch per record: each change of a version finds it written by an earlier batch,
        # which the rebuild's handler reads back by what it remembers having committed.
        monkeypatch.setattr(replay, "REPLAY_BATCH", batch)
    if processes == 1:
        # The live fold upserts its small batches; this replay COPYs every new row,
        # so the digest holds the two write paths equal.
        from modelreg.versioning.adapters import projection

        monkeypatch.setattr(projection, "COPY_THRESHOLD", 1)
    model, token = await create_model()
    version = await ready_version(versioning_stub, model, token, tags={"a": "b"}, metrics={"auc": 0.9})
    await create_version(versioning_stub, model, bump=pb.BUMP_MAJOR)
    await versioning_stub.DeprecateModelVersion(pb.DeprecateModelVersionRequest(name=version.name))
    await move_pointer(versioning_host, model, "staging", 2)

    # As the service's spec has them: the catalog topic's handler also folds the grants.
    handlers: list[tuple[str, ProjectionHandler]] = with_grants(
        [
            ("modelreg.versioning.v1", VersioningProjection()),
            ("modelreg.catalog.v1", CatalogModelsCache()),
            ("modelreg.promotion.v1", PointersCache()),
        ]
    )
    tables = [t for _, h in handlers for t in h.read_model_tables] + list(BOOKKEEPING_TABLES)
    shadow = unique("versioning_shadow_")
    pool = await asyncpg.create_pool(versioning_host.settings.pg_dsn, min_size=1, max_size=2)
    try:
        live = "versioning"
        # All three folds at once (with 2: their partitions shared by two worker processes).
        await rebuild_all(
            pool,
            schema=shadow,
            routes={versioning_host.topic(logical): handler for logical, handler in handlers},
            kafka=versioning_host.settings.kafka,
            processes=processes,
            dsn=versioning_host.settings.pg_dsn,
        )
        async with pool.acquire() as conn:
            # The live projectors may still be folding the last records; give them a moment.
            for _ in range(100):
                if await digest(conn, live, tables) == await digest(conn, shadow, tables):
                    break
                await asyncio.sleep(0.1)
            assert await digest(conn, live, tables) == await digest(conn, shadow, tables)
            rows = await conn.fetchval(
                f'SELECT count(*) FROM "{shadow}".model_versions WHERE model = $1', model
            )
            assert rows == 2
            # Secondary indexes are built after the fold, but built: the same ones as live.
            indexes = "SELECT array_agg(indexname ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1"
            assert await conn.fetchval(indexes, shadow) == await conn.fetchval(indexes, live)
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{shadow}" CASCADE')
        await pool.close()


async def test_a_shadow_build_in_worker_processes_reports_its_progress_and_matches_one_in_process(
    versioning_stub, versioning_host, create_model
) -> None:
    """`ops replay`'s bulk fold (shadow.build) shared out among worker processes: the same
    rows as the fold in this process, every record folded once, and the progress it reports
    adds up to the records folded."""
    model, token = await create_model()
    for _ in range(3):
        await create_version(versioning_stub, model, token, bump=pb.BUMP_MINOR)
    handlers: list[tuple[str, ProjectionHandler]] = with_grants(
        [
            ("modelreg.versioning.v1", VersioningProjection()),
            ("modelreg.catalog.v1", CatalogModelsCache()),
            ("modelreg.promotion.v1", PointersCache()),
        ]
    )
    read_model = ReadModel(
        "versioning", "versioning", {versioning_host.topic(logical): h for logical, h in handlers}
    )
    tables = read_model.tables
    kafka, dsn = versioning_host.settings.kafka, versioning_host.settings.pg_dsn
    in_process, shared = unique("versioning_one_"), unique("versioning_shared_")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            target = await checkpoints(conn, "versioning")
        heard: list[int] = []
        folded_here = await build(pool, read_model, kafka, schema=in_process, target=target)
        folded_shared = await build(
            pool, read_model, kafka, schema=shared, target=target, on_records=heard.append, dsn=dsn, workers=2
        )
        assert folded_here == folded_shared == remaining(target, {}) > 0
        assert sum(heard) == folded_shared
        async with pool.acquire() as conn:
            assert await checkpoints(conn, shared) == await checkpoints(conn, in_process)
            assert await digest(conn, shared, tables) == await digest(conn, in_process, tables)
    finally:
        for schema in (in_process, shared):
            await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()


class StalledCatalogCache(CatalogModelsCache):
    """Folds nothing in the time a test waits: a worker applying it is busy until stopped."""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        await asyncio.sleep(120)


async def test_an_interrupted_build_in_worker_processes_stops_its_workers_at_once(
    versioning_host, create_model
) -> None:
    """Ctrl-C during `ops replay` cancels its bulk fold: the workers, which ignore the
    terminal's SIGINT themselves, are stopped at once rather than left to fold the rest of
    their share (here, two minutes per batch)."""
    await create_model()  # the catalog topic has a record to fold, at least
    routes = {versioning_host.topic("modelreg.catalog.v1"): StalledCatalogCache()}
    kafka, dsn = versioning_host.settings.kafka, versioning_host.settings.pg_dsn
    schema = unique("versioning_interrupted_")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await create_schema(conn, schema, list(routes.values()), fresh=True, indexed=False)
        before = set(multiprocessing.active_children())
        folding = asyncio.create_task(
            fold_in_workers(dsn, schema=schema, routes=routes, kafka=kafka, processes=2)
        )
        deadline = time.monotonic() + 60
        while len(workers := set(multiprocessing.active_children()) - before) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # into the stalled fold
        for worker in workers:
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the group
        await asyncio.sleep(0.3)
        assert all(worker.is_alive() for worker in workers)
        cancelled = time.monotonic()
        folding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await folding
        assert time.monotonic() - cancelled < 10
        for worker in workers:
            worker.join(10)
            assert not worker.is_alive()
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()


async def test_replay_of_duplicates_a_tampered_record_and_a_poison_gives_the_live_digest(
    versioning_stub, versioning_host, create_model, monkeypatch
) -> None:
    """DESIGN.md rules 11 and 12 through the replay's fast path (the fold memory kept per
    partition, outcomes by COPY, workers forked from a fork server): a model's every record copied
    onto its own partition and onto another one, a tampered copy, and a poison creation
    PostgreSQL refuses (a NUL in the spec), between genuine creations, updates and finalizes.
    Rebuilt with one worker and with three, every table equals the live fold's."""
    model, token = await create_model()
    first = await ready_version(versioning_stub, model, token, tags={"a": "b"})
    # Only created: written by COPY in the rebuild.
    await create_version(versioning_stub, model, tags={"k": "v"}, metrics={"auc": 0.5}, params={"p": "1"})
    topic = versioning_host.topic("modelreg.versioning.v1")
    kafka = versioning_host.settings.kafka
    own: list[tuple[int, bytes]] = []
    async for partition, batch in read_log(kafka, topic):
        own += [
            (partition, r.value) for r in batch if r.value is not None and decode(r.value).stream == model
        ]
    assert len(own) == 3  # created, finalized, created
    partitions = versioning_host.settings.partitions
    assert partitions > 1
    log = KafkaEventLog(kafka)
    await log.start()
    try:
        for partition, value in own:
            for target in (partition, (partition + 1) % partitions):
                await log._producer.send_and_wait(topic, value=value, key=model.encode(), partition=target)
        tampered = decode(own[0][1])
        tampered.model_version_created.model_version.description = "not what was written"
        await log.append(topic, tampered)
        conn = await asyncpg.connect(versioning_host.settings.pg_dsn)
        try:
            head = await conn.fetchrow(
                "SELECT revision, hash FROM versioning.stream_heads WHERE stream = $1", model
            )
        finally:
            await conn.close()
        field, payload = codec.encode(
            model, VersionCreated(3, SemVer(9, 9, 0), VersionSpec(description="a NUL \x00 in the spec"))
        )
        poison = build_envelope(
            stream=model,
            payload_field=field,
            payload=payload,
            expected_revision=head["revision"],
            prev_hash=bytes(head["hash"]),
            source="modelreg/test-poison",
            context=EventContext(actor="tester"),
        )
        poisoned_at = await log.append(topic, poison)
    finally:
        await log.stop()
    # Genuine writes after them, judged on the genuine heads (the poison never counted).
    third = await create_version(versioning_stub, model, description="after the poison")
    assert third.version == 3
    await versioning_stub.UpdateModelVersion(
        pb.UpdateModelVersionRequest(
            model_version=pb.ModelVersion(name=first.name, description="changed"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
    )

    handlers: list[tuple[str, ProjectionHandler]] = with_grants(
        [
            ("modelreg.versioning.v1", VersioningProjection()),
            ("modelreg.catalog.v1", CatalogModelsCache()),
            ("modelreg.promotion.v1", PointersCache()),
        ]
    )
    tables = [t for _, h in handlers for t in h.read_model_tables] + list(BOOKKEEPING_TABLES)
    pool = await asyncpg.create_pool(versioning_host.settings.pg_dsn, min_size=1, max_size=2)
    shadows = {n: unique(f"versioning_rebuilt_{n}_") for n in (1, 3)}
    # In this process, a batch per record: the poison's batch is refused and folded again
    # in isolation, and every later change reads back a version an earlier batch wrote.
    shadows[0] = unique("versioning_rebuilt_by_record_")
    try:
        async with pool.acquire() as conn:
            quarantined = await conn.fetchval(
                "SELECT count(*) FROM versioning.quarantine"
                ' WHERE topic = $1 AND partition = $2 AND "offset" = $3',
                topic,
                poisoned_at.partition,
                poisoned_at.offset,
            )
            assert quarantined == 1
        for processes, shadow in shadows.items():
            with monkeypatch.context() as patch:
                if processes == 0:
                    patch.setattr(replay, "REPLAY_BATCH", 1)
                await rebuild_all(
                    pool,
                    schema=shadow,
                    routes={versioning_host.topic(logical): handler for logical, handler in handlers},
                    kafka=kafka,
                    processes=max(processes, 1),
                    dsn=versioning_host.settings.pg_dsn,
                )
        async with pool.acquire() as conn:
            rejected = await conn.fetch(
                f'SELECT reason FROM "{shadows[3]}".rejected_records WHERE stream = $1', model
            )
            reasons = sorted(r["reason"].split(",")[0] for r in rejected)
            assert reasons.count("hash does not match content") == 1
            assert len(rejected) == 4  # three copies on another partition, one tampered
            versions = await conn.fetch(
                f"SELECT number, spec->>'description' AS description, spec->>'tags' AS tags"
                f' FROM "{shadows[3]}".model_versions'
                " WHERE model = $1 ORDER BY number",
                model,
            )
            assert [(v["number"], v["description"]) for v in versions] == [
                (1, "changed"),
                (2, ""),
                (3, "after the poison"),
            ]
            assert [v["tags"] for v in versions] == [
                '{"a": "b"}',
                '{"k": "v"}',
                "{}",
            ]
            # The live projectors may still be folding the last copies; give them a moment.
            for _ in range(100):
                if await digest(conn, "versioning", tables) == await digest(conn, shadows[1], tables):
                    break
                await asyncio.sleep(0.1)
            live = await digest(conn, "versioning", tables)
            assert await digest(conn, shadows[1], tables) == live
            assert await digest(conn, shadows[3], tables) == live
            assert await digest(conn, shadows[0], tables) == live
    finally:
        async with pool.acquire() as conn:
            for shadow in shadows.values():
                await conn.execute(f'DROP SCHEMA IF EXISTS "{shadow}" CASCADE')
        await pool.close()
