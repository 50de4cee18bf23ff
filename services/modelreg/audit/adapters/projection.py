"""The fold of one internal topic into the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import asyncpg

from modelreg.audit.adapters.checkpoints import CheckpointProjection
from modelreg.audit.adapters.codec import entry_of
from modelreg.audit.adapters.schema import audit_tables
from modelreg.audit.domain.entry import AuditEntry
from modelreg.merkle import Frontier, leaf_hash
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema

DENIAL_PAYLOAD = "access_refused"
"""The envelope field of a denial a service recorded itself (modelreg.common.v1.AccessDenied)."""

COLUMNS = (
    "event_id",
    "occurred_at",
    "actor",
    "action",
    "event_type",
    "resource",
    "namespace",
    "model",
    "request_id",
    "correlation_id",
    "causation_id",
    "comment",
    "changes",
    "source",
    "revision",
    "topic",
    "partition",
    '"offset"',
    "prev_hash",
    "hash",
    "leaf_index",
    "record",
    "stream",
)
"""In AuditEntry's field order."""
TYPES = (
    "uuid[]",
    "timestamptz[]",
    *["text[]"] * 12,
    "bigint[]",
    "text[]",
    "integer[]",
    "bigint[]",
    "bytea[]",
    "bytea[]",
    "bigint[]",
    "bytea[]",
    "text[]",
)


FIELDS = tuple(f.name for f in fields(AuditEntry))


def row_of(entry: AuditEntry) -> tuple[object, ...]:
    return tuple(getattr(entry, name) for name in FIELDS)


class AuditProjection:
    """Folds the accepted events of one topic into `audit_events`.

    Each topic folded into the audit schema is a fold of its own: its streams (the model
    names, which every service's topic uses) are kept under the topic's scope, so the
    heads of the catalog's `namespaces/ns/models/m` and versioning's never mix.
    """

    read_model_tables = ("audit_events", "merkle_frontiers")

    def __init__(self, logical_topic: str) -> None:
        self.logical_topic = logical_topic
        self.name = f"audit:{logical_topic}"
        self.stream_scope = f"{logical_topic}|"

    def ddl(self, schema: str) -> str:
        return audit_tables(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        """Events of one partition, in log order (a batch): rows, leaves, the new frontier."""
        if not events:
            return
        s = quote_schema(schema)
        position = events[0].position
        # The batch holds its partition's checkpoint row locked: no other fold of this
        # partition runs, so the frontier is read and written without a race.
        row = await conn.fetchrow(
            f"SELECT size, nodes FROM {s}.merkle_frontiers WHERE topic = $1 AND partition = $2",
            position.topic,
            position.partition,
        )
        frontier = Frontier(row["size"], [bytes(n) for n in row["nodes"]]) if row else Frontier()
        rows = []
        for accepted in events:
            entry = entry_of(accepted, frontier.size)
            if entry is None:
                continue
            frontier.append(leaf_hash(entry.record))
            rows.append(row_of(entry))
        if not rows:
            return
        columns = [list(c) for c in zip(*rows, strict=True)]
        unnest = ", ".join(f"${i + 1}::{t}" for i, t in enumerate(TYPES))
        await conn.execute(
            f"INSERT INTO {s}.audit_events ({', '.join(COLUMNS)}) SELECT * FROM unnest({unnest})",
            *columns,
        )
        await conn.execute(
            f"INSERT INTO {s}.merkle_frontiers (topic, partition, size, nodes) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (topic, partition) DO UPDATE SET size = EXCLUDED.size, nodes = EXCLUDED.nodes",
            position.topic,
            position.partition,
            frontier.size,
            frontier.nodes,
        )


class OwnTopicProjection:
    """Folds the audit service's own topic: its signed checkpoints, and the denials it
    recorded itself (a caller refused ListAuditEvents or ExportAudit), which join the trail
    like every other service's denials."""

    name = "audit-checkpoints"
    read_model_tables = ("signed_checkpoints",)
    """The trail's tables are listed by the AuditProjections that share them."""
    stream_scope = ""

    def __init__(self, logical_topic: str) -> None:
        self._checkpoints = CheckpointProjection()
        self._trail = AuditProjection(logical_topic)

    def ddl(self, schema: str) -> str:
        return self._checkpoints.ddl(schema) + self._trail.ddl(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        await self._checkpoints.apply(conn, schema, events)
        denials = [e for e in events if e.envelope.WhichOneof("payload") == DENIAL_PAYLOAD]
        await self._trail.apply(conn, schema, denials)
