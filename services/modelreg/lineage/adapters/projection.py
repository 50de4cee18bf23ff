"""The fold of `modelreg.lineage.v1` into the lineage read model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from modelreg.lineage.adapters import codec
from modelreg.lineage.adapters.schema import lineage_tables
from modelreg.lineage.domain.evaluations import (
    EvaluationRecorded,
    ThresholdsSet,
    evaluation_edges,
    evaluation_nodes,
)
from modelreg.lineage.domain.events import LineageRecorded
from modelreg.lineage.domain.values import Node, graph_of
from modelreg.lineage.resources import evaluation_to_proto, thresholds_to_proto
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema


class LineageProjection:
    """Folds `modelreg.lineage.v1` into the records, nodes and edges tables."""

    name = "lineage"
    read_model_tables = (
        "lineage_records",
        "lineage_nodes",
        "lineage_edges",
        "evaluations",
        "evaluation_breaches",
        "degradation_thresholds",
    )
    stream_scope = ""

    def ddl(self, schema: str) -> str:
        return lineage_tables(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        records: list[tuple[object, ...]] = []
        nodes: dict[str, Node] = {}
        edges: list[tuple[object, ...]] = []
        supersedes: list[tuple[str, str]] = []
        evaluations: list[tuple[object, ...]] = []
        breaches: dict[tuple[str, str], bool] = {}
        thresholds: dict[str, tuple[bytes, datetime]] = {}
        for accepted in events:
            envelope = accepted.envelope
            evaluation_event = codec.decode_evaluation(envelope)
            if isinstance(evaluation_event, ThresholdsSet):
                body = thresholds_to_proto(evaluation_event.model, evaluation_event.thresholds)
                at = envelope.occurred_at.ToDatetime(tzinfo=UTC)
                thresholds[envelope.stream] = (body.SerializeToString(deterministic=True), at)
                continue
            if isinstance(evaluation_event, EvaluationRecorded):
                evaluations.append(_evaluation_row(accepted, evaluation_event))
                version = evaluation_event.evaluation.model_version
                for metric in evaluation_event.judged:
                    breaches[(version, metric)] = metric in evaluation_event.breaching
                for node in evaluation_nodes(envelope.event_id, evaluation_event.evaluation):
                    nodes.setdefault(node.id, node)
                edges.extend(
                    (envelope.event_id, version, e.source, e.target, e.relation)
                    for e in evaluation_edges(envelope.event_id, evaluation_event.evaluation)
                )
                continue
            event = codec.decode(envelope)
            if event is None:
                continue
            record_id = envelope.event_id
            record = event.record
            previous = None if isinstance(event, LineageRecorded) else event.superseded_record
            reason = "" if isinstance(event, LineageRecorded) else event.reason
            payload = envelope.lineage_recorded if previous is None else envelope.lineage_record_superseded
            records.append(
                (
                    record_id,
                    envelope.stream,
                    record.model_version,
                    accepted.position.offset,
                    payload.record.SerializeToString(deterministic=True),
                    envelope.occurred_at.ToDatetime(tzinfo=UTC),
                    envelope.actor,
                    previous,
                    reason,
                )
            )
            record_nodes, record_edges = graph_of(record)
            for node in record_nodes:
                nodes.setdefault(node.id, node)  # in log order: the first statement of a node wins
            edges.extend(
                (record_id, record.model_version, e.source, e.target, e.relation) for e in record_edges
            )
            if previous is not None:
                supersedes.append((previous, record_id))
        if evaluations:
            await conn.executemany(
                f'INSERT INTO {s}.evaluations (id, model, version, version_number, "offset", kind,'
                " dataset_uri, dataset_digest, environment, tool, run, creator, evaluate_time, create_time,"
                " body, degraded) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
                " $15, $16)",
                evaluations,
            )
        if breaches:
            healed = [key for key, breaching in sorted(breaches.items()) if not breaching]
            breached = [key for key, breaching in sorted(breaches.items()) if breaching]
            if healed:
                await conn.executemany(
                    f"DELETE FROM {s}.evaluation_breaches WHERE version = $1 AND metric = $2", healed
                )
            if breached:
                await conn.executemany(
                    f"INSERT INTO {s}.evaluation_breaches (version, metric) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    breached,
                )
        if thresholds:
            await conn.executemany(
                f"INSERT INTO {s}.degradation_thresholds (model, body, update_time) VALUES ($1, $2, $3)"
                " ON CONFLICT (model) DO UPDATE SET body = EXCLUDED.body, update_time = EXCLUDED.update_time",
                [(model, body, at) for model, (body, at) in sorted(thresholds.items())],
            )
        if not records and not nodes:
            return
        if records:
            await conn.execute(
                f"INSERT INTO {s}.lineage_records"
                ' (id, model, version, "offset", body, create_time, creator, supersedes, reason)'
                " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bytea[],"
                " $6::timestamptz[], $7::text[], $8::uuid[], $9::text[])",
                *[list(c) for c in zip(*records, strict=True)],
            )
        # Nodes are shared across models, so batches of different partitions insert the same
        # ids concurrently; in id order they queue on each other instead of deadlocking.
        ordered = [nodes[i] for i in sorted(nodes)]
        await conn.execute(
            f"INSERT INTO {s}.lineage_nodes (id, type, attributes)"
            " SELECT i, t, a::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, t, a)"
            " ON CONFLICT (id) DO NOTHING",
            [n.id for n in ordered],
            [n.type.value for n in ordered],
            [json.dumps(dict(n.attributes), sort_keys=True) for n in ordered],
        )
        if edges:
            await conn.execute(
                f"INSERT INTO {s}.lineage_edges (record_id, version, source, target, relation, current)"
                " SELECT r, v, so, ta, re, true"
                " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])"
                " AS u(r, v, so, ta, re)",
                *[list(c) for c in zip(*edges, strict=True)],
            )
        if supersedes:
            # After the inserts: a record may be recorded and superseded within one batch.
            old = [o for o, _ in supersedes]
            new = [n for _, n in supersedes]
            await conn.execute(
                f"UPDATE {s}.lineage_records r SET superseded_by = u.new"
                " FROM unnest($1::uuid[], $2::uuid[]) AS u(old, new) WHERE r.id = u.old",
                old,
                new,
            )
            await conn.execute(
                f"UPDATE {s}.lineage_edges SET current = false WHERE record_id = ANY($1::uuid[])", old
            )


def _evaluation_row(accepted: AcceptedEvent, event: EvaluationRecorded) -> tuple[object, ...]:
    envelope = accepted.envelope
    e = event.evaluation
    model, _, number = e.model_version.rpartition("/versions/")
    assert e.evaluate_time is not None  # the decision sets it
    return (
        envelope.event_id,
        model,
        e.model_version,
        int(number),
        accepted.position.offset,
        e.kind.value,
        e.dataset_uri,
        e.dataset_digest,
        e.window.environment if e.window else "",
        e.tool,
        e.run,
        envelope.actor,
        e.evaluate_time,
        envelope.occurred_at.ToDatetime(tzinfo=UTC),
        evaluation_to_proto(e).SerializeToString(deterministic=True),
        sorted(d.metric for d in event.degraded),
    )
