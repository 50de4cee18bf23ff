"""Small helpers shared by tests; no fakes of any server live here."""

from __future__ import annotations

import uuid

import asyncpg

from modelreg.eventlog import decode
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.projections.replay import read_log


def unique(prefix: str = "m") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def log_envelopes(kafka: KafkaSettings, topic: str) -> list[Envelope]:
    """Every envelope on a topic, read from the broker itself."""
    return [
        decode(record.value)
        for _, records in [batch async for batch in read_log(kafka, topic)]
        for record in records
    ]


async def count_rows(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()
