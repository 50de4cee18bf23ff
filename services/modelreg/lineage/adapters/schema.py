"""The lineage service's tables in PostgreSQL: its read model and the reference caches.

Read model:
- lineage_records: one row per record, the validated record as protobuf bytes,
  and its history links (supersedes / superseded_by).
- lineage_nodes: one row per node identity; attributes as first recorded.
- lineage_edges: one row per (record, edge); `current` is false once the
  record is superseded. Partial indexes on source and target over current
  edges serve the walk in both directions.

Caches: known_versions (versioning) and stage_pointers (promotion).
"""

from __future__ import annotations

from modelreg.projections.schema import quote_schema


def lineage_tables(schema: str) -> str:
    """The read model folded from the own topic."""
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.lineage_records (
    id            uuid PRIMARY KEY,
    model         text NOT NULL,
    version       text NOT NULL COLLATE "C",
    "offset"      bigint NOT NULL,
    body          bytea NOT NULL,
    create_time   timestamptz NOT NULL,
    creator       text NOT NULL,
    supersedes    uuid,
    superseded_by uuid,
    reason        text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS lineage_records_by_version ON {s}.lineage_records (version, "offset");
CREATE TABLE IF NOT EXISTS {s}.lineage_nodes (
    id         text PRIMARY KEY COLLATE "C",
    type       text NOT NULL,
    attributes jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.lineage_edges (
    record_id uuid NOT NULL,
    version   text NOT NULL,
    source    text NOT NULL COLLATE "C",
    target    text NOT NULL COLLATE "C",
    relation  text NOT NULL,
    current   boolean NOT NULL,
    PRIMARY KEY (record_id, source, target, relation)
);
CREATE INDEX IF NOT EXISTS lineage_edges_by_source
    ON {s}.lineage_edges (source) INCLUDE (target, relation, record_id) WHERE current;
CREATE INDEX IF NOT EXISTS lineage_edges_by_target
    ON {s}.lineage_edges (target) INCLUDE (source, relation, record_id) WHERE current;
-- The edges of superseded records (few), for walks as of a past moment.
CREATE INDEX IF NOT EXISTS lineage_edges_superseded_by_source
    ON {s}.lineage_edges (source) INCLUDE (target, relation, record_id) WHERE NOT current;
CREATE INDEX IF NOT EXISTS lineage_edges_superseded_by_target
    ON {s}.lineage_edges (target) INCLUDE (source, relation, record_id) WHERE NOT current;
"""


def known_versions_table(schema: str) -> str:
    """Which versions exist, from the versioning topic."""
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.known_versions (
    name    text PRIMARY KEY,
    deleted boolean NOT NULL
);
"""


def stage_pointers_table(schema: str) -> str:
    """Which version each promotion stage or alias names."""
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.stage_pointers (
    model   text NOT NULL,
    pointer text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (model, pointer)
);
"""
