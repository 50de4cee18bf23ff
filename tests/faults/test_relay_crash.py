"""kill -9 the events relay while it drains its outbox, restart it: every accepted event
reaches the public topic at least once, and deduplicated by id the topic holds exactly the
accepted set, each model's events in the order the log accepted them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import replace

import asyncpg

from modelreg.client.public_events import PublicRecord
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings
from tests.helpers import unique
from tests.integration.events.conftest import read_public

MODELS = 300
UPDATES = 5


def workload() -> tuple[list[Envelope], list[str]]:
    """Per model: a create and UPDATES updates, each expecting the previous revision, plus a
    second create of every tenth model (a conflict: never public). Interleaved across models."""
    chains: list[list[Envelope]] = []
    accepted: list[str] = []
    for m in range(MODELS):
        stream = f"namespaces/crash/models/m{m}"
        model = catalog_pb2.RegisteredModel(name=stream, description="v0")
        chain = [
            build_envelope(
                stream=stream,
                payload_field="registered_model_created",
                payload=events_pb2.RegisteredModelCreated(registered_model=model),
                expected_revision=0,
                prev_hash=GENESIS_HASH,
                source="modelreg/catalog",
                context=EventContext(actor="loader"),
            )
        ]
        for u in range(1, UPDATES + 1):
            model = catalog_pb2.RegisteredModel(name=stream, description=f"v{u}")
            chain.append(
                build_envelope(
                    stream=stream,
                    payload_field="registered_model_updated",
                    payload=events_pb2.RegisteredModelUpdated(registered_model=model),
                    expected_revision=u,
                    prev_hash=chain[-1].hash,
                    source="modelreg/catalog",
                    context=EventContext(actor="loader"),
                )
            )
        accepted += [e.event_id for e in chain]
        if m % 10 == 0:
            conflicting = build_envelope(
                stream=stream,
                payload_field="registered_model_created",
                payload=events_pb2.RegisteredModelCreated(registered_model=model),
                expected_revision=0,
                prev_hash=GENESIS_HASH,
                source="modelreg/catalog",
                context=EventContext(actor="racer"),
            )
            chain.append(conflicting)
        chains.append(chain)
    interleaved = [chain[i] for i in range(UPDATES + 2) for chain in chains if i < len(chain)]
    return interleaved, accepted


async def produce(kafka: KafkaSettings, topic: str, envelopes: list[Envelope]) -> None:
    log = KafkaEventLog(replace(kafka, linger_ms=5))
    await log.start()
    try:
        # In order per model (one stream, one partition, one in flight at a time per round).
        for start in range(0, len(envelopes), MODELS):
            await asyncio.gather(*(log.append(topic, e) for e in envelopes[start : start + MODELS]))
    finally:
        await log.stop()


def start_relay(settings: Settings, schema: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MODELREG_KAFKA_BOOTSTRAP": settings.kafka.bootstrap_servers,
        "MODELREG_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "MODELREG_PG_DSN": settings.pg_dsn,
        "MODELREG_LOG_LEVEL": "WARNING",
        "MODELREG_AUTH": "none",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "modelreg.events", "serve", "--port", "0", "--schema", schema],
        env=env,
        stdout=subprocess.DEVNULL,
    )


async def outbox_counts(conn: asyncpg.Connection, schema: str) -> tuple[int, int]:
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.outbox"):
        return 0, 0
    row = await conn.fetchrow(f'SELECT count(position), count(*) FROM "{schema}".outbox')
    return int(row[0]), int(row[1])


async def test_kill_9_mid_drain_then_restart_publishes_every_accepted_event_in_model_order(
    settings: Settings,
) -> None:
    kafka = KafkaSettings(settings.kafka.bootstrap_servers, topic_prefix=f"{unique('relay')}.")
    run = Settings(kafka=kafka, pg_dsn=settings.pg_dsn)
    topic = kafka.topic("modelreg.catalog.v1")
    await ensure_topics(run, ["modelreg.catalog.v1", "modelreg.public.v1"])
    envelopes, accepted = workload()
    schema = unique("relay_")
    conn = await asyncpg.connect(settings.pg_dsn)
    relay = start_relay(run, schema)
    try:
        producing = asyncio.create_task(produce(kafka, topic, envelopes))
        deadline = time.monotonic() + 90
        killed_at = None
        while time.monotonic() < deadline:
            published, total = await outbox_counts(conn, schema)
            if 0 < published < len(accepted):
                relay.send_signal(signal.SIGKILL)
                relay.wait(10)
                killed_at = (published, total)
                break
            await asyncio.sleep(0.005)
        assert killed_at is not None, "never caught the relay mid-drain"
        await producing
        relay = start_relay(run, schema)
        deadline = time.monotonic() + 120
        while (await outbox_counts(conn, schema))[0] < len(accepted):
            assert time.monotonic() < deadline, (
                f"the restarted relay did not drain: {await outbox_counts(conn, schema)}"
            )
            assert relay.poll() is None, "the restarted relay died"
            await asyncio.sleep(0.2)
        assert await outbox_counts(conn, schema) == (len(accepted), len(accepted))
    finally:
        relay.terminate()
        relay.wait(10)
        await conn.close()

    wanted = set(accepted)
    records = await read_public(run, lambda rs: wanted <= {r.id for r in rs}, timeout=120)
    print(f"killed at {killed_at} (published, in outbox); {len(records)} records for {len(accepted)} events")
    seen: set[str] = set()
    per_model: dict[str, list[PublicRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if record.id not in seen:
            seen.add(record.id)
            per_model[record.subject].append(record)
    assert seen == wanted  # at least once, and nothing else (no conflict, no invented id)
    order = {event_id: i for i, event_id in enumerate(accepted)}
    for subject, model_records in per_model.items():
        ids = [r.id for r in model_records]
        assert ids == sorted(ids, key=order.__getitem__), subject
        assert [r.data["registered_model"]["description"] for r in model_records] == [
            f"v{u}" for u in range(UPDATES + 1)
        ]
