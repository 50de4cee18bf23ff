"""How far each projector has folded each partition, and whether it is moving.

The end of each partition is the high watermark of a fetch (seeking just behind
the checkpoint, so the fetch has a record to answer with), never
`end_offsets()`, which Tansu answers wrongly. A partition is STUCK when it has
lag and neither its checkpoint moved nor its lag shrank over the sampling
window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from modelreg.eventlog.kafka import KafkaSettings
from modelreg.projections.schema import quote_schema


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    service: str
    projection: str
    topic: str
    partition: int
    checkpoint: int
    high_watermark: int | None
    last_applied: datetime | None
    accepted: int
    conflicts: int
    duplicates: int
    aborts: int = 0
    """Commands on this partition's streams that were given up as ABORTED after conflicting on
    every attempt (`command_aborts`); only a service's own topic has them."""
    quarantined: int = 0
    """Events this partition's fold could not apply (rule 11): the read model is degraded."""
    rejected: int = 0
    """Records this partition's fold rejected (unsigned, untrusted, tampered, undecodable, or a
    copy from another partition): they changed nothing; `rejected_records` says which and why."""
    stuck: bool = False
    archived: int | None = None
    """Where the archive continues on this partition (one past its last archived record);
    None when no archive is configured."""

    @property
    def lag(self) -> int | None:
        return None if self.high_watermark is None else max(0, self.high_watermark - self.checkpoint)

    def as_json(self) -> dict[str, object]:
        document = asdict(self)
        document["lag"] = self.lag
        document["last_applied"] = self.last_applied.isoformat() if self.last_applied else None
        return document


async def high_watermarks(
    kafka: KafkaSettings, positions: Mapping[tuple[str, int], int], timeout_s: float = 10.0
) -> dict[tuple[str, int], int]:
    """The high watermark of each (topic, partition), from one fetch at each position."""
    if not positions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=64 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, partition) for topic, partition in positions]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(0, positions[(tp.topic, tp.partition)] - 1))
        found: dict[tuple[str, int], int] = {}
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < len(tps) and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(timeout_ms=200, max_records=1)
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    found[(tp.topic, tp.partition)] = highwater
                    consumer.pause(tp)
        return found
    finally:
        await consumer.stop()


async def projector_status(
    conn: asyncpg.Connection, kafka: KafkaSettings, service: str, schema: str
) -> list[PartitionStatus]:
    """One sample of every partition folded into `schema`; empty when the schema does not exist."""
    if await conn.fetchval("SELECT to_regclass($1)", f"{quote_schema(schema)}.checkpoints") is None:
        return []
    s = quote_schema(schema)
    # A schema made before rejected_records existed gains it when its service next starts.
    has_rejected = await conn.fetchval("SELECT to_regclass($1)", f"{s}.rejected_records") is not None
    rejected = (
        f"(SELECT count(*) FROM {s}.rejected_records x WHERE x.topic = c.topic AND x.partition = c.partition)"
        if has_rejected
        else "0"
    )
    has_aborts = await conn.fetchval("SELECT to_regclass($1)", f"{s}.command_aborts") is not None
    aborts = (
        f"(SELECT count(*) FROM {s}.command_aborts a WHERE a.topic = c.topic AND a.partition = c.partition)"
        if has_aborts
        else "0"
    )
    rows = await conn.fetch(
        f"""
SELECT c.projection, c.topic, c.partition, c.next_offset, c.updated_at, {aborts} AS aborts,
       count(*) FILTER (WHERE o.verdict = 'accepted') AS accepted,
       count(*) FILTER (WHERE o.verdict = 'conflict') AS conflicts,
       count(*) FILTER (WHERE o.verdict = 'duplicate') AS duplicates,
       count(*) FILTER (WHERE o.verdict = 'quarantined') AS quarantined,
       {rejected} AS rejected
FROM {s}.checkpoints c
LEFT JOIN {s}.event_outcomes o ON o.topic = c.topic AND o.partition = c.partition
GROUP BY c.projection, c.topic, c.partition, c.next_offset, c.updated_at
ORDER BY c.topic, c.partition
"""
    )
    ends = await high_watermarks(kafka, {(r["topic"], r["partition"]): r["next_offset"] for r in rows})
    return [
        PartitionStatus(
            service=service,
            projection=r["projection"],
            topic=r["topic"],
            partition=r["partition"],
            checkpoint=r["next_offset"],
            high_watermark=ends.get((r["topic"], r["partition"])),
            # A checkpoint row is created at offset 0 before anything is applied.
            last_applied=r["updated_at"] if r["next_offset"] > 0 else None,
            accepted=r["accepted"],
            conflicts=r["conflicts"],
            aborts=r["aborts"],
            duplicates=r["duplicates"],
            quarantined=r["quarantined"],
            rejected=r["rejected"],
        )
        for r in rows
    ]


def mark_stuck(first: Sequence[PartitionStatus], second: Sequence[PartitionStatus]) -> list[PartitionStatus]:
    """The second sample, STUCK where a partition had lag in both and neither its checkpoint
    moved nor its lag shrank between them."""
    before = {(p.service, p.topic, p.partition): p for p in first}
    marked = []
    for now in second:
        then = before.get((now.service, now.topic, now.partition))
        stuck = (
            then is not None
            and then.lag is not None
            and now.lag is not None
            and now.lag > 0
            and now.checkpoint == then.checkpoint
            and now.lag >= then.lag
        )
        marked.append(replace(now, stuck=stuck))
    return marked
