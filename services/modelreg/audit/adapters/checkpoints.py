"""Signed checkpoints: the fold of the audit service's own topic, and the writer that
signs the trees' roots and appends them there.

The writer reads each audited partition's frontier (kept by the trail's fold, in the
same transaction as the rows) and, once the tree has grown by `every` leaves or
`interval_s` has passed since the partition's last checkpoint, signs (size, root,
previous checkpoint's hash, time, key id) and appends a CheckpointSigned event to
`modelreg.audit.v1` on the stream `checkpoints/{topic}/{partition}`, expecting the
stream's current revision. Two replicas racing therefore extend a chain once: the fold
accepts one and records the other as a conflict, and the loser signs again from the
new head. The `signed_checkpoints` table is a fold of that topic, so a replay rebuilds it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka.errors import KafkaError

from modelreg.audit.adapters.keys import KeyRing
from modelreg.auditlog.checkpoint import GENESIS, Checkpoint
from modelreg.eventlog import EventContext, build_envelope
from modelreg.eventlog.fold import head_of
from modelreg.eventlog.kafka import KafkaEventLog, KafkaSettings
from modelreg.gen.audit.v1.events_pb2 import CheckpointSigned
from modelreg.merkle import Frontier
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema

log = structlog.get_logger(__name__)

ACTOR = "modelreg/audit"


def checkpoint_stream(topic: str, partition: int) -> str:
    return f"checkpoints/{topic}/{partition}"


def checkpoints_table(schema: str) -> str:
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.signed_checkpoints (
    topic     text NOT NULL,
    partition integer NOT NULL,
    size      bigint NOT NULL,
    root      bytea NOT NULL,
    previous  bytea NOT NULL,
    hash      bytea NOT NULL,
    sign_time timestamptz NOT NULL,
    key_id    text NOT NULL,
    body      bytea NOT NULL,
    signature bytea NOT NULL,
    "offset"  bigint NOT NULL,
    PRIMARY KEY (topic, partition, size)
);
"""


class CheckpointProjection:
    """Folds `modelreg.audit.v1` (accepted CheckpointSigned events) into `signed_checkpoints`."""

    name = "audit-checkpoints"
    read_model_tables = ("signed_checkpoints",)
    stream_scope = ""

    def ddl(self, schema: str) -> str:
        return checkpoints_table(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        rows = []
        for accepted in events:
            if accepted.envelope.WhichOneof("payload") != "checkpoint_signed":
                continue
            c = accepted.envelope.checkpoint_signed
            rows.append(
                (
                    c.topic,
                    c.partition,
                    c.size,
                    c.root,
                    c.previous,
                    Checkpoint.parse(c.body).hash,
                    c.sign_time.ToDatetime(tzinfo=UTC),
                    c.key_id,
                    c.body,
                    c.signature,
                    accepted.position.offset,
                )
            )
        if rows:
            await conn.executemany(
                f"INSERT INTO {quote_schema(schema)}.signed_checkpoints"
                " (topic, partition, size, root, previous, hash, sign_time, key_id, body, signature,"
                ' "offset")'
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                rows,
            )


class CheckpointWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        kafka: KafkaSettings,
        topic: str,
        keys: KeyRing,
        *,
        every: int,
        interval_s: float,
        poll_s: float = 0.2,
    ) -> None:
        self._pool = pool
        self._schema = quote_schema(schema)
        self._kafka = kafka
        self._topic = topic
        self._keys = keys
        self._every = every
        self._interval_s = interval_s
        self._poll_s = poll_s
        self._started = time.monotonic()
        self._pending: dict[str, int] = {}
        """stream -> the revision its appended checkpoint makes; skipped until the fold has it."""

    async def run(self) -> None:
        if self._keys.signer is None:
            log.warning("audit_checkpoints_off", hint="set MODELREG_AUDIT_SIGNING_KEY to sign checkpoints")
            return
        producer = KafkaEventLog(self._kafka)
        await producer.start()
        try:
            while True:
                try:
                    await self.tick(producer)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as error:
                    log.warning("audit_checkpoint_failed", error=str(error))
                await asyncio.sleep(self._poll_s)
        finally:
            await producer.stop()

    async def tick(self, producer: KafkaEventLog) -> int:
        """Signs and appends the checkpoints that are due; returns how many."""
        signer = self._keys.signer
        assert signer is not None
        s = self._schema
        async with self._pool.acquire() as conn:
            frontiers = await conn.fetch(f"SELECT topic, partition, size, nodes FROM {s}.merkle_frontiers")
            latest = {
                (r["topic"], r["partition"]): r
                for r in await conn.fetch(
                    f"SELECT DISTINCT ON (topic, partition) topic, partition, size, hash, sign_time"
                    f" FROM {s}.signed_checkpoints ORDER BY topic, partition, size DESC"
                )
            }
            streams = [checkpoint_stream(f["topic"], f["partition"]) for f in frontiers]
            heads = {
                r["stream"]: head_of(r["revision"], r["hash"])
                for r in await conn.fetch(
                    f"SELECT stream, revision, hash FROM {s}.stream_heads WHERE stream = ANY($1::text[])",
                    streams,
                )
            }
        now = datetime.now(UTC)
        signed = 0
        for frontier, stream in zip(frontiers, streams, strict=True):
            topic, partition, size = frontier["topic"], frontier["partition"], frontier["size"]
            head = heads.get(stream, head_of(None, None))
            if self._pending.get(stream, 0) > head.revision:
                continue  # our last checkpoint is not folded yet
            last = latest.get((topic, partition))
            grown = size - (last["size"] if last else 0)
            if grown <= 0:
                continue
            since = (now - last["sign_time"]).total_seconds() if last else time.monotonic() - self._started
            if grown < self._every and since < self._interval_s:
                continue
            root = Frontier(size, [bytes(n) for n in frontier["nodes"]]).root()
            checkpoint = Checkpoint(
                topic, partition, size, root, bytes(last["hash"]) if last else GENESIS, now, signer.key_id
            )
            sealed = signer.sign_checkpoint(checkpoint)
            payload = CheckpointSigned(
                topic=topic,
                partition=partition,
                size=size,
                root=root,
                previous=checkpoint.previous,
                key_id=signer.key_id,
                body=checkpoint.body(),
                signature=sealed.signature,
            )
            payload.sign_time.FromDatetime(now)
            envelope = build_envelope(
                stream=stream,
                payload_field="checkpoint_signed",
                payload=payload,
                expected_revision=head.revision,
                prev_hash=head.hash,
                source=ACTOR,
                context=EventContext(actor=ACTOR),
                occurred_at=now,
            )
            await producer.append(self._topic, envelope)
            self._pending[stream] = head.revision + 1
            signed += 1
        return signed
