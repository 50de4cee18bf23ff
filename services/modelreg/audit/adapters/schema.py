"""The audit service's table in PostgreSQL.

audit_events: one row per accepted event of every folded topic, keyed by its log
position, with its record bytes and its leaf in its partition's Merkle tree.
merkle_frontiers: per topic-partition, the tree over its accepted events in log order,
as the roots of its complete subtrees (O(log n) hashes, never every node).
signed_checkpoints (adapters/checkpoints.py): the signed checkpoints, a fold of the own topic.

audit_events and merkle_frontiers are the registry's only tables fed by several topics
(DESIGN.md rule 7 has one topic per table): the trail is a single time-ordered view, and
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
    leaf_index     bigint NOT NULL,
    record         bytea NOT NULL,
    stream         text NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS {s}.merkle_frontiers (
    topic     text NOT NULL,
    partition integer NOT NULL,
    size      bigint NOT NULL,
    nodes     bytea[] NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE INDEX IF NOT EXISTS audit_events_by_time
    ON {s}.audit_events (occurred_at, topic COLLATE "C", partition, "offset");
CREATE UNIQUE INDEX IF NOT EXISTS audit_events_by_leaf ON {s}.audit_events (topic, partition, leaf_index);
CREATE INDEX IF NOT EXISTS audit_events_by_namespace
    ON {s}.audit_events (namespace, occurred_at, topic COLLATE "C", partition, "offset");
"""
