"""The events a schema's projections could not apply (DESIGN.md rule 11).

The batch fold writes them (projections/batch.py) in the transaction that moves
the checkpoint past them; this module reads them, for health and `ops status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from modelreg.projections.schema import quote_schema

PROJECTION_HEALTH_SUFFIX = ".projection"
"""A service's gRPC health entry `<service>.projection` is NOT_SERVING while its read
model has quarantined events; the service itself stays SERVING, so clients keep working."""


@dataclass(frozen=True, slots=True)
class QuarantinedEvent:
    topic: str
    partition: int
    offset: int
    event_id: str
    stream: str
    event_type: str
    error: str
    occurred_at: datetime


async def quarantined_events(conn: asyncpg.Connection, schema: str) -> list[QuarantinedEvent]:
    """Every event quarantined in `schema`, in log order."""
    rows = await conn.fetch(
        'SELECT topic, partition, "offset", event_id::text, stream, event_type, error, occurred_at'
        f' FROM {quote_schema(schema)}.quarantine ORDER BY topic, partition, "offset"'
    )
    return [QuarantinedEvent(*row) for row in rows]


async def quarantined_count(conn: asyncpg.Connection, schema: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {quote_schema(schema)}.quarantine"))
