"""Folds the own topic, `modelreg.promotion.v1`, into the promotion tables (adapters/schema.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import asyncpg

from modelreg.eventmeta import EventMeta
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema
from modelreg.promotion.adapters import codec
from modelreg.promotion.adapters.schema import (
    aggregate_from_row,
    history_entry_body,
    namespace_of,
    pointers_row,
    policy_body,
    promotion_tables,
    report_body,
    request_body,
)
from modelreg.promotion.domain.events import AccessDenied, DeploymentReported, PolicySet, TransitionApplied
from modelreg.promotion.domain.evolve import evolve
from modelreg.promotion.domain.queries import history_entry
from modelreg.promotion.domain.state import Aggregate, Pointers, Request


class PromotionProjection:
    """Folds `modelreg.promotion.v1` into the promotion tables."""

    name = "promotion"
    read_model_tables = (
        "pointers",
        "requests",
        "transitions",
        "policies",
        "access_denials",
        "deployment_reports",
    )
    stream_scope = ""

    def ddl(self, schema: str) -> str:
        return promotion_tables(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        decoded = [(a, codec.decode(a.envelope)) for a in events]
        model_streams = sorted(
            {
                a.envelope.stream
                for a, e in decoded
                if e is not None and not isinstance(e, AccessDenied) and a.envelope.stream.count("/") == 3
            }
        )
        before = await load_aggregates(conn, s, model_streams)
        states = dict(before)
        transitions: list[tuple[object, ...]] = []
        policies: list[tuple[object, ...]] = []
        denials: list[tuple[object, ...]] = []
        reports: dict[tuple[str, str], tuple[object, ...]] = {}
        touched: dict[str, datetime] = {}
        """Model -> the time of its last event that folded into its aggregate (a report does not)."""
        # name -> [request, creating event id, creating revision]; ON CONFLICT keeps
        # the creating event of rows that already exist.
        changed_requests: dict[str, tuple[Request, str, int]] = {}
        for accepted, event in decoded:
            if event is None:
                continue
            envelope = accepted.envelope
            meta = EventMeta(
                envelope.stream,
                accepted.occurred_at,
                envelope.actor,
                accepted.revision,
            )
            if isinstance(event, AccessDenied):
                denials.append(
                    (
                        envelope.event_id,
                        namespace_of(envelope.stream),
                        accepted.revision,
                        event.principal,
                        event.action,
                        event.resource,
                        event.reason,
                        meta.occurred_at,
                    )
                )
                continue
            if isinstance(event, PolicySet):
                policies.append(
                    (event.parent, policy_body(event.parent, event.policy), meta.actor, meta.occurred_at)
                )
                continue
            if isinstance(event, DeploymentReported):
                # The last report of an environment wins; the log keeps every one.
                report = replace(event.report, reporter=meta.actor, time=meta.occurred_at)
                reports[(report.model, report.environment)] = (
                    report.model,
                    report.environment,
                    report.revision,
                    report_body(report),
                    meta.occurred_at,
                )
                continue
            stream = envelope.stream
            state = states[stream]
            new = evolve(state, event, meta)
            states[stream] = new
            touched[stream] = meta.occurred_at
            for name, request in new.requests.items():
                if state.requests.get(name) is not request:
                    _, created_event, created_revision = changed_requests.get(
                        name, (request, envelope.event_id, meta.revision)
                    )
                    changed_requests[name] = (request, created_event, created_revision)
            if isinstance(event, TransitionApplied):
                entry = history_entry_body(history_entry(event, new.pointers, meta))
                transitions.append(
                    (
                        stream,
                        meta.revision,
                        namespace_of(stream),
                        event.request.name,
                        sorted(
                            {c.pointer for c in event.changes}
                            | {f"deployments/{d.environment}" for d in event.deployments}
                        ),
                        accepted.position.topic,
                        accepted.position.partition,
                        accepted.position.offset,
                        meta.occurred_at,
                        entry,
                    )
                )
        if touched:
            await _upsert_pointers(conn, s, [states[m].pointers for m in sorted(touched)], touched)
        if changed_requests:
            await conn.executemany(
                f"INSERT INTO {s}.requests (name, model, state, created_event, created_revision, body,"
                " requester, decided_by, rollback, emergency, create_time, update_time)"
                " VALUES ($1, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10, $11, $12)"
                " ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, body = EXCLUDED.body,"
                " decided_by = EXCLUDED.decided_by, update_time = EXCLUDED.update_time",
                [
                    (name, r.model, r.state.value, event_id, revision, request_body(r))
                    + (r.requester, r.decided_by, r.rollback, r.emergency, r.create_time, r.update_time)
                    for name, (r, event_id, revision) in sorted(changed_requests.items())
                ],
            )
        # Batches of a live projector are small: one pipelined INSERT beats COPY's extra round trips.
        if transitions:
            await conn.executemany(
                f"INSERT INTO {s}.transitions (model, revision, namespace, request, targets, topic,"
                ' partition, "offset", apply_time, entry) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
                transitions,
            )
        if policies:
            await conn.executemany(
                f"INSERT INTO {s}.policies (parent, policy, updated_by, update_time) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (parent) DO UPDATE SET policy = EXCLUDED.policy,"
                " updated_by = EXCLUDED.updated_by, update_time = EXCLUDED.update_time",
                policies,
            )
        if reports:
            await conn.executemany(
                f"INSERT INTO {s}.deployment_reports (model, environment, revision, report, report_time)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (model, environment) DO UPDATE SET"
                " revision = EXCLUDED.revision, report = EXCLUDED.report, report_time = EXCLUDED.report_time",
                [reports[k] for k in sorted(reports)],
            )
        if denials:
            await conn.executemany(
                f"INSERT INTO {s}.access_denials (event_id, namespace, revision, principal, action, resource,"
                " reason, deny_time) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8)",
                denials,
            )


async def _upsert_pointers(
    conn: asyncpg.Connection, s: str, pointers: list[Pointers], last_time: dict[str, datetime]
) -> None:
    await conn.executemany(
        f"INSERT INTO {s}.pointers (model, namespace, pointers, archived, deployments, previous, applied,"
        " update_time) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8)"
        " ON CONFLICT (model) DO UPDATE SET pointers = EXCLUDED.pointers, archived = EXCLUDED.archived,"
        " deployments = EXCLUDED.deployments, previous = EXCLUDED.previous, applied = EXCLUDED.applied,"
        " update_time = EXCLUDED.update_time",
        [pointers_row(p, last_time[p.model]) for p in pointers],
    )


async def load_aggregates(conn: asyncpg.Connection, s: str, models: Sequence[str]) -> dict[str, Aggregate]:
    """Each model's pointers and pending requests, in one round trip."""
    if not models:
        return {}
    rows = await conn.fetch(
        f"SELECT wanted.model AS wanted, p.*,"
        f" (SELECT array_agg(r.body ORDER BY r.name) FROM {s}.requests r"
        f"  WHERE r.model = wanted.model AND r.state = 'PENDING') AS pending"
        f" FROM unnest($1::text[]) AS wanted(model)"
        f" LEFT JOIN {s}.pointers p ON p.model = wanted.model",
        list(models),
    )
    return {r["wanted"]: aggregate_from_row(r["wanted"], r) for r in rows}
