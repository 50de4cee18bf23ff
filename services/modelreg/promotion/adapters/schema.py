"""The promotion service's tables in PostgreSQL, and how their columns hold the domain's values.

Own tables (fed only by `modelreg.promotion.v1`):
- pointers: one row per model, the aggregate's pointers (jsonb) and etag counter;
- requests: every transition request; `body` is the TransitionRequested
  payload (request + the checks in force), so the aggregate loads exactly;
- transitions: one row per applied transition with its log position, the
  history of every pointer and what WatchPromotions streams;
- policies: namespace and model policies;
- access_denials: every recorded denial;
- deployment_reports: the last acknowledgement of each environment of a model (DeploymentReported).

Reference caches, used only to validate commands:
- version_facts, fed only by `modelreg.versioning.v1`;
- lineage_versions and version_evaluations (the newest evaluation of each version on each
  dataset, for the RECENT_EVALUATION check), fed only by `modelreg.lineage.v1`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelreg.gen.promotion.v1 import events_pb2, promotion_pb2
from modelreg.projections.schema import quote_schema
from modelreg.promotion import resources
from modelreg.promotion.adapters import codec
from modelreg.promotion.domain.queries import HistoryEntry
from modelreg.promotion.domain.state import Aggregate, Pointers, Request
from modelreg.promotion.domain.values import Deployment, Policy, Report, ServingCode, Weight


def promotion_tables(schema: str) -> str:
    """The read model folded from the own topic."""
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.pointers (
    model       text PRIMARY KEY COLLATE "C",
    namespace   text NOT NULL,
    pointers    jsonb NOT NULL,
    archived    jsonb NOT NULL,
    deployments jsonb NOT NULL,
    previous    jsonb NOT NULL,
    applied     bigint NOT NULL,
    update_time timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.requests (
    name             text PRIMARY KEY COLLATE "C",
    model            text NOT NULL COLLATE "C",
    state            text NOT NULL,
    created_event    uuid NOT NULL,
    created_revision bigint NOT NULL,
    body             bytea NOT NULL,
    -- What ListTransitionRequests' filter reads; the rest of the request is in body.
    requester        text NOT NULL COLLATE "C",
    decided_by       text NOT NULL COLLATE "C",
    rollback         boolean NOT NULL,
    emergency        boolean NOT NULL,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz
);
CREATE INDEX IF NOT EXISTS requests_by_model ON {s}.requests (model, created_revision);
CREATE UNIQUE INDEX IF NOT EXISTS requests_by_event ON {s}.requests (created_event);
CREATE TABLE IF NOT EXISTS {s}.transitions (
    model      text NOT NULL COLLATE "C",
    revision   bigint NOT NULL,
    namespace  text NOT NULL,
    request    text NOT NULL,
    targets    text[] NOT NULL,
    topic      text NOT NULL,
    partition  int NOT NULL,
    "offset"   bigint NOT NULL,
    apply_time timestamptz NOT NULL,
    entry      bytea NOT NULL,
    PRIMARY KEY (model, revision)
);
CREATE INDEX IF NOT EXISTS transitions_by_position ON {s}.transitions (topic, partition, "offset");
CREATE TABLE IF NOT EXISTS {s}.policies (
    parent      text PRIMARY KEY COLLATE "C",
    policy      bytea NOT NULL,
    updated_by  text NOT NULL,
    update_time timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.access_denials (
    event_id  uuid PRIMARY KEY,
    namespace text NOT NULL COLLATE "C",
    revision  bigint NOT NULL,
    principal text NOT NULL,
    action    text NOT NULL,
    resource  text NOT NULL,
    reason    text NOT NULL,
    deny_time timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS access_denials_by_namespace ON {s}.access_denials (namespace, revision);
CREATE TABLE IF NOT EXISTS {s}.deployment_reports (
    model       text NOT NULL COLLATE "C",
    environment text NOT NULL COLLATE "C",
    revision    bigint NOT NULL,
    report      bytea NOT NULL,
    report_time timestamptz NOT NULL,
    PRIMARY KEY (model, environment)
);
"""


def version_facts_table(schema: str) -> str:
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.version_facts (
    model         text NOT NULL COLLATE "C",
    version       bigint NOT NULL,
    status        text NOT NULL,
    metrics       jsonb NOT NULL,
    has_signature boolean NOT NULL,
    PRIMARY KEY (model, version)
);
"""


def lineage_versions_table(schema: str) -> str:
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.lineage_versions (
    model   text NOT NULL COLLATE "C",
    version bigint NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS {s}.version_evaluations (
    model          text NOT NULL COLLATE "C",
    version        bigint NOT NULL,
    dataset_uri    text NOT NULL COLLATE "C",
    dataset_digest text NOT NULL COLLATE "C",
    evaluate_time  timestamptz NOT NULL,
    event_id       uuid NOT NULL,
    metrics        jsonb NOT NULL,
    PRIMARY KEY (model, version, dataset_uri, dataset_digest)
);
"""


def namespace_of(name: str) -> str:
    return name.split("/")[1]


# Column encodings ------------------------------------------------------------------------------------


def request_body(request: Request) -> bytes:
    """requests.body: the TransitionRequested payload (request + the checks in force)."""
    return codec.request_body(request).SerializeToString(deterministic=True)


def request_from_body(body: bytes) -> Request:
    return codec.request_from_body(events_pb2.TransitionRequested.FromString(body))


def history_entry_body(entry: HistoryEntry) -> bytes:
    """transitions.entry: the PointerHistoryEntry the API returns."""
    return resources.history_entry_to_proto(entry).SerializeToString(deterministic=True)


def history_entry_from_body(body: bytes) -> HistoryEntry:
    return resources.history_entry_from_proto(promotion_pb2.PointerHistoryEntry.FromString(body))


def policy_body(parent: str, policy: Policy) -> bytes:
    """policies.policy: the PromotionPolicy message."""
    return resources.policy_to_proto(parent, policy).SerializeToString(deterministic=True)


def report_body(report: Report) -> bytes:
    """deployment_reports.report: the DeploymentReport message."""
    return resources.report_to_proto(report).SerializeToString(deterministic=True)


def report_from_body(body: bytes) -> Report:
    return resources.report_from_proto(promotion_pb2.DeploymentReport.FromString(body))


def policy_from_body(body: bytes) -> Policy:
    return resources.policy_from_proto(promotion_pb2.PromotionPolicy.FromString(body))


def pointers_row(p: Pointers, update_time: datetime) -> tuple[object, ...]:
    return (
        p.model,
        namespace_of(p.model),
        json.dumps(dict(sorted(p.pointers.items()))),
        json.dumps(sorted(p.archived)),
        json.dumps({env: deployment_json(d) for env, d in sorted(p.deployments.items())}),
        json.dumps(dict(sorted(p.previous.items()))),
        p.applied,
        update_time,
    )


def pointers_from_row(model: str, row: Mapping[str, Any] | None) -> Pointers:
    if row is None or row["applied"] is None:
        return Pointers(model)
    deployments = json.loads(row["deployments"])
    return Pointers(
        model,
        json.loads(row["pointers"]),
        frozenset(json.loads(row["archived"])),
        {env: deployment_from_json(env, d) for env, d in deployments.items()},
        json.loads(row["previous"]),
        row["applied"],
    )


def deployment_json(d: Deployment) -> dict[str, object]:
    """pointers.deployments[env]: the environment's current revision."""
    return {
        "weights": [[w.version, w.percent] for w in d.weights],
        "code": [d.code.image, d.code.repository, d.code.commit],
        "config": d.config,
        "schema": d.config_schema,
        "revision": d.revision,
        "restored": d.restored,
    }


def deployment_from_json(environment: str, d: Any) -> Deployment:
    if isinstance(d, list):  # rows written before deployments had revisions: a split only
        return Deployment(environment, tuple(Weight(v, p) for v, p in d))
    return Deployment(
        environment,
        tuple(Weight(v, p) for v, p in d["weights"]),
        ServingCode(*d["code"]),
        d["config"],
        d["schema"],
        d["revision"],
        d["restored"],
    )


def aggregate_from_row(model: str, row: Mapping[str, Any]) -> Aggregate:
    """A model's aggregate from a row of its pointers (all NULL when it has none, `model` NULL) and
    `pending`, the bodies of its pending requests (NULL when none)."""
    pending = [request_from_body(body) for body in row["pending"] or []]
    return Aggregate(
        pointers_from_row(model, row if row["model"] is not None else None), {r.name: r for r in pending}
    )
