"""The publisher: drains the outbox to modelreg.public.v1, in order, at least once.

One publisher per schema at a time (a session advisory lock on a connection of its own;
another replica waits for it). It reads unpublished rows in outbox order, produces them
(key = the model, so each model's events stay in one partition, in order) and waits for
the broker's acks, then numbers the rows in the order they were produced (`position`).
A crash between the ack and that commit produces the same rows again on restart, with
the same CloudEvents ids: consumers deduplicate on the id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from modelreg.eventlog.kafka import KafkaSettings, partition_for
from modelreg.events.adapters.codec import to_kafka
from modelreg.events.adapters.webhook_store import published_channel
from modelreg.projections.schema import progress_channel, quote_schema

log = structlog.get_logger(__name__)

BATCH = 500
IDLE_WAKE_S = 1.0
"""Without a NOTIFY the outbox is still looked at this often."""


class OutboxPublisher:
    def __init__(
        self,
        dsn: str,
        schema: str,
        kafka: KafkaSettings,
        topic: str,
        *,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._s = quote_schema(schema)
        self._kafka = kafka
        self._topic = topic
        self._wake = asyncio.Event()
        self._on_published = on_published
        self.published = 0

    async def run(self) -> None:
        """Runs until cancelled; reconnects after database or broker trouble."""
        while True:
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or the database went away: start over
                log.warning("outbox_publisher_restarting", error=str(exc), error_type=type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _run_once(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": "modelreg-events-publisher"}
        )
        producer: AIOKafkaProducer | None = None
        try:
            # Another replica publishes while it holds the lock: wait for it (ASYNC110: polled
            # on purpose, a session advisory lock has no notification).
            while not await conn.fetchval(  # noqa: ASYNC110
                "SELECT pg_try_advisory_lock(hashtext($1))", self._lock_name
            ):
                await asyncio.sleep(1.0)
            await conn.add_listener(progress_channel(self._schema), self._notified)
            producer = AIOKafkaProducer(
                bootstrap_servers=self._kafka.bootstrap_servers,
                client_id=f"{self._kafka.client_id}-events-publisher",
                acks="all",
                enable_idempotence=False,
                linger_ms=self._kafka.linger_ms,
                max_request_size=self._kafka.max_record_bytes + 64 * 1024,
            )
            await producer.start()
            partitions = len(await producer.partitions_for(self._topic))
            log.info("outbox_publisher_started", topic=self._topic)
            while True:
                self._wake.clear()
                drained = await self._drain(conn, producer, partitions)
                if drained < BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), IDLE_WAKE_S)
        finally:
            if producer is not None:
                await producer.stop()
            with contextlib.suppress(Exception):
                await conn.close()

    @property
    def _lock_name(self) -> str:
        return f"modelreg-outbox-publisher-{self._schema}"

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _drain(self, conn: asyncpg.Connection, producer: AIOKafkaProducer, partitions: int) -> int:
        rows = await conn.fetch(
            f"SELECT seq, event_id, type, subject, source, occurred_at, data FROM {self._s}.outbox"
            f" WHERE position IS NULL ORDER BY seq LIMIT {BATCH}"
        )
        if not rows:
            return 0
        pending = []
        for row in rows:
            message = to_kafka(
                event_id=row["event_id"],
                ce_type=row["type"],
                subject=row["subject"],
                source=row["source"],
                occurred_at=row["occurred_at"],
                data=row["data"],
            )
            key = row["subject"].encode()
            # send() queues in call order; one partition's batches go out one at a time.
            pending.append(
                await producer.send(
                    self._topic,
                    value=message.value,
                    key=key,
                    partition=partition_for(key, partitions),
                    headers=list(message.headers.items()),
                )
            )
        acks = await asyncio.gather(*pending)
        async with conn.transaction():
            base = await conn.fetchval(f"SELECT coalesce(max(position), 0) FROM {self._s}.outbox")
            await conn.execute(
                f"UPDATE {self._s}.outbox o SET position = $5::bigint + u.ord, published_at = now(),"
                " public_partition = u.p, public_offset = u.o"
                " FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[]) AS u(seq, p, o, ord)"
                " WHERE o.seq = u.seq",
                [r["seq"] for r in rows],
                [a.partition for a in acks],
                [a.offset for a in acks],
                list(range(1, len(rows) + 1)),
                base,
            )
            await conn.execute("SELECT pg_notify($1, '')", published_channel(self._schema))
        self.published += len(rows)
        if self._on_published is not None:
            self._on_published(len(rows))
        return len(rows)
