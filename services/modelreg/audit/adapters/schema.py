"""The audit service's table in PostgreSQL.

audit_events: one row per accepted event of every folded topic, keyed by its log
position. It is the one table of the registry fed by several topics (DESIGN.md
rule 7 has one topic per table): the trail is a single time-ordered view, and
each topic's fold keeps its own stream heads (scoped by topic) and checkpoints,
so the topics stay independent folds that never touch each other's rows.
"""

from __future__ import annotations

from modelreg.projections.schema import quote_schema


def audit_tables(schema: str) -> str:
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.audit_events (
    topic          text NOT NULL,
    partition      integer NOT NULL,
    "offset"       bigint NOT NULL,
    event_id       uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    event_type     text NOT NULL,
    resource       text NOT NULL,
    namespace      text NOT NULL,
    model          text NOT NULL,
    request_id     text NOT NULL,
    correlation_id text NOT NULL,
    causation_id   text NOT NULL,
    comment        text NOT NULL,
    changes        text NOT NULL,
    source         text NOT NULL,
    revision       bigint NOT NULL,
    prev_hash      bytea NOT NULL,
    hash           bytea NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX IF NOT EXISTS audit_events_by_time
    ON {s}.audit_events (occurred_at, topic COLLATE "C", partition, "offset");
CREATE INDEX IF NOT EXISTS audit_events_by_namespace
    ON {s}.audit_events (namespace, occurred_at, topic COLLATE "C", partition, "offset");
"""
