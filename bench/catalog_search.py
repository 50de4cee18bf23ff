"""Catalog search at scale: 100k models, a mix of filters, beside the gRPC floor.

    .venv/bin/python -m bench.catalog_search [--models 100000] [--calls 200]

Starts Tansu and PostgreSQL, produces the models' events straight onto the
catalog topic (as a replay would see them), folds them into the catalog schema
with the replay tool (the same batch code as the live projector), starts the
catalog service as its own process on that schema, and measures from here:
search p50/p99 per filter and over the whole mix, Get p50, and the floor (a
gRPC health Check on the same channel). Writes bench/out/catalog_search.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
from rich.console import Console

from bench import common
from modelreg.catalog.adapters import codec
from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.catalog.domain.events import Event, NamespaceCreated, RegisteredModelCreated
from modelreg.catalog.domain.values import ModelFields, Property, PropertyKind
from modelreg.devstack import LocalStack
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.names import ModelName
from modelreg.projections.replay import rebuild
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings

NAMESPACE = "bench"
TOPIC = "modelreg.catalog.v1"
START = datetime(2025, 1, 1, tzinfo=UTC)
WORDS = ["churn", "fraud", "rank", "vision", "speech", "forecast", "pricing", "ads"]
TEAMS = ["growth", "risk", "core", "search", "ads"]
VOCABULARY = (
    "model predicts customer churn fraud ranking images speech demand prices clicks retention "
    "gradient boosted trees transformer calibrated baseline experimental production shadow"
).split()


def model_events(count: int, seed: int = 7) -> list[tuple[str, RegisteredModelCreated, datetime]]:
    rng = random.Random(seed)
    events = []
    for i in range(count):
        word = rng.choice(WORDS)
        name = ModelName(NAMESPACE, f"{word}-{i:06d}")
        properties = {
            "acc": Property(PropertyKind.DOUBLE, round(rng.random(), 4)),
            "epochs": Property(PropertyKind.INT, rng.choice([1, 5, 10, 20, 50, 100])),
            "framework": Property(PropertyKind.STRING, rng.choice(["torch", "sklearn", "xgboost", "jax"])),
            "trained_at": Property(PropertyKind.TIMESTAMP, START + timedelta(minutes=rng.randrange(500_000))),
        }
        if rng.random() < 0.3:
            properties["calibrated"] = Property(PropertyKind.BOOL, rng.random() < 0.5)
        values = ModelFields(
            description=" ".join(rng.choices(VOCABULARY, k=12)) + (" fraud" if word == "fraud" else ""),
            annotations=" ".join(rng.choices(VOCABULARY, k=4)),
            tags={"team": rng.choice(TEAMS), "env": rng.choice(["prod", "dev", "staging"]), "word": word},
            properties=properties,
            owners=(rng.choice(["alice", "bob", "carol", "dave"]),),
        )
        occurred = START + timedelta(seconds=i * 300 + rng.randrange(300))
        events.append((str(name), RegisteredModelCreated(name, values), occurred))
    return events


async def load(kafka: KafkaSettings, dsn: str, count: int) -> dict[str, float]:
    await ensure_topics(Settings(kafka=kafka, pg_dsn=dsn), [TOPIC])
    topic = kafka.topic(TOPIC)
    log = KafkaEventLog(KafkaSettings(kafka.bootstrap_servers, kafka.topic_prefix, linger_ms=5))
    await log.start()
    context = EventContext(actor="bench-loader")

    def first_event(stream: str, event: Event, occurred: datetime) -> Envelope:
        field, payload = codec.encode(event)
        return build_envelope(
            stream=stream,
            payload_field=field,
            payload=payload,
            expected_revision=0,
            prev_hash=GENESIS_HASH,
            source="bench",
            context=context,
            occurred_at=occurred,
        )

    started = time.perf_counter()
    try:
        namespace = NamespaceCreated(NAMESPACE, "benchmark namespace", False)
        await log.append(topic, first_event(f"namespaces/{NAMESPACE}", namespace, START))
        events = model_events(count)
        for start in range(0, count, 2000):
            envelopes = [first_event(*e) for e in events[start : start + 2000]]
            await asyncio.gather(*(log.append(topic, e) for e in envelopes))
    finally:
        await log.stop()
    produced = time.perf_counter() - started
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        # Fold straight into the live schema: its checkpoints then tell the
        # service's projector that everything is already projected.
        stats = await rebuild(pool, schema="catalog", topic=topic, handler=CatalogProjection(), kafka=kafka)
        await pool.execute('ANALYZE "catalog".registered_models')
        rows = await pool.fetchval('SELECT count(*) FROM "catalog".registered_models')
    finally:
        await pool.close()
    assert rows == count, f"folded {rows} models, expected {count}"
    return {"produce_s": produced, "fold_s": stats.seconds, "fold_events_per_s": stats.per_second}


def search_mix(mid: datetime) -> dict[str, tuple[str, str]]:
    when = mid.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "no filter (name order)": ("", ""),
        "tags.team = growth": ('tags.team = "growth"', ""),
        "properties.acc > 0.99": ("properties.acc > 0.99", ""),
        "name LIKE 'fraud-01%'": ("name LIKE 'fraud-01%'", ""),
        "text:fraud (full text)": ('text:"fraud"', ""),
        "tags IN + epochs >= 50, create_time desc": (
            'tags.team IN ("risk", "core") AND properties.epochs >= 50',
            "create_time desc",
        ),
        "create_time > mid, create_time desc": (f"create_time > {when}", "create_time desc"),
        "framework = jax AND NOT calibrated = true": (
            'properties.framework = "jax" AND NOT properties.calibrated = true',
            "update_time",
        ),
        "owners:carol OR tags.word = ads": ('owners:"carol" OR tags.word = "ads"', "name desc"),
        # Sparse matches: the page cannot fill early, so these show the cost of a full pass.
        "sparse: properties.acc >= 0.9995": ("properties.acc >= 0.9995", ""),
        "sparse: team=growth AND epochs=100 AND jax AND acc>0.99": (
            'tags.team = "growth" AND properties.epochs = 100 AND properties.framework = "jax"'
            " AND properties.acc > 0.99",
            "create_time desc",
        ),
        "sparse: text:'calibrated transformer shadow'": ('text:"calibrated transformer shadow"', ""),
    }


async def measure(port: int, count: int, calls: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    rng = random.Random(11)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        results["floor_health_check"] = await common.health_floor(channel, 1000)
        names = [stream for stream, _, _ in model_events(count)]

        def get(i: int):
            return catalog.GetRegisteredModel(pb.GetRegisteredModelRequest(name=rng.choice(names)))

        await common.timed(50, get)
        results["get"] = common.percentiles(await common.timed(2000, get))

        mix_samples: list[float] = []
        mid = START + timedelta(seconds=count * 300 // 2)
        for label, (filter_, order_by) in search_mix(mid).items():
            request = pb.ListRegisteredModelsRequest(
                parent=f"namespaces/{NAMESPACE}", page_size=50, filter=filter_, order_by=order_by
            )
            first = await catalog.ListRegisteredModels(request)  # warm-up, and a second page to continue
            second = pb.ListRegisteredModelsRequest()
            second.CopyFrom(request)
            second.page_token = first.next_page_token

            async def search(i: int, request=request, second=second):
                # Alternate first pages and continuation pages (keyset from a token).
                return await catalog.ListRegisteredModels(second if i % 2 and second.page_token else request)

            samples = await common.timed(calls, search)
            mix_samples += samples
            page = len(first.registered_models)
            results[f"search: {label}"] = {**common.percentiles(samples), "page": page}
        results["search: whole mix"] = common.percentiles(mix_samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200, help="calls per filter in the mix")
    args = parser.parse_args()
    console = Console()
    with LocalStack.start() as stack, common.scratch_database(stack, "modelreg_search") as dsn:
        prefix = f"search{uuid.uuid4().hex[:6]}."
        kafka = KafkaSettings(stack.kafka.bootstrap_servers, prefix)
        console.print(f"loading {args.models} models ...")
        loading = asyncio.run(load(kafka, dsn, args.models))
        console.print(loading)
        with common.services(["catalog"], common.service_env(stack, dsn, prefix)) as ports:
            results = asyncio.run(measure(ports["catalog"], args.models, args.calls))
        results["load"] = loading
    results["meta"] = common.meta(models=args.models)
    written = common.write_results(results, common.OUT / "catalog_search.json")
    title = f"catalog search at {args.models} models"
    console.print(common.floor_table(title, results, ("rows", "page")))
    console.print(f"written to {written}")


if __name__ == "__main__":
    main()
