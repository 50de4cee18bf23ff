"""All five services (the four command services and audit) on a private database and
topic prefix, for tests that probe them with hostile input (tests/integration/hardening,
tests/fuzz), and a snapshot of everything a request could change: log ends, row counts and
checkpoints.

Real servers only: the session's Tansu and PostgreSQL, and a moto S3 server for artifacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from modelreg.artifacts.s3 import S3BlobStore
from modelreg.devstack import LocalStack, create_database, drop_database
from modelreg.devstack.s3 import MotoS3Server
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.audit.v1 import audit_pb2_grpc
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.gen.lineage.v1 import lineage_pb2_grpc
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2_grpc
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.integration.promotion.conftest import auth, promotion_env

SERVICES = ("catalog", "versioning", "lineage", "promotion", "audit")


def feeds_of(hosts: Mapping[str, ServiceHost]) -> dict[str, tuple[str, ...]]:
    """Per schema, the services whose topics it folds: its own and its reference caches (rule 7),
    the catalog's grant events included. Read from the specs, so it cannot drift from them."""
    return {
        service: tuple(dict.fromkeys(topic.split(".")[1] for topic, _ in host.spec.projections))
        for service, host in hosts.items()
    }


_CHECKPOINTS_SQL = " UNION ALL ".join(
    f"SELECT '{s}' AS schema, topic, partition, next_offset FROM \"{s}\".checkpoints" for s in SERVICES
)
ADMIN = auth("root")
"""Metadata of a principal that may call every method, so requests reach validation."""


def topic_of(settings: Settings, service: str) -> str:
    return settings.kafka.topic(f"modelreg.{service}.v1")


@dataclass(frozen=True)
class Snapshot:
    log_ends: dict[str, int]
    """Per service: the sum of its topic's partition ends."""
    rows: dict[str, dict[str, int]]
    """Per schema: each table's row count, plus `checkpoints.sum` (the folded offsets)."""


@dataclass
class Fleet:
    settings: Settings
    hosts: dict[str, ServiceHost]
    channels: dict[str, grpc.aio.Channel]
    stubs: dict[str, Any]
    _consumer: AIOKafkaConsumer
    _pool: asyncpg.Pool
    _partitions: dict[str, list[TopicPartition]] = field(default_factory=dict)
    _ends: dict[TopicPartition, int] = field(default_factory=dict)
    _count_sql: str | None = None
    blobs: S3BlobStore | None = None
    """Versioning's blob store (the moto S3 bucket), for tests that tamper with stored bytes."""

    async def _topic_partitions(self, service: str) -> list[TopicPartition]:
        if service not in self._partitions:
            topic = topic_of(self.settings, service)
            parts = self._consumer.partitions_for_topic(topic)
            if not parts:
                await self._consumer.topics()
                parts = self._consumer.partitions_for_topic(topic) or set()
            self._partitions[service] = [TopicPartition(topic, p) for p in sorted(parts)]
        return self._partitions[service]

    async def log_ends(
        self, timeout: float = 30.0, services: Sequence[str] = SERVICES
    ) -> dict[str, dict[int, int]]:
        """Each partition's end, as the high watermark of a fresh fetch: never end_offsets(),
        which Tansu answers wrongly (it let settle() pass before a record was folded).
        `services` may name a service beside the fleet's (`events`) on the fleet's prefix."""
        by_service = {service: await self._topic_partitions(service) for service in services}
        tps = [tp for parts in by_service.values() for tp in parts]
        consumer = self._consumer
        if set(consumer.assignment()) != set(tps):
            consumer.assign(tps)
        asked = time.time() * 1000
        for tp in tps:
            # Just behind the last end seen, so the fetch has a record to answer with.
            consumer.seek(tp, max(0, self._ends.get(tp, 0) - 1))
        deadline = time.monotonic() + timeout
        while any(
            consumer.last_poll_timestamp(tp) is None or consumer.last_poll_timestamp(tp) < asked for tp in tps
        ):
            assert time.monotonic() < deadline, "no fetch answered for the log ends"
            await consumer.getmany(timeout_ms=50, max_records=len(tps))
        for tp in tps:
            highwater = consumer.highwater(tp)
            assert highwater is not None, tp
            self._ends[tp] = highwater
        return {
            service: {tp.partition: self._ends[tp] for tp in parts} for service, parts in by_service.items()
        }

    async def settle(self, timeout: float = 60.0) -> None:
        """Until every schema has folded every record now on the topics it reads."""
        ends = await self.log_ends()
        deadline = time.monotonic() + timeout
        while True:
            behind = []
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_CHECKPOINTS_SQL)  # one round trip for the four schemas
            done = {(r["schema"], r["topic"], r["partition"]): r["next_offset"] for r in rows}
            for schema, feeds in feeds_of(self.hosts).items():
                for feed in feeds:
                    topic = topic_of(self.settings, feed)
                    for partition, end in ends[feed].items():
                        if done.get((schema, topic, partition), 0) < end:
                            behind.append(f"{schema}<-{topic}[{partition}]")
            if not behind:
                return
            assert time.monotonic() < deadline, f"projectors did not catch up: {behind}"
            await asyncio.sleep(0.05)

    async def snapshot(self, also: Sequence[str] = ()) -> Snapshot:
        """`also`: services beside the fleet's whose log ends are taken too (not their rows)."""
        await self.settle()
        ends = await self.log_ends(services=(*SERVICES, *also))
        rows: dict[str, dict[str, int]] = {schema: {} for schema in SERVICES}
        async with self._pool.acquire() as conn:
            if self._count_sql is None:  # the tables are fixed once the services have started
                tables = await conn.fetch(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema = ANY($1) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
                    list(SERVICES),
                )
                counts = [
                    f"SELECT '{t['table_schema']}', '{t['table_name']}', count(*) "
                    f'FROM "{t["table_schema"]}"."{t["table_name"]}"'
                    for t in tables
                ]
                sums = [
                    f"SELECT '{s}', 'checkpoints.sum', coalesce(sum(next_offset), 0) FROM \"{s}\".checkpoints"
                    for s in SERVICES
                ]
                self._count_sql = " UNION ALL ".join(counts + sums)
            for schema, table, count in await conn.fetch(self._count_sql):  # one round trip
                rows[schema][table] = int(count)
        return Snapshot({s: sum(p.values()) for s, p in ends.items()}, rows)

    async def quarantined(self) -> int:
        total = 0
        async with self._pool.acquire() as conn:
            for schema in SERVICES:
                total += int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".quarantine'))
        return total


STUBS = {
    "catalog": catalog_pb2_grpc.CatalogServiceStub,
    "versioning": versioning_pb2_grpc.VersioningServiceStub,
    "lineage": lineage_pb2_grpc.LineageServiceStub,
    "promotion": promotion_pb2_grpc.PromotionServiceStub,
    "audit": audit_pb2_grpc.AuditServiceStub,
}


@contextlib.asynccontextmanager
async def running_fleet(local_stack: LocalStack, base: Settings) -> AsyncIterator[Fleet]:
    from modelreg.audit.adapters.keys import KeyRing
    from modelreg.audit.main import spec as audit_spec
    from modelreg.auditlog.checkpoint import Signer
    from modelreg.catalog.main import spec as catalog_spec
    from modelreg.lineage.main import spec as lineage_spec
    from modelreg.promotion.main import spec as promotion_spec
    from modelreg.versioning.main import spec as versioning_spec

    name = f"modelreg_fleet_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(local_stack.postgres.admin_dsn, name)
    kafka = base.kafka
    settings = replace(
        base,
        pg_dsn=dsn,
        kafka=KafkaSettings(kafka.bootstrap_servers, f"fleet-{uuid.uuid4().hex[:8]}.", kafka.linger_ms),
        # Refusals of unverified callers are summarised per window; none comes due during a
        # test, so a refused request changes no log end (the last window is flushed at stop).
        denial_summary_s=10**6,
    )
    hosts: dict[str, ServiceHost] = {}
    channels: dict[str, grpc.aio.Channel] = {}
    with MotoS3Server.start() as s3:
        blobs = S3BlobStore(
            endpoint=s3.endpoint,
            bucket=f"fleet-{uuid.uuid4().hex[:12]}",
            access_key=s3.access_key,
            secret_key=s3.secret_key,
            region=s3.region,
            secure=False,
        )
        specs = {
            "catalog": catalog_spec(),
            "versioning": versioning_spec(blobs=lambda: blobs),
            "lineage": lineage_spec(),
            "promotion": promotion_spec(),
            # No checkpoint falls due during a test: the audit log grows only by requests.
            "audit": audit_spec(
                keys=KeyRing(Signer.generate(), {}), checkpoint_every=10**9, checkpoint_interval_s=10**6
            ),
        }
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=64 * 1024,
        )
        pool: asyncpg.Pool | None = None
        try:
            with promotion_env():  # bearer tokens and roles, read when each host starts
                for service in SERVICES:
                    host = ServiceHost(specs[service], settings)
                    hosts[service] = host
                    await host.start(port=0)
            for service, host in hosts.items():
                channels[service] = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
            await consumer.start()
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
            yield Fleet(
                settings,
                hosts,
                channels,
                {s: STUBS[s](channels[s]) for s in SERVICES},
                consumer,
                pool,
                blobs=blobs,
            )
        finally:
            for channel in channels.values():
                await channel.close()
            for host in reversed(list(hosts.values())):
                await host.stop()
            await consumer.stop()
            if pool is not None:
                await pool.close()
            await drop_database(local_stack.postgres.admin_dsn, name)


@pytest.fixture(scope="session")
async def fleet(local_stack: LocalStack, settings: Settings) -> AsyncIterator[Fleet]:
    """Import into a conftest to use (tests/integration/hardening, tests/fuzz)."""
    async with running_fleet(local_stack, settings) as running:
        yield running
