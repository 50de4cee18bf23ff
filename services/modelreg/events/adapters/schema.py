"""The relay's tables in PostgreSQL.

outbox: one row per public event, written by the folds of the internal topics in the
same transaction as their checkpoints (so a public event is recorded exactly once per
accepted internal event, whatever crashes), drained to modelreg.public.v1 by the
publisher, which numbers the rows it published in the order it published them
(`position`): the order webhook cursors follow.

Like the audit trail, the outbox is fed by several topics (DESIGN.md rule 7 has one
topic per table): each topic's fold keeps its own stream heads (scoped by topic) and
checkpoints and only ever inserts its own rows.
"""

from __future__ import annotations

from modelreg.projections.schema import quote_schema


def outbox_tables(schema: str) -> str:
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.outbox (
    seq              bigserial PRIMARY KEY,
    event_id         text NOT NULL UNIQUE,
    type             text NOT NULL,
    subject          text NOT NULL,
    source           text NOT NULL,
    occurred_at      timestamptz NOT NULL,
    data             text NOT NULL,
    topic            text NOT NULL,
    partition        integer NOT NULL,
    "offset"         bigint NOT NULL,
    position         bigint UNIQUE,
    published_at     timestamptz,
    public_partition integer,
    public_offset    bigint
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON {s}.outbox (seq) WHERE position IS NULL;
"""
