"""The fold of one internal topic into the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

import asyncpg

from modelreg.events.adapters.codec import data_text, internal_of
from modelreg.events.adapters.schema import outbox_tables
from modelreg.events.domain.public import public_events
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema


class OutboxProjection:
    """Folds the accepted events of one internal topic into public events in the outbox,
    inside the transaction that moves this topic-partition's checkpoint."""

    read_model_tables = ("outbox",)

    def __init__(self, logical_topic: str) -> None:
        self.logical_topic = logical_topic
        self.name = f"events:{logical_topic}"
        # Every service's topic uses the model as the stream: each topic's heads are its own.
        self.stream_scope = f"{logical_topic}|"

    def ddl(self, schema: str) -> str:
        return outbox_tables(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        rows = []
        for accepted in events:
            envelope = accepted.envelope
            internal = internal_of(envelope)
            if internal is None:
                continue
            occurred_at = envelope.occurred_at.ToDatetime(tzinfo=UTC)
            position = accepted.position
            for public in public_events(internal):
                rows.append(
                    (
                        public.id,
                        public.ce_type,
                        public.subject,
                        envelope.source or "modelreg",
                        occurred_at,
                        data_text(public),
                        position.topic,
                        position.partition,
                        position.offset,
                    )
                )
        if not rows:
            return
        s = quote_schema(schema)
        await conn.executemany(
            f"INSERT INTO {s}.outbox (event_id, type, subject, source, occurred_at, data, topic,"
            ' partition, "offset") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)'
            " ON CONFLICT (event_id) DO NOTHING",
            rows,
        )
