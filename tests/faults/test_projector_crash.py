"""kill -9 a projector process in the middle of a batch, restart it, and compare
its read model with a clean replay: nothing missing, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import asyncpg

from modelreg.catalog.adapters.projection import CatalogProjection
from modelreg.eventlog import GENESIS_HASH, EventContext, Position, build_envelope
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.projections.replay import BOOKKEEPING_TABLES, digest, rebuild
from modelreg.runtime.host import ensure_topics
from modelreg.runtime.settings import Settings
from tests.helpers import unique

EVENTS = 12_000
TABLES = [*CatalogProjection.read_model_tables, *BOOKKEEPING_TABLES]


def created(stream: str, note: str):
    return build_envelope(
        stream=stream,
        payload_field="registered_model_created",
        payload=events_pb2.RegisteredModelCreated(
            registered_model=catalog_pb2.RegisteredModel(name=stream, description=note)
        ),
        expected_revision=0,
        prev_hash=GENESIS_HASH,
        source="fault-test",
        context=EventContext(actor="loader"),
    )


async def produce(kafka: KafkaSettings, topic: str) -> list[Position]:
    log = KafkaEventLog(replace(kafka, linger_ms=5))
    await log.start()
    try:
        envelopes = []
        for i in range(EVENTS):
            stream = f"namespaces/crash/models/m{i % (EVENTS * 9 // 10)}"
            # Every tenth event races for a name already taken: a conflict to record.
            envelopes.append(created(stream, f"n{i}"))
        positions: list[Position] = []
        for start in range(0, len(envelopes), 1000):
            chunk = envelopes[start : start + 1000]
            positions += await asyncio.gather(*(log.append(topic, e) for e in chunk))
        return positions
    finally:
        await log.stop()


def start_projector(settings: Settings, schema: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MODELREG_KAFKA_BOOTSTRAP": settings.kafka.bootstrap_servers,
        "MODELREG_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "MODELREG_PG_DSN": settings.pg_dsn,
        "MODELREG_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "modelreg.catalog", "project", "--schema", schema],
        env=env,
        stdout=subprocess.DEVNULL,
    )


async def projected(conn: asyncpg.Connection, schema: str) -> int:
    value = await conn.fetchval(f'SELECT coalesce(sum(next_offset), 0) FROM "{schema}".checkpoints')
    return int(value)


async def test_kill_9_mid_batch_then_restart_equals_a_clean_replay(settings: Settings) -> None:
    kafka = KafkaSettings(settings.kafka.bootstrap_servers, topic_prefix=f"{unique('crash')}.")
    topic = kafka.topic("modelreg.catalog.v1")
    run_settings = Settings(kafka=kafka, pg_dsn=settings.pg_dsn)
    await ensure_topics(run_settings, ["modelreg.catalog.v1"])
    positions = await produce(kafka, topic)
    total = len(positions)
    schema, clean = unique("crashed_"), unique("clean_")
    conn = await asyncpg.connect(settings.pg_dsn)
    projector = start_projector(run_settings, schema)
    try:
        # Wait until the projector is inside a transaction with work still ahead of it.
        deadline = time.monotonic() + 60
        killed_at = None
        while time.monotonic() < deadline:
            in_transaction = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'modelreg-catalog' AND xact_start IS NOT NULL"
                " AND state <> 'idle'"
            )
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.checkpoints")
            if in_transaction and exists and 0 < await projected(conn, schema) < total:
                projector.send_signal(signal.SIGKILL)
                projector.wait(10)
                killed_at = await projected(conn, schema)
                break
            await asyncio.sleep(0.002)
        assert killed_at is not None, "never caught the projector mid-batch"
        assert killed_at < total

        projector = start_projector(run_settings, schema)
        deadline = time.monotonic() + 120
        while await projected(conn, schema) < total:
            assert time.monotonic() < deadline, "restarted projector did not catch up"
            assert projector.poll() is None, "restarted projector died"
            await asyncio.sleep(0.1)
    finally:
        projector.terminate()
        projector.wait(10)

    pool = await asyncpg.create_pool(settings.pg_dsn, min_size=1, max_size=2)
    try:
        await rebuild(pool, schema=clean, topic=topic, handler=CatalogProjection(), kafka=kafka)
        assert await digest(conn, schema, TABLES) == await digest(conn, clean, TABLES)
        models = await conn.fetchval(f'SELECT count(*) FROM "{schema}".registered_models')
        outcomes = await conn.fetchval(f'SELECT count(*) FROM "{schema}".event_outcomes')
        assert models == EVENTS * 9 // 10
        assert outcomes == EVENTS
    finally:
        for s in (schema, clean):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await pool.close()
        await conn.close()
