"""The fold of one internal topic into the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import asyncpg

from modelreg.audit.adapters.codec import entry_of
from modelreg.audit.adapters.schema import audit_tables
from modelreg.audit.domain.entry import AuditEntry
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema

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

    read_model_tables = ("audit_events",)

    def __init__(self, logical_topic: str) -> None:
        self.logical_topic = logical_topic
        self.name = f"audit:{logical_topic}"
        self.stream_scope = f"{logical_topic}|"

    def ddl(self, schema: str) -> str:
        return audit_tables(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        rows = [row_of(entry) for entry in map(entry_of, events) if entry is not None]
        if not rows:
            return
        columns = [list(c) for c in zip(*rows, strict=True)]
        unnest = ", ".join(f"${i + 1}::{t}" for i, t in enumerate(TYPES))
        await conn.execute(
            f"INSERT INTO {quote_schema(schema)}.audit_events ({', '.join(COLUMNS)})"
            f" SELECT * FROM unnest({unnest}) ON CONFLICT DO NOTHING",
            *columns,
        )
