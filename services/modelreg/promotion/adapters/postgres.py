"""The promotion read model in PostgreSQL, its projections and its reader.

Own tables (fed only by `modelreg.promotion.v1`):
- pointers: one row per model, the aggregate's pointers (jsonb) and etag counter;
- requests: every transition request; `body` is the TransitionRequested
  payload (request + the checks in force), so the aggregate loads exactly;
- transitions: one row per applied transition with its log position, the
  history of every pointer and what WatchPromotions streams;
- policies: namespace and model policies;
- access_denials: every recorded denial.

Reference caches, used only to validate commands:
- version_facts, fed only by `modelreg.versioning.v1`;
- lineage_versions, fed only by `modelreg.lineage.v1`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from modelreg.commands.contracts import Loaded
from modelreg.eventlog import EMPTY_HEAD, head_of
from modelreg.eventmeta import EventMeta
from modelreg.filtering import Node, Schema, compile_filter
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.promotion.v1 import events_pb2, promotion_pb2
from modelreg.paging import Keyset
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema
from modelreg.promotion import resources
from modelreg.promotion.adapters import codec
from modelreg.promotion.domain import query
from modelreg.promotion.domain.events import AccessDenied, PolicySet, TransitionApplied
from modelreg.promotion.domain.evolve import evolve
from modelreg.promotion.domain.queries import HistoryEntry, history_entry
from modelreg.promotion.domain.state import Aggregate, Pointers, Request
from modelreg.promotion.domain.values import Policy, VersionFacts, VersionStatus, Weight


def namespace_of(name: str) -> str:
    return name.split("/")[1]


# Own projection ---------------------------------------------------------------


class PromotionProjection:
    """Folds `modelreg.promotion.v1` into the promotion tables."""

    name = "promotion"
    read_model_tables = ("pointers", "requests", "transitions", "policies", "access_denials")
    stream_scope = ""

    def ddl(self, schema: str) -> str:
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
"""

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
        touched: set[str] = set()
        # name -> [request, creating event id, creating revision]; ON CONFLICT keeps
        # the creating event of rows that already exist.
        changed_requests: dict[str, tuple[Request, str, int]] = {}
        for accepted, event in decoded:
            if event is None:
                continue
            envelope = accepted.envelope
            meta = EventMeta(
                envelope.stream,
                envelope.occurred_at.ToDatetime(tzinfo=UTC),
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
                policy = resources.policy_to_proto(event.parent, event.policy)
                policies.append(
                    (event.parent, policy.SerializeToString(deterministic=True), meta.actor, meta.occurred_at)
                )
                continue
            stream = envelope.stream
            state = states[stream]
            new = evolve(state, event, meta)
            states[stream] = new
            touched.add(stream)
            for name, request in new.requests.items():
                if state.requests.get(name) is not request:
                    _, created_event, created_revision = changed_requests.get(
                        name, (request, envelope.event_id, meta.revision)
                    )
                    changed_requests[name] = (request, created_event, created_revision)
            if isinstance(event, TransitionApplied):
                entry = resources.history_entry_to_proto(history_entry(event, new.pointers, meta))
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
                        entry.SerializeToString(deterministic=True),
                    )
                )
        if touched:
            await _upsert_pointers(conn, s, [states[m].pointers for m in sorted(touched)], events)
        if changed_requests:
            await conn.executemany(
                f"INSERT INTO {s}.requests (name, model, state, created_event, created_revision, body,"
                " requester, decided_by, rollback, emergency, create_time, update_time)"
                " VALUES ($1, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10, $11, $12)"
                " ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, body = EXCLUDED.body,"
                " decided_by = EXCLUDED.decided_by, update_time = EXCLUDED.update_time",
                [
                    (name, r.model, r.state.value, event_id, revision, _request_body(r))
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
        if denials:
            await conn.executemany(
                f"INSERT INTO {s}.access_denials (event_id, namespace, revision, principal, action, resource,"
                " reason, deny_time) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8)",
                denials,
            )


def _and(where: Node | None, schema: Schema, params: list[object]) -> str:
    """` AND (<the compiled filter>)`, its values appended to `params`; "" without a filter."""
    return f" AND ({compile_filter(where, schema, params)})" if where is not None else ""


def _request_body(request: Request) -> bytes:
    return codec.request_body(request).SerializeToString(deterministic=True)


def _request_from_body(body: bytes) -> Request:
    return codec.request_from_body(events_pb2.TransitionRequested.FromString(body))


def _history_entry(body: bytes) -> HistoryEntry:
    return resources.history_entry_from_proto(promotion_pb2.PointerHistoryEntry.FromString(body))


def _policy(body: bytes) -> Policy:
    return resources.policy_from_proto(promotion_pb2.PromotionPolicy.FromString(body))


def _pointers_row(p: Pointers, update_time: datetime) -> tuple[object, ...]:
    return (
        p.model,
        namespace_of(p.model),
        json.dumps(dict(sorted(p.pointers.items()))),
        json.dumps(sorted(p.archived)),
        json.dumps(
            {env: [[w.version, w.percent] for w in weights] for env, weights in sorted(p.deployments.items())}
        ),
        json.dumps(dict(sorted(p.previous.items()))),
        p.applied,
        update_time,
    )


async def _upsert_pointers(
    conn: asyncpg.Connection, s: str, pointers: list[Pointers], events: Sequence[AcceptedEvent]
) -> None:
    last_time = {a.envelope.stream: a.envelope.occurred_at.ToDatetime(tzinfo=UTC) for a in events}
    await conn.executemany(
        f"INSERT INTO {s}.pointers (model, namespace, pointers, archived, deployments, previous, applied,"
        " update_time) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8)"
        " ON CONFLICT (model) DO UPDATE SET pointers = EXCLUDED.pointers, archived = EXCLUDED.archived,"
        " deployments = EXCLUDED.deployments, previous = EXCLUDED.previous, applied = EXCLUDED.applied,"
        " update_time = EXCLUDED.update_time",
        [_pointers_row(p, last_time[p.model]) for p in pointers],
    )


def _pointers(model: str, row: Mapping[str, Any] | None) -> Pointers:
    if row is None or row["applied"] is None:
        return Pointers(model)
    deployments = json.loads(row["deployments"])
    return Pointers(
        model,
        json.loads(row["pointers"]),
        frozenset(json.loads(row["archived"])),
        {env: tuple(Weight(v, p) for v, p in weights) for env, weights in deployments.items()},
        json.loads(row["previous"]),
        row["applied"],
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
    return {
        r["wanted"]: Aggregate(
            _pointers(r["wanted"], r if r["model"] is not None else None),
            {q.name: q for q in (_request_from_body(body) for body in r["pending"] or [])},
        )
        for r in rows
    }


# Reference caches ---------------------------------------------------------------


def _version_name(name: str) -> tuple[str, int] | None:
    """`namespaces/{ns}/models/{m}/versions/{n}` -> (model, n)."""
    parts = name.split("/")
    if len(parts) != 6 or parts[4] != "versions" or not parts[5].isdigit():
        return None
    return "/".join(parts[:4]), int(parts[5])


class VersionFactsCache:
    """Folds `modelreg.versioning.v1` into version_facts: status, metrics, signature presence."""

    name = "promotion-versions"
    read_model_tables = ("version_facts",)
    # Versioning keys its streams by model too: keep its fold bookkeeping apart from ours.
    stream_scope = "versioning:"

    def ddl(self, schema: str) -> str:
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

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        created: list[tuple[object, ...]] = []
        status: list[tuple[str, int, str]] = []
        for accepted in events:
            envelope: Envelope = accepted.envelope
            match envelope.WhichOneof("payload"):
                case "model_version_created":
                    v = envelope.model_version_created.model_version
                    key = _version_name(v.name)
                    if key is None:
                        continue
                    signature = v.HasField("signature") and bool(v.signature.inputs or v.signature.outputs)
                    created.append(
                        (
                            key[0],
                            key[1],
                            VersionStatus.PENDING_UPLOAD.value,
                            json.dumps(dict(sorted(v.metrics.items()))),
                            signature,
                        )
                    )
                case "model_version_finalized":
                    key = _version_name(envelope.model_version_finalized.name)
                    if key:
                        status.append((*key, VersionStatus.READY.value))
                case "model_version_deprecated":
                    key = _version_name(envelope.model_version_deprecated.name)
                    if key:
                        status.append((*key, VersionStatus.DEPRECATED.value))
                case "model_version_deleted":
                    key = _version_name(envelope.model_version_deleted.name)
                    if key:
                        status.append((*key, VersionStatus.DELETED.value))
        # Order matters within a batch: creations first, then status changes in log order.
        if created:
            await conn.executemany(
                f"INSERT INTO {s}.version_facts (model, version, status, metrics, has_signature)"
                " VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (model, version) DO NOTHING",
                created,
            )
        if status:
            await conn.executemany(
                f"UPDATE {s}.version_facts SET status = $3 WHERE model = $1 AND version = $2", status
            )


class LineageCache:
    """Folds `modelreg.lineage.v1` into lineage_versions: which versions have lineage recorded."""

    name = "promotion-lineage"
    read_model_tables = ("lineage_versions",)
    stream_scope = "lineage:"

    def ddl(self, schema: str) -> str:
        s = quote_schema(schema)
        return f"""
CREATE TABLE IF NOT EXISTS {s}.lineage_versions (
    model   text NOT NULL COLLATE "C",
    version bigint NOT NULL,
    PRIMARY KEY (model, version)
);
"""

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        rows: set[tuple[str, int]] = set()
        for accepted in events:
            envelope = accepted.envelope
            match envelope.WhichOneof("payload"):
                case "lineage_recorded":
                    key = _version_name(envelope.lineage_recorded.record.model_version)
                case "lineage_record_superseded":
                    key = _version_name(envelope.lineage_record_superseded.record.model_version)
                case _:
                    key = None
            if key:
                rows.add(key)
        if rows:
            await conn.executemany(
                f"INSERT INTO {s}.lineage_versions (model, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                sorted(rows),
            )


# Reader -----------------------------------------------------------------------


class PostgresPromotionReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._s = s = quote_schema(schema)
        self._load_sql = (
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, p.*,"
            f" (SELECT array_agg(r.body ORDER BY r.name) FROM {s}.requests r"
            f"  WHERE r.model = wanted.stream AND r.state = 'PENDING') AS pending"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.pointers p ON p.model = wanted.stream"
        )

    async def load(self, stream: str) -> Loaded[Aggregate]:
        # One statement, so the head, the pointers and the pending requests come
        # from one snapshot, in one round trip.
        row = await self._pool.fetchrow(self._load_sql, stream)
        assert row is not None
        pending = [_request_from_body(body) for body in row["pending"] or []]
        aggregate = Aggregate(
            _pointers(stream, row if row["model"] is not None else None), {r.name: r for r in pending}
        )
        head = head_of(row["head_revision"], row["head_hash"])
        return Loaded(aggregate, head)

    async def load_head(self, stream: str) -> Loaded[None]:
        head = await self._pool.fetchrow(
            f"SELECT revision, hash FROM {self._s}.stream_heads WHERE stream = $1", stream
        )
        return Loaded(None, head_of(head["revision"], head["hash"]) if head else EMPTY_HEAD)

    async def pointers(self, model: str) -> Pointers:
        row = await self._pool.fetchrow(f"SELECT * FROM {self._s}.pointers WHERE model = $1", model)
        return _pointers(model, row)

    async def request(self, name: str) -> Request | None:
        body = await self._pool.fetchval(f"SELECT body FROM {self._s}.requests WHERE name = $1", name)
        return _request_from_body(body) if body is not None else None

    async def request_by_event(self, event_id: str) -> Request | None:
        body = await self._pool.fetchval(
            f"SELECT body FROM {self._s}.requests WHERE created_event = $1::uuid", event_id
        )
        return _request_from_body(body) if body is not None else None

    async def requests(
        self, model: str, state: str | None, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, Request]]:
        params: list[object] = [model, state, after[0] if after else None, limit]
        rows = await self._pool.fetch(
            f"SELECT created_revision, body FROM {self._s}.requests WHERE model = $1"
            " AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR created_revision < $3)"
            f"{_and(where, query.REQUESTS, params)} ORDER BY created_revision DESC LIMIT $4",
            *params,
        )
        return [(r["created_revision"], _request_from_body(r["body"])) for r in rows]

    async def history(
        self, model: str, pointer: str | None, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, HistoryEntry]]:
        params: list[object] = [model, pointer, after[0] if after else None, limit]
        rows = await self._pool.fetch(
            f"SELECT revision, entry FROM {self._s}.transitions WHERE model = $1"
            " AND ($2::text IS NULL OR $2 = ANY(targets)) AND ($3::bigint IS NULL OR revision < $3)"
            f"{_and(where, query.HISTORY, params)} ORDER BY revision DESC LIMIT $4",
            *params,
        )
        return [(r["revision"], _history_entry(r["entry"])) for r in rows]

    async def policy(self, parent: str) -> Policy | None:
        body = await self._pool.fetchval(f"SELECT policy FROM {self._s}.policies WHERE parent = $1", parent)
        return _policy(body) if body else None

    async def effective_policy(self, model: str) -> tuple[str, Policy | None]:
        """The model's own policy, else its namespace's; (parent, None) when neither is set."""
        namespace = "/".join(model.split("/")[:2])
        rows = {
            r["parent"]: r["policy"]
            for r in await self._pool.fetch(
                f"SELECT parent, policy FROM {self._s}.policies WHERE parent = ANY($1::text[])",
                [model, namespace],
            )
        }
        for parent in (model, namespace):
            if parent in rows:
                return parent, _policy(rows[parent])
        return namespace, None

    async def denials(
        self, namespace: str, after: Keyset | None, limit: int, where: Node | None = None
    ) -> list[tuple[int, AccessDenied, datetime]]:
        params: list[object] = [namespace, after[0] if after else None, limit]
        rows = await self._pool.fetch(
            f"SELECT revision, principal, action, resource, reason, deny_time FROM {self._s}.access_denials"
            " WHERE namespace = $1 AND ($2::bigint IS NULL OR revision < $2)"
            f"{_and(where, query.DENIALS, params)} ORDER BY revision DESC LIMIT $3",
            *params,
        )
        return [
            (
                r["revision"],
                AccessDenied(r["principal"], r["action"], r["resource"], r["reason"]),
                r["deny_time"],
            )
            for r in rows
        ]

    async def facts(self, model: str, versions: Sequence[int]) -> dict[int, VersionFacts]:
        rows = await self._pool.fetch(
            f"SELECT f.version, f.status, f.metrics, f.has_signature, (l.version IS NOT NULL) AS lineage"
            f" FROM {self._s}.version_facts f LEFT JOIN {self._s}.lineage_versions l"
            " ON l.model = f.model AND l.version = f.version"
            " WHERE f.model = $1 AND f.version = ANY($2::bigint[])",
            model,
            list(versions),
        )
        return {
            r["version"]: VersionFacts(
                r["version"],
                VersionStatus(r["status"]),
                json.loads(r["metrics"]),
                r["has_signature"],
                r["lineage"],
            )
            for r in rows
        }

    async def checkpoints(self, topic: str) -> dict[int, int]:
        rows = await self._pool.fetch(
            f"SELECT partition, next_offset FROM {self._s}.checkpoints WHERE topic = $1", topic
        )
        return {r["partition"]: r["next_offset"] for r in rows}

    async def transitions_between(
        self, topic: str, parent: str, ranges: Mapping[int, tuple[int, int]]
    ) -> list[tuple[int, int, HistoryEntry]]:
        """Applied transitions at offsets [lo, hi) per partition, in log order per partition."""
        if not ranges:
            return []
        parts = sorted(ranges)
        rows = await self._pool.fetch(
            f'SELECT t.partition, t."offset", t.entry FROM {self._s}.transitions t'
            " JOIN unnest($2::int[], $3::bigint[], $4::bigint[]) AS r(p, lo, hi)"
            ' ON t.partition = r.p AND t."offset" >= r.lo AND t."offset" < r.hi'
            " WHERE t.topic = $1 AND ($5 = '' OR t.namespace = $5) AND ($6 = '' OR t.model = $6)"
            ' ORDER BY t.partition, t."offset"',
            topic,
            parts,
            [ranges[p][0] for p in parts],
            [ranges[p][1] for p in parts],
            parent.split("/")[1] if parent else "",
            parent if parent.count("/") == 3 else "",
        )
        return [(r["partition"], r["offset"], _history_entry(r["entry"])) for r in rows]
