"""The lineage service's tables in PostgreSQL: its read model and the reference caches.

Read model:
- lineage_records: one row per record, the validated record as protobuf bytes,
  and its history links (supersedes / superseded_by).
- lineage_nodes: one row per node identity; attributes as first recorded.
- lineage_edges: one row per (record, edge); `current` is false once the
  record is superseded. Partial indexes on source and target over current
  edges serve the walk in both directions.

- evaluations: one row per recorded evaluation (the ModelEvaluation as protobuf bytes, and the
  columns its filter reads); evaluation_breaches: which metrics of a version breach their
  degradation threshold after its last PRODUCTION judgement; degradation_thresholds: per model.
  An evaluation is also a node of the version's graph (`evaluation:{id}`; edges keyed by its id).

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
CREATE TABLE IF NOT EXISTS {s}.evaluations (
    id             uuid PRIMARY KEY,
    model          text NOT NULL COLLATE "C",
    version        text NOT NULL COLLATE "C",
    version_number bigint NOT NULL,
    "offset"       bigint NOT NULL,
    kind           text NOT NULL,
    dataset_uri    text NOT NULL COLLATE "C",
    dataset_digest text NOT NULL COLLATE "C",
    environment    text NOT NULL COLLATE "C",
    tool           text NOT NULL COLLATE "C",
    run            text NOT NULL COLLATE "C",
    creator        text NOT NULL COLLATE "C",
    evaluate_time  timestamptz NOT NULL,
    create_time    timestamptz NOT NULL,
    body           bytea NOT NULL,
    degraded       text[] NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_by_model ON {s}.evaluations (model, evaluate_time, id);
CREATE INDEX IF NOT EXISTS evaluations_by_version ON {s}.evaluations (version, evaluate_time, id);
CREATE TABLE IF NOT EXISTS {s}.evaluation_breaches (
    version text NOT NULL COLLATE "C",
    metric  text NOT NULL COLLATE "C",
    PRIMARY KEY (version, metric)
);
CREATE TABLE IF NOT EXISTS {s}.degradation_thresholds (
    model       text PRIMARY KEY COLLATE "C",
    body        bytea NOT NULL,
    update_time timestamptz NOT NULL
);
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
