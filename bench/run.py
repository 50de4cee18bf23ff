"""The registry benchmark (issue 8): a fixed workload on a freshly started local stack.

    make bench            # python3 scripts/run.py bench [--models 200 ...]
    make bench-scale      # the same, plus search at 1M versions (--scale-versions)

Starts Tansu, PostgreSQL (embedded unless MODELREG_PG_DSN is set) and the catalog,
versioning and promotion services as their own processes (filesystem artifact
store under a temporary MODELREG_HOME), measures from this client process, prints
a table and writes bench/out/results.json. Everything it starts is stopped.

Workload (counts are flags; the defaults are the issue's):
  W1 create 200 models (description, 3 tags)            catalog CreateRegisteredModel
  W2 create 20 versions per model (5 tags, source_uri)  versioning CreateModelVersion
  W3 point alias `champion` at each model's latest      promotion CreateTransitionRequest
  W4 2,000 random get-version-by-alias                  GetModelVersion `...@champion`
  W5 2,000 random get-version-by-number                 GetModelVersion `.../versions/n`
  W6 200 searches tags.k1 = "v3" in a model's versions  ListModelVersions filter
  W7 200 paged listings of all versions of a model      ListModelVersions, pages of 10
  W8 1,000 set-version-tag                              UpdateModelVersion mask `tags`
  the audit trail's fold, export and offline verify at 100k events (bench.audit)
  W9 create-version p50 on a fresh model vs one with 10,000 versions (bench.history)
  the web UI's model page for a model with 1,000 versions, server time (bench.ui)
  200 commands: acknowledgement -> public CloudEvent, and -> webhook request (bench.events)
  W2/W4/W5 again with 8 concurrent clients; replay of >= 100k events; and with
  --scale-versions N, search p50/p99 with N versions in the read model.

A write is measured until it is answered, and every write here answers only after
its own event has been projected into the read model (DESIGN rule 4), so "done"
means readable: the reply carries a consistency token and read-your-writes holds.
Every latency is printed beside the floor: a gRPC health Check of the versioning
service over the same channel, from the same client.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from aiokafka import AIOKafkaProducer
from google.protobuf import field_mask_pb2
from rich.console import Console
from rich.table import Table

from bench import archive as archive_bench
from bench import audit as audit_bench
from bench import common
from bench import events as events_bench
from bench import history as history_bench
from bench import ui as ui_bench
from modelreg.devstack import LocalStack
from modelreg.eventlog import GENESIS_HASH, TOKEN_METADATA_KEY, ConsistencyToken, EventContext, build_envelope
from modelreg.eventlog.envelope import to_kafka_message
from modelreg.eventlog.kafka import KafkaSettings, partition_for
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.gen.catalog.v1 import events_pb2 as catalog_events
from modelreg.gen.promotion.v1 import events_pb2 as promotion_events
from modelreg.gen.promotion.v1 import promotion_pb2, promotion_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from modelreg.gen.versioning.v1 import versioning_pb2_grpc
from modelreg.projections.batch import ProjectionHandler
from modelreg.projections.replay import rebuild_all
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings
from modelreg.versioning.adapters import codec
from modelreg.versioning.adapters.caches import CatalogModelsCache, PointersCache
from modelreg.versioning.adapters.projection import VersioningProjection
from modelreg.versioning.domain.events import VersionCreated
from modelreg.versioning.domain.values import SemVer, VersionSpec

# Issue 19's targets, on this 2-core machine.
TARGETS = {
    "writes_8c_per_s": 700.0,
    "writes_8c_over_mlflow": 5.0,
    "write_p50_ms": 4.5,
    "history_p50_ratio": 1.10,
    "reads_8c_per_s": 2000.0,
    "read_over_floor_ms": 0.5,
    "replay_per_s": 50_000.0,
    "search_p99_ms": 20.0,
}
SERVICES = ["catalog", "versioning", "promotion"]
IDLE_SECONDS = 3.0
SEARCH = 'tags.k1 = "v3"'
LIST_PAGE = 10


@dataclass(frozen=True)
class Workload:
    models: int = 200
    versions_per_model: int = 20
    alias_gets: int = 2000
    gets: int = 2000
    searches: int = 200
    listings: int = 200
    tag_sets: int = 1000
    clients: int = 8
    replay_events: int = 100_000
    scale_versions: int = 0
    scale_versions_per_model: int = 100
    scale_creates: int = 500
    scale_create_models: int = 50
    scale_gets: int = 2000
    history_versions: int = 10_000
    audit_events: int = 100_000
    history_creates: int = 200
    ui_versions: int = 1000
    event_commands: int = 200
    floor_calls: int = 1000


async def rate(calls: int, make_call: Callable[[int], Awaitable[Any]], clients: int = 1) -> dict[str, float]:
    """Latency percentiles and calls/s; with clients > 1, client c makes calls c, c+clients, ..."""

    def client(c: int) -> Callable[[int], Awaitable[Any]]:
        return lambda i: make_call(c + i * clients)

    started = time.perf_counter()
    per_client = await asyncio.gather(
        *(common.timed(len(range(c, calls, clients)), client(c)) for c in range(clients))
    )
    elapsed = time.perf_counter() - started
    flat = [s for samples in per_client for s in samples]
    return {**common.percentiles(flat), "per_second": len(flat) / elapsed, "clients": clients}


def tokened(token: str | None) -> list[tuple[str, str]] | None:
    return [(TOKEN_METADATA_KEY, token)] if token else None


async def answered(call: Any) -> tuple[Any, str]:
    response = await call
    return response, dict(await call.trailing_metadata()).get(TOKEN_METADATA_KEY, "")


def merge(tokens: list[str]) -> str:
    merged = ConsistencyToken({})
    for token in tokens:
        if token:
            merged = merged.merge(ConsistencyToken.decode(token))
    return merged.encode()


def version_tags(j: int) -> dict[str, str]:
    # k1 cycles through v0..v4, so `tags.k1 = "v3"` matches one version in five.
    return {"k1": f"v{j % 5}", "k2": "v2", "team": "bench", "dataset": f"d{j % 3}", "run": f"r{j}"}


# The live workload ----------------------------------------------------------


async def measure_workload(
    ports: dict[str, int], w: Workload, cpu: common.CpuMeter | None = None
) -> dict[str, Any]:
    """W1..W8 and W2/W4/W5 with `w.clients` clients; with `cpu`, also the CPU every process
    of the stack spends per acknowledged write in W2 (results["cpu_per_write"])."""
    results: dict[str, Any] = {}
    cpu_per_write: dict[str, dict[str, float]] = {}

    async def writes_with_cpu(name: str, measured: Awaitable[dict[str, Any]]) -> None:
        before = cpu.sample() if cpu else None
        results[name] = await measured
        if cpu and before is not None:
            cpu_per_write[name] = cpu.per_write(before, cpu.sample(), results[name]["n"])

    rng = random.Random(8)
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{ports['catalog']}", options=options) as cat_ch,
        grpc.aio.insecure_channel(f"127.0.0.1:{ports['versioning']}", options=options) as ver_ch,
        grpc.aio.insecure_channel(f"127.0.0.1:{ports['promotion']}", options=options) as pro_ch,
    ):
        catalog = catalog_pb2_grpc.CatalogServiceStub(cat_ch)
        versioning = versioning_pb2_grpc.VersioningServiceStub(ver_ch)
        promotion = promotion_pb2_grpc.PromotionServiceStub(pro_ch)
        ns = f"bench{uuid.uuid4().hex[:6]}"
        models = [f"namespaces/{ns}/models/m{i}" for i in range(w.models)]
        catalog_tokens: dict[str, str] = {}
        last_tokens: dict[str, str] = {}

        results["floor_health_check"] = await common.health_floor(ver_ch, w.floor_calls)

        async def create_model(i: int) -> None:
            _, catalog_tokens[models[i]] = await answered(
                catalog.CreateRegisteredModel(
                    catalog_pb2.CreateRegisteredModelRequest(
                        parent=f"namespaces/{ns}",
                        registered_model_id=f"m{i}",
                        registered_model=catalog_pb2.RegisteredModel(
                            description="benchmark model", tags={"k1": "v1", "k2": "v2", "k3": "v3"}
                        ),
                    )
                )
            )

        results["W1_create_model"] = await rate(w.models, create_model)
        if cpu:
            # What the stack burns with no calls (the projectors' fetch polls, mostly): part of
            # every write's CPU below, in proportion to the write's wall time.
            before = cpu.sample()
            await asyncio.sleep(IDLE_SECONDS)
            results["cpu_idle_ms_per_s"] = cpu.per_second(before, cpu.sample(), IDLE_SECONDS)

        async def create_version(model: str, j: int) -> None:
            _, last_tokens[model] = await answered(
                versioning.CreateModelVersion(
                    pb.CreateModelVersionRequest(
                        parent=model,
                        bump=pb.BUMP_MINOR,
                        model_version=pb.ModelVersion(
                            description=f"bench version {j}",
                            tags=version_tags(j),
                            params={"source_uri": f"s3://bench-data/{model.rsplit('/', 1)[1]}/run-{j}"},
                        ),
                    ),
                    # The first version of a model must see the catalog's fact.
                    metadata=tokened(catalog_tokens.get(model) if j == 0 else None),
                )
            )

        # Round-robin over the models (version j of every model, then j + 1): how
        # pipelines add versions over time, and no stream is written twice in a row.
        per_model = w.versions_per_model
        await writes_with_cpu(
            "W2_create_version",
            rate(w.models * per_model, lambda k: create_version(models[k % w.models], k // w.models)),
        )

        async def point_champion(i: int) -> None:
            _, last_tokens[models[i]] = await answered(
                promotion.CreateTransitionRequest(
                    promotion_pb2.CreateTransitionRequestRequest(
                        parent=models[i],
                        transition_request=promotion_pb2.TransitionRequest(
                            moves=[promotion_pb2.PointerMove(pointer="champion", version=per_model)],
                            comment="bench",
                        ),
                        request_id=str(uuid.uuid4()),
                    ),
                    metadata=tokened(last_tokens[models[i]]),  # promotion must know the version
                )
            )

        results["W3_set_alias"] = await rate(w.models, point_champion)
        # What an SDK holding every token of this session would pass along.
        session_token = merge(list(last_tokens.values()))
        picks = [rng.randrange(w.models) for _ in range(max(w.alias_gets, w.gets, w.tag_sets))]
        numbers = [1 + rng.randrange(per_model) for _ in range(len(picks))]

        async def get_alias(k: int) -> None:
            version = await versioning.GetModelVersion(
                pb.GetModelVersionRequest(name=f"{models[picks[k]]}@champion"),
                metadata=tokened(session_token),
            )
            assert version.version == per_model, version.name

        async def get_number(k: int) -> None:
            await versioning.GetModelVersion(
                pb.GetModelVersionRequest(name=f"{models[picks[k]]}/versions/{numbers[k]}"),
                metadata=tokened(session_token),
            )

        await get_alias(0)
        results["W4_get_by_alias"] = await rate(w.alias_gets, get_alias)
        results["W5_get_by_number"] = await rate(w.gets, get_number)

        async def search(k: int) -> None:
            page = await versioning.ListModelVersions(
                pb.ListModelVersionsRequest(parent=models[picks[k]], filter=SEARCH, page_size=100)
            )
            assert len(page.model_versions) == len(range(3, per_model, 5)), len(page.model_versions)

        results["W6_search_tag"] = await rate(w.searches, search)

        async def list_all(k: int) -> None:
            token, seen = "", 0
            while True:
                page = await versioning.ListModelVersions(
                    pb.ListModelVersionsRequest(
                        parent=models[picks[k]], page_size=LIST_PAGE, page_token=token
                    )
                )
                seen += len(page.model_versions)
                token = page.next_page_token
                if not token:
                    break
            assert seen == per_model, seen

        results["W7_list_all_paged"] = await rate(w.listings, list_all)

        async def set_tag(k: int) -> None:
            model, number = models[picks[k]], numbers[k]
            await versioning.UpdateModelVersion(
                pb.UpdateModelVersionRequest(
                    model_version=pb.ModelVersion(
                        name=f"{model}/versions/{number}", tags={**version_tags(number - 1), "note": f"n{k}"}
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
                )
            )

        results["W8_set_tag"] = await rate(w.tag_sets, set_tag)

        # Concurrency: client c owns models c, c + clients, ...: no two clients write one stream.
        c = w.clients
        await writes_with_cpu(
            f"W2_create_version_{c}c",
            rate(
                w.models * per_model,
                lambda k: create_version(models[k % w.models], per_model + k // w.models),
                clients=c,
            ),
        )
        results[f"W4_get_by_alias_{c}c"] = await rate(w.alias_gets, get_alias, clients=c)
        results[f"W5_get_by_number_{c}c"] = await rate(w.gets, get_number, clients=c)
    if cpu_per_write:
        results["cpu_per_write"] = cpu_per_write
    return results


def live_measures(clients: int) -> list[str]:
    """The keys of measure_workload's timed workloads, W1..W8 then the concurrent ones."""
    sequential = ["W1_create_model", "W2_create_version", "W3_set_alias", "W4_get_by_alias"]
    sequential += ["W5_get_by_number", "W6_search_tag", "W7_list_all_paged", "W8_set_tag"]
    concurrent = ["W2_create_version", "W4_get_by_alias", "W5_get_by_number"]
    return [*sequential, *(f"{name}_{clients}c" for name in concurrent)]


def measure_live(stack: LocalStack, dsn: str, home: str, w: Workload) -> dict[str, Any]:
    """The live workload against the catalog, versioning and promotion services, started on
    `dsn` for it, with the CPU per write of every process; "rss_idle_mb" is each service's
    resident memory just after start, before any call."""
    env = common.service_env(stack, dsn, MODELREG_HOME=home)
    with common.services(SERVICES, env) as started:
        idle = common.rss_mb(started.pids)
        results = asyncio.run(measure_workload(started, w, common.CpuMeter(stack, started)))
    return {**results, "rss_idle_mb": idle}


# Synthetic logs: replay and scale ----------------------------------------------


async def produce_registry(
    kafka: KafkaSettings, models: int, per_model: int, *, promotion: bool = True
) -> tuple[int, dict[str, str]]:
    """Appends, as the services would, a catalog fact per model, `per_model` versions each and
    (optionally) a `champion` alias move; returns (events, topic by logical name)."""
    names = ("modelreg.catalog.v1", "modelreg.versioning.v1", "modelreg.promotion.v1")
    partitions = Settings(kafka=kafka, pg_dsn="").partitions
    await ensure_topics(Settings(kafka=kafka, pg_dsn=""), list(names))
    topics = {n: kafka.topic(n) for n in names}
    # A producer of our own, with large batches: KafkaEventLog's acks-per-command settings
    # (linger 0, small batches) made 100k events take minutes on Tansu.
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    count = 0
    context = EventContext(actor="bench")

    def events_of(i: int) -> Iterator[tuple[str, Any]]:
        model = f"namespaces/replay/models/m{i}"
        yield (
            topics["modelreg.catalog.v1"],
            build_envelope(
                stream=model,
                payload_field="registered_model_created",
                payload=catalog_events.RegisteredModelCreated(
                    registered_model=catalog_pb2.RegisteredModel(name=model, description="d")
                ),
                expected_revision=0,
                prev_hash=GENESIS_HASH,
                source="bench",
                context=context,
            ),
        )
        prev = GENESIS_HASH
        for j in range(per_model):
            spec = VersionSpec(
                description=f"v{j}", tags=version_tags(j), params={"source_uri": f"s3://d/m{i}/{j}"}
            )
            field, payload = codec.encode(model, VersionCreated(j + 1, SemVer(1, j, 0), spec))
            envelope = build_envelope(
                stream=model,
                payload_field=field,
                payload=payload,
                expected_revision=j,
                prev_hash=prev,
                source="bench",
                context=context,
            )
            prev = envelope.hash
            yield topics["modelreg.versioning.v1"], envelope
        if promotion:
            yield (
                topics["modelreg.promotion.v1"],
                build_envelope(
                    stream=model,
                    payload_field="pointer_moved",
                    payload=promotion_events.PointerMoved(model=model, pointer="champion", version=per_model),
                    expected_revision=0,
                    prev_hash=GENESIS_HASH,
                    source="bench",
                    context=context,
                ),
            )

    try:
        pending = []
        for i in range(models):
            for topic, envelope in events_of(i):
                # Sealed as KafkaEventLog.append does: the key's partition, signed when the
                # settings hold a key (bench/verify.py compares replay with and without).
                key = envelope.stream.encode()
                partition = partition_for(key, partitions)
                kafka.integrity.seal(envelope, partition)
                message = to_kafka_message(envelope)
                pending.append(
                    await producer.send(
                        topic,
                        value=message.value,
                        key=key,
                        partition=partition,
                        headers=list(message.headers.items()),
                    )
                )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                count += len(pending)
                pending = []
        await asyncio.gather(*pending)
        count += len(pending)
    finally:
        await producer.stop()
    return count, topics


async def measure_replay(kafka_servers: str, dsn: str, events: int) -> dict[str, Any]:
    """Rebuilds every read model of the versioning service (its own fold and both reference
    caches) from a synthetic log of at least `events` events, as `modelreg ops replay` does."""
    per_model = 20
    models = -(-events // (per_model + 2))
    kafka = KafkaSettings(kafka_servers, f"replay{uuid.uuid4().hex[:6]}.", linger_ms=5)
    started = time.perf_counter()
    produced, topics = await produce_registry(kafka, models, per_model)
    produce_s = time.perf_counter() - started
    return {
        **await measure_replay_on(kafka, dsn, topics),
        "produced": produced,
        "produce_seconds": produce_s,
        "topic_prefix": kafka.topic_prefix,
    }


async def measure_replay_on(kafka: KafkaSettings, dsn: str, topics: dict[str, str]) -> dict[str, Any]:
    """Times the rebuild of the three read models from `topics` into a scratch schema; they
    fold concurrently, so each topic's seconds run from the common start."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        handlers: dict[str, ProjectionHandler] = {
            "modelreg.versioning.v1": VersioningProjection(),
            "modelreg.catalog.v1": CatalogModelsCache(),
            "modelreg.promotion.v1": PointersCache(),
        }
        started = time.perf_counter()
        stats = await rebuild_all(
            pool,
            schema="replay_bench",
            routes={topics[name]: handler for name, handler in handlers.items()},
            kafka=kafka,
            # The fold is Python-bound: a worker process per partition keeps both cores busy
            # (with two workers for three partitions, one would fold twice the other's share).
            processes=Settings(kafka=kafka, pg_dsn="").partitions,
            dsn=dsn,
        )
        seconds = time.perf_counter() - started
        await pool.execute('DROP SCHEMA IF EXISTS "replay_bench" CASCADE')
    finally:
        await pool.close()
    parts = {
        name: {"events": s.records, "seconds": s.seconds, "per_second": s.per_second}
        for name, s in zip(handlers, stats.values(), strict=True)
    }
    total = sum(p["events"] for p in parts.values())
    return {"events": total, "seconds": seconds, "events_per_second": total / seconds, "by_topic": parts}


async def load_scale(kafka: KafkaSettings, dsn: str, versions: int, per_model: int) -> dict[str, Any]:
    """Puts `versions` versions into the versioning schema the service will start on: events
    produced in bulk onto the topics, then folded by `rebuild_all` (the live projector's code,
    a worker process per partition, the tag index built after the fold)."""
    models = versions // per_model
    started = time.perf_counter()
    produced, topics = await produce_registry(kafka, models, per_model, promotion=False)
    produce_s = time.perf_counter() - started
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        folding = time.perf_counter()
        stats = await rebuild_all(
            pool,
            schema="versioning",
            routes={topics["modelreg.versioning.v1"]: VersioningProjection()},
            kafka=kafka,
            processes=Settings(kafka=kafka, pg_dsn="").partitions,
            dsn=dsn,
        )
        fold_s = time.perf_counter() - folding
        (folded,) = stats.values()
        await pool.execute("ANALYZE versioning.model_versions")
        rows = await pool.fetchval("SELECT count(*) FROM versioning.model_versions")
    finally:
        await pool.close()
    return {
        "versions": rows,
        "models": models,
        "produced": produced,
        "produce_seconds": produce_s,
        "fold_seconds": fold_s,
        "fold_per_second": folded.records / fold_s,
        # After the last worker finished: building the tag index, mostly.
        "index_seconds": fold_s - folded.seconds,
    }


async def measure_scale(port: int, w: Workload, models: int) -> dict[str, Any]:
    """On the scaled registry: search by tag, W2 (creates spread round-robin over the first
    `w.scale_create_models` models, each already holding `w.scale_versions_per_model`
    versions) and W5 (random get by number) with one and `w.clients` clients."""
    rng = random.Random(9)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        versioning = versioning_pb2_grpc.VersioningServiceStub(channel)
        floor = await common.health_floor(channel, w.floor_calls)
        picks = [rng.randrange(models) for _ in range(max(w.searches, 1000))]
        expected = len(range(3, w.scale_versions_per_model, 5))

        async def search(k: int) -> None:
            page = await versioning.ListModelVersions(
                pb.ListModelVersionsRequest(
                    parent=f"namespaces/replay/models/m{picks[k]}", filter=SEARCH, page_size=100
                )
            )
            assert len(page.model_versions) == expected, len(page.model_versions)

        await common.timed(20, search)  # warm-up
        results: dict[str, Any] = {"floor": floor, "search": await rate(len(picks), search)}

        writers = min(w.scale_create_models, models)

        def create(i: int) -> Any:
            return versioning.CreateModelVersion(
                pb.CreateModelVersionRequest(
                    parent=f"namespaces/replay/models/m{i % writers}",
                    bump=pb.BUMP_MINOR,
                    model_version=pb.ModelVersion(description="scale bench", tags=version_tags(i)),
                )
            )

        # The service folds the catalog topic into its model cache after it starts serving:
        # each written model must be known before its creates are timed.
        for i in range(writers):
            await _until_accepted(create, i)
        results["W2_create_version"] = await rate(w.scale_creates, create)

        gets = [
            (rng.randrange(models), 1 + rng.randrange(w.scale_versions_per_model))
            for _ in range(w.scale_gets)
        ]

        async def get_number(k: int) -> None:
            model, number = gets[k % len(gets)]  # the warm-up may outnumber the timed gets
            await versioning.GetModelVersion(
                pb.GetModelVersionRequest(name=f"namespaces/replay/models/m{model}/versions/{number}")
            )

        await common.timed(20, get_number)  # warm-up
        results["W5_get_by_number"] = await rate(w.scale_gets, get_number)
        results[f"W5_get_by_number_{w.clients}c"] = await rate(w.scale_gets, get_number, clients=w.clients)
    return results


async def _until_accepted(call: Callable[[int], Any], i: int, timeout_s: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await call(i)
            return
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.2)


# Processes ------------------------------------------------------------------


def run(w: Workload, console: Console | None = None) -> dict[str, Any]:
    """Runs the whole benchmark on a fresh stack; returns the results (also written to common.OUT)."""
    results: dict[str, Any] = {}
    with LocalStack.start() as stack, tempfile.TemporaryDirectory(prefix="modelreg-bench-") as home:
        with common.scratch_database(stack, "modelreg_bench") as dsn:
            results.update(measure_live(stack, dsn, home, w))
            results["replay"] = asyncio.run(
                measure_replay(stack.kafka.bootstrap_servers, dsn, w.replay_events)
            )
            results["archive"] = asyncio.run(
                archive_bench.measure_archive(
                    stack.kafka.bootstrap_servers, results["replay"]["topic_prefix"]
                )
            )
        if w.audit_events:
            with common.scratch_database(stack, "modelreg_audit_bench") as dsn:
                results["audit"] = asyncio.run(
                    audit_bench.measure(stack.kafka.bootstrap_servers, dsn, w.audit_events)
                )
        if w.history_versions:
            results["history"] = history_bench.run_on(stack, home, w.history_versions, w.history_creates)
        if w.ui_versions:
            results["ui"] = ui_bench.run_on(stack, home, w.ui_versions, requests=50)
        if w.event_commands:
            results["events"] = events_bench.run_on(stack, home, w.event_commands)
        if w.scale_versions:
            with common.scratch_database(stack, "modelreg_scale") as dsn:
                prefix = f"scale{uuid.uuid4().hex[:6]}."
                kafka = KafkaSettings(stack.kafka.bootstrap_servers, prefix, linger_ms=5)
                loaded = asyncio.run(load_scale(kafka, dsn, w.scale_versions, w.scale_versions_per_model))
                env = common.service_env(stack, dsn, prefix, MODELREG_HOME=home)
                # Versioning alone: W2 on existing models needs only its own fold and its
                # catalog cache, which it folds from the catalog topic the load wrote.
                with common.services(["versioning"], env) as started:
                    at_start = common.rss_mb(started.pids)
                    measured = asyncio.run(measure_scale(started["versioning"], w, loaded["models"]))
                    after = common.rss_mb(started.pids)
                rss = {"at_start": at_start, "after_load": after}
                results["scale"] = {**loaded, **measured, "rss_mb": rss}
    results["meta"] = common.meta(workload=asdict(w))
    return results


# Report ---------------------------------------------------------------------


def verdicts(
    results: dict[str, Any], mlflow_writes_8c_per_s: float | None = None
) -> list[tuple[str, str, str, str]]:
    """(target, figure, gap, met) for each of issue 19's targets; a target whose figure this
    run did not measure (a section skipped, or no peer) says so instead of a verdict."""
    t = TARGETS
    floor = results["floor_health_check"]["p50_ms"]
    clients = next(int(k.rsplit("_", 1)[1][:-1]) for k in results if k.startswith("W2_create_version_"))
    rows = []

    def at_least(target: str, figure: float, goal: float, unit: str = "/s") -> None:
        rows.append((target, f"{figure:,.0f}{unit}", f"{figure - goal:+,.0f}{unit}", _met(figure >= goal)))

    def at_most(target: str, figure: float, goal: float) -> None:
        rows.append((target, f"{figure:.2f} ms", f"{figure - goal:+.2f} ms", _met(figure <= goal)))

    def not_measured(target: str, where: str) -> None:
        rows.append((target, "not measured", "", f"n/a ({where})"))

    writes = results[f"W2_create_version_{clients}c"]["per_second"]
    at_least(f"W2 with {clients} clients >= 700 versions/s", writes, t["writes_8c_per_s"])
    if mlflow_writes_8c_per_s:
        ratio = writes / mlflow_writes_8c_per_s
        goal = t["writes_8c_over_mlflow"]
        rows.append(
            (
                f"W2 with {clients} clients >= 5x MLflow's",
                f"{ratio:.2f}x",
                f"{ratio - goal:+.2f}x",
                _met(ratio >= goal),
            )
        )
    for name in ("W1_create_model", "W2_create_version", "W3_set_alias", "W8_set_tag"):
        at_most(f"{name} p50 <= 4.5 ms", results[name]["p50_ms"], t["write_p50_ms"])
    if "history" in results:
        history = results["history"]
        ratio, goal = history["p50_ratio"], t["history_p50_ratio"]
        rows.append(
            (
                f"W9 p50 at version {history['deep_versions_at_start']:,} within 10% of the first",
                f"{history['deep']['p50_ms']:.2f} vs {history['fresh']['p50_ms']:.2f} ms ({ratio:.2f}x)",
                f"{ratio - goal:+.2f}x",
                _met(ratio <= goal),
            )
        )
    else:
        not_measured("W9 p50 at version 10,000 within 10% of the first", "make bench")
    for name in ("W4_get_by_alias", "W5_get_by_number"):
        at_least(
            f"{name} with {clients} clients >= 2,000/s",
            results[f"{name}_{clients}c"]["per_second"],
            t["reads_8c_per_s"],
        )
    for name in ("W4_get_by_alias", "W5_get_by_number"):
        over = results[name]["p50_ms"] - floor
        gap = over - t["read_over_floor_ms"]
        rows.append(
            (f"{name} p50 <= floor + 0.5 ms", f"floor {over:+.2f} ms", f"{gap:+.2f} ms", _met(gap <= 0))
        )
    if "replay" in results:
        at_least(
            "replay >= 50k events/s", results["replay"]["events_per_second"], t["replay_per_s"], " events/s"
        )
    else:
        not_measured("replay >= 50k events/s", "make bench")
    if "scale" in results:
        scale = results["scale"]
        at_most(
            f"search p99 <= 20 ms at {scale['versions']:,} versions",
            scale["search"]["p99_ms"],
            t["search_p99_ms"],
        )
    else:
        not_measured("search p99 <= 20 ms at 1M versions", "make bench-scale")
    return rows


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(results: dict[str, Any], console: Console) -> None:
    floor = results["floor_health_check"]["p50_ms"]
    table = Table(title=f"modelreg bench: floor (versioning health Check p50) = {floor:.2f} ms")
    for column in ("measure", "n", "p50 ms", "p95 ms", "p99 ms", "p50 - floor", "rate"):
        table.add_column(column, justify="left" if column == "measure" else "right")

    def row(name: str, f: dict[str, Any], floor_ms: float = floor) -> None:
        rate_text = f"{f['per_second']:,.0f}/s" if "per_second" in f else ""
        table.add_row(
            name,
            str(f["n"]),
            f"{f['p50_ms']:.2f}",
            f"{f['p95_ms']:.2f}",
            f"{f['p99_ms']:.2f}",
            f"{f['p50_ms'] - floor_ms:+.2f}",
            rate_text,
        )

    for name, figures in results.items():
        if isinstance(figures, dict) and "p50_ms" in figures:
            row(name, figures)
    if "replay" in results:
        replay_rows(results, table)
    if "scale" in results:
        scale = results["scale"]
        row(f"search at {scale['versions']:,} versions", scale["search"], scale["floor"]["p50_ms"])
        for name, figures in scale.items():
            if name.startswith("W"):
                row(f"{name} at {scale['versions']:,} versions", figures, scale["floor"]["p50_ms"])
    console.print(table)
    report_cpu_and_targets(results, console)


def replay_rows(results: dict[str, Any], table: Table) -> None:
    replay = results["replay"]
    table.add_row(
        "replay: rebuild versioning read models",
        str(replay["events"]),
        "",
        "",
        "",
        "",
        f"{replay['events_per_second']:,.0f} events/s",
    )
    archived = results["archive"]
    for label, rate in (
        ("archive: ops archive to segments", "archive"),
        ("restore: ops restore + verify", "restore"),
    ):
        table.add_row(
            label,
            str(archived["records"]),
            "",
            "",
            "",
            "",
            f"{archived[f'{rate}_per_second']:,.0f} records/s",
        )
    window = archived["loss_window"]
    table.add_row(
        f"kill -9 loss window (ack -> archived, poll {window['poll_ms']} ms)",
        str(window["n"]),
        f"{window['p50_ms']:.1f}",
        f"{window['p95_ms']:.1f}",
        f"{window['p99_ms']:.1f}",
        "",
        f"max {window['max_ms']:.1f} ms",
    )


def rss_table(results: dict[str, Any]) -> Table:
    """Each service's resident memory: idle (just started, empty registry, in the live
    workload's run) and on the scaled registry, at start and after its measures."""
    scale = results["scale"]
    table = Table(title=f"service RSS, MiB (scaled registry: {scale['versions']:,} versions)")
    for column in ("service", "idle, empty registry", "scaled: at start", "scaled: after load"):
        table.add_column(column, justify="left" if column == "service" else "right")
    idle = results.get("rss_idle_mb", {})
    for name in sorted({*idle, *scale["rss_mb"]["at_start"]}):
        table.add_row(
            name,
            *(
                _mib(figures, name)
                for figures in (idle, scale["rss_mb"]["at_start"], scale["rss_mb"]["after_load"])
            ),
        )
    return table


def _mib(figures: dict[str, float], name: str) -> str:
    return f"{figures[name]:.0f}" if name in figures else "not started"


def report_cpu_and_targets(
    results: dict[str, Any], console: Console, mlflow_writes_8c_per_s: float | None = None
) -> None:
    if "cpu_per_write" in results:
        console.print(
            common.cpu_table(
                "CPU ms per acknowledged write (user + sys)",
                results["cpu_per_write"],
                results.get("cpu_idle_ms_per_s"),
            )
        )
    if "scale" in results and "rss_mb" in results["scale"]:
        console.print(rss_table(results))
    if "history" in results:
        history_bench.report(results["history"], console)
    if "audit" in results:
        audit_bench.report(results["audit"], console)
    if "ui" in results:
        ui_bench.report(results["ui"], console)
    if "events" in results:
        events_bench.report(results["events"], console)
    targets = Table(title="targets (2-core machine)")
    for column in ("target", "figure", "gap to target", ""):
        targets.add_column(column)
    for verdict in verdicts(results, mlflow_writes_8c_per_s):
        targets.add_row(*verdict)
    console.print(targets)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Workload()
    for field_name, value in asdict(defaults).items():
        parser.add_argument(f"--{field_name.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--scale", action="store_true", help="also search with 1M versions in the read model")
    parser.add_argument("--out", type=Path, default=common.OUT / "results.json")
    args = parser.parse_args(argv)
    fields = {name: getattr(args, name) for name in asdict(defaults)}
    if args.scale and not fields["scale_versions"]:
        fields["scale_versions"] = 1_000_000
    console = Console(width=max(Console().width, 130))
    results = run(Workload(**fields), console)
    common.write_results(results, args.out)
    report(results, console)
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
